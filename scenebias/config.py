"""Load and validate the workflow config: config/config.yaml + a profile, checked against config/schema.yaml.

The CLI and the Snakefile use the same schema (through `snakemake.utils.validate`, which also fills in
schema defaults), so a value that the workflow rejects is rejected by a single run too.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .provenance import REPO_ROOT

SCHEMA = REPO_ROOT / "config" / "schema.yaml"
BASE_CONFIG = REPO_ROOT / "config" / "config.yaml"
PROFILES = REPO_ROOT / "config" / "profiles"


def deep_update(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by `override`, recursively; a mapping that names another thing (a different `name`, e.g.
    another backbone) replaces the old one instead of inheriting its options."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        renamed = isinstance(value, dict) and isinstance(out.get(key), dict) and \
            "name" in value and value["name"] != out[key].get("name")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not renamed:
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def validate(cfg: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate against the schema (filling defaults) and cross-check names against the registries."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as snakemake_validate

    cfg = copy.deepcopy(cfg)
    try:
        snakemake_validate(cfg, str(SCHEMA), set_default=True)
    except WorkflowError as exc:
        raise ConfigError(f"{source}: {_schema_message(exc)}") from None
    cfg["runs"] = expand_sweeps(cfg["runs"], cfg.get("sweeps", {}), source)
    _check_names(cfg, source)
    cfg["runs"] = _with_table_runs(cfg, source)
    return cfg


def expand_sweeps(runs: dict[str, Any], sweeps: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Runs plus one run per point of every sweep's grid, named by snakemake's Paramspace.

    Idempotent: runs expanded earlier (they carry `sweep:`) are dropped and made again, so a config can be
    validated any number of times (the workflow validates it once more in every job).
    """
    import itertools

    import pandas as pd
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


def _with_table_runs(cfg: dict[str, Any], source: str) -> dict[str, Any]:
    from .tables.plan import expand_table_runs

    try:
        return expand_table_runs(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _schema_message(exc: Exception) -> str:
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and hasattr(cause, "message"):
        path = "/".join(str(p) for p in getattr(cause, "absolute_path", []))
        return f"{path or '(top level)'}: {cause.message}"
    return text.splitlines()[0] if text else repr(exc)


def _check_names(cfg: dict[str, Any], source: str) -> None:
    from .models.backbones import BACKBONES, check_backbone_options
    from .plugins import load_methods

    methods = load_methods()
    if cfg["backbone"]["name"] not in BACKBONES:
        raise ConfigError(f"{source}: backbone.name: unknown backbone {cfg['backbone']['name']!r}; "
                          f"expected one of: {', '.join(BACKBONES.names())}")
    check_backbone_options(cfg["backbone"]["name"], cfg["backbone"].get("options", {}),
                           f"{source}: backbone.options")
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


def load_config(profile: str | None = None, files: list[str | os.PathLike] | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = read_yaml(BASE_CONFIG)
    sources = [str(BASE_CONFIG)]
    if profile:
        path = PROFILES / f"{profile}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
            raise ConfigError(f"profile {profile!r}: {path} not found; expected one of: {known}")
        cfg = deep_update(cfg, read_yaml(path))
        sources.append(str(path))
    for f in files or []:
        cfg = deep_update(cfg, read_yaml(f))
        sources.append(str(f))
    if overrides:
        cfg = deep_update(cfg, overrides)
    return validate(cfg, " + ".join(sources))


def from_json(text: str) -> dict[str, Any]:
    try:
        return validate(json.loads(text), "--config-json")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config-json: not valid JSON ({exc})") from exc


def data_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["paths"]["data"].format(profile=cfg["profile"]))


def results_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["paths"]["results"].format(profile=cfg["profile"]))


def report_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["paths"]["reports"].format(profile=cfg["profile"]))
