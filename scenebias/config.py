"""Merge and validate the workflow config: config/config.yaml + a preset, checked against config/schema.yaml.

The CLI and the Snakefile use the same schema (through `snakemake.utils.validate`, which also fills in
schema defaults), so a value that the workflow rejects is rejected by a single run too.

This module only merges and validates; the runs the paper tables add are planned on top of a validated config
by scenebias.plan (`load_config`, `from_json`, `plan`), which is what the CLI and the workflow read.
"""
from __future__ import annotations

import copy
import itertools
import json
import os
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .io import read_yaml
from .provenance import REPO_ROOT
from .runs import pretrain_precision_key

SCHEMA = REPO_ROOT / "config" / "schema.yaml"
BASE_CONFIG = REPO_ROOT / "config" / "config.yaml"
PRESETS = REPO_ROOT / "config" / "presets"


def validate(cfg: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate against the schema (filling defaults), expand the sweeps and cross-check names against the
    registries. The paper tables' runs are not added here: scenebias.plan.plan does that on the result."""
    # snakemake (and, for the names, the backbone and method registries: torch) load only when a config is
    # validated, so the path helpers below and read_yaml stay light to import
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as snakemake_validate

    cfg = copy.deepcopy(cfg)
    try:
        snakemake_validate(cfg, str(SCHEMA), set_default=True)
    except WorkflowError as exc:
        raise ConfigError(f"{source}: {_schema_message(exc)}") from None
    cfg["backbone"]["options"] = cfg["backbone"].get("options") or {}  # null: the defaults
    cfg["runs"] = _base_runs_first(cfg["runs"])
    cfg["runs"] = expand_sweeps(cfg["runs"], cfg.get("sweeps", {}), source)
    _check_names(cfg, source)
    _check_cpu_precision(cfg, source)
    cfg["backbone"] = _backbone_in_full(cfg["backbone"])
    return cfg


def _check_cpu_precision(cfg: dict[str, Any], source: str) -> None:
    """With `device: cpu`, a bf16 precision anywhere is refused here, before any job (scenebias.train.precision.
    check_device; with `device: auto` the stages refuse it once the device is known)."""
    from .train.precision import check_device  # torch: see `validate`

    if cfg["device"] != "cpu":
        return
    settings = [("pretrain.precision", cfg["pretrain"].get("precision", "auto")),
                ("evaluate.finetune.precision", (cfg["evaluate"].get("finetune") or {}).get("precision", "auto"))]
    settings += [(pretrain_precision_key(run, spec), (spec.get("pretrain") or {}).get("precision", "auto"))
                 for run, spec in cfg["runs"].items()]
    for where, precision in settings:
        try:
            check_device(where, precision, "cpu")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def _backbone_in_full(backbone: dict[str, Any]) -> dict[str, Any]:
    """The backbone with every option written out (the backbone's own default where the config gives none), so
    the stage hashes name the model that is built; `options: null` (the way to drop options merged in from
    an earlier file) means the defaults."""
    from .models.backbones import default_options  # torch: see `validate`

    return {**backbone, "options": {**default_options(backbone["name"]), **backbone["options"]}}


def _base_runs_first(runs: dict[str, Any]) -> dict[str, Any]:
    """config/config.yaml's runs in its order, then the others in the order given: the order of the workflow's
    RUNS (hence of metrics.csv and the report) whichever way the files were merged. Snakemake's merge puts the
    command line's files first (it reads config/config.yaml into the --configfile values), the CLI's last."""
    base = [name for name in read_yaml(BASE_CONFIG).get("runs", {}) if name in runs]
    return {**{name: runs[name] for name in base}, **runs}


def expand_sweeps(runs: dict[str, Any], sweeps: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Runs plus one run per point of every sweep's grid, named by snakemake's Paramspace.

    Idempotent: runs expanded earlier (they carry `sweep:`) are dropped and made again, so a config can be
    validated any number of times (the workflow validates it once more in every job).
    """
    import pandas as pd  # with snakemake's Paramspace: only when a config is validated (see `validate`)
    from snakemake.utils import Paramspace

    out = {name: spec for name, spec in runs.items() if "sweep" not in spec}
    for sweep, spec in sweeps.items():
        if spec["base"] not in out:
            raise ConfigError(f"{source}: sweeps.{sweep}.base: {spec['base']!r} is not a run; expected one of: "
                              f"{', '.join(out)}")
        base = out[spec["base"]]
        keys = list(spec["grid"])
        points = list(itertools.product(*(spec["grid"][k] for k in keys)))
        space = Paramspace(pd.DataFrame(points, columns=keys), filename_params="*")
        for pattern, values in zip(space.instance_patterns, points):
            name = f"{sweep}@{pattern}"
            if name in out:
                raise ConfigError(f"{source}: sweeps.{sweep}: run {name!r} already exists")
            out[name] = {**copy.deepcopy(base), "sweep": sweep,
                         "options": {**base.get("options", {}), **dict(zip(keys, values))}}
    return out


def _schema_message(exc: Exception) -> str:
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and hasattr(cause, "message"):
        path = "/".join(str(p) for p in getattr(cause, "absolute_path", []))
        return f"{path or '(top level)'}: {cause.message}"
    return text.splitlines()[0] if text else repr(exc)


def _check_names(cfg: dict[str, Any], source: str) -> None:
    from .models.backbones import BACKBONES, check_backbone_options  # torch: see `validate`
    from .plugins import load_methods

    methods = load_methods()
    if cfg["backbone"]["name"] not in BACKBONES:
        raise ConfigError(f"{source}: backbone.name: unknown backbone {cfg['backbone']['name']!r}; "
                          f"expected one of: {', '.join(BACKBONES.names())}")
    try:
        check_backbone_options(cfg["backbone"]["name"], cfg["backbone"]["options"], f"{source}: backbone.options")
    except ConfigError as exc:
        raise ConfigError(f"{exc}. Config files merge key by key, so a file that names another backbone keeps the "
                          "options set before it: give `options: null` there to start from its defaults") from None
    for name in cfg["clip"].get("crop_size_by_backbone") or {}:  # a misspelt name would silently not apply
        if name not in BACKBONES:
            raise ConfigError(f"{source}: clip.crop_size_by_backbone: unknown backbone {name!r}; "
                              f"expected one of: {', '.join(BACKBONES.names())}")
    for run, spec in cfg["runs"].items():
        if spec["method"] not in methods:
            raise ConfigError(f"{source}: runs.{run}.method: unknown method {spec['method']!r}; "
                              f"expected one of: {', '.join(methods.names())}")
        methods.get(spec["method"]).options(spec.get("options"), where=f"{source}: runs.{run}.options")
        own = spec.get("backbone")
        if own:
            if own["name"] not in BACKBONES:
                raise ConfigError(f"{source}: runs.{run}.backbone.name: unknown backbone {own['name']!r}; "
                                  f"expected one of: {', '.join(BACKBONES.names())}")
            check_backbone_options(own["name"], own.get("options", {}), f"{source}: runs.{run}.backbone.options")


def merge_config(preset: str | None = None, files: list[str | os.PathLike] | None = None,
                 overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """config/config.yaml, then the preset, then each file, then `overrides`, merged as Snakemake merges its
    configfile directive, --configfile and --config (`snakemake.utils.update_config`: mappings key by key, any
    other value replaced), not yet validated; with the sources it came from, joined by " + " (what validation
    errors name)."""
    from snakemake.utils import update_config  # light importers of this module never merge (see `validate`)

    cfg = read_yaml(BASE_CONFIG)
    sources = [str(BASE_CONFIG)]
    if preset:
        path = PRESETS / f"{preset}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in PRESETS.glob("*.yaml")))
            raise ConfigError(f"preset {preset!r}: {path} not found; expected one of: {known}")
        update_config(cfg, read_yaml(path))
        sources.append(str(path))
    for f in files or []:
        update_config(cfg, read_yaml(f))
        sources.append(str(f))
    if overrides:
        update_config(cfg, copy.deepcopy(overrides))  # it keeps references to the values
    return cfg, " + ".join(sources)


def parse_json(text: str) -> dict[str, Any]:
    """A config given as JSON text (the workflow's `--config-json`), not yet validated."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config-json: not valid JSON ({exc})") from exc


def data_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["paths"]["data"].format(preset=cfg["preset"]))


def results_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["paths"]["results"].format(preset=cfg["preset"]))


def report_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["paths"]["reports"].format(preset=cfg["preset"]))
