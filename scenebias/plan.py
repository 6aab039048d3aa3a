"""The planned config: what the CLI, the workflow (rules/common.smk) and the tables read.

scenebias.config merges config/config.yaml, a preset and overrides and validates the result (schema, sweeps,
names); planning then adds the runs the selected paper tables need (scenebias.tables.plan.expand_table_runs:
derived runs marked `from_tables: true`). Both steps are idempotent, so a planned config given back (the
workflow's `--config-json`, a report's config.json) plans to itself.

The import graph runs one way: plan -> config, plan -> tables.plan -> tables.published; config imports neither.
"""
from __future__ import annotations

import os
from typing import Any

from .config import merge_config, parse_json, validate
from .data.sources import check_evaluation_sets, check_substitutes, is_generated, primary_ground_truth
from .errors import ConfigError
from .plugins import get_method
from .tables.plan import expand_table_runs, table_downstreams


def plan(cfg: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """`cfg` validated (scenebias.config.validate), its runs that need ground truth the data lacks moved to
    `skipped_runs` with the reason, and the paper tables' runs added to `runs`."""
    cfg = validate(cfg, source)
    check_substitutes(cfg, source)
    check_evaluation_sets(cfg, source)
    cfg["data"] = real_test_sets(cfg["data"], cfg)
    cfg["runs"], cfg["skipped_runs"] = split_ground_truth_runs(cfg)
    try:
        cfg["runs"] = expand_table_runs(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    cfg["data"] = gated_sets(cfg["data"], cfg)
    return cfg


def real_test_sets(data: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """`data` with no generated copy (scene-swapped, static twin) tested beside a real downstream set: a copy of
    the generated set is not a copy of the user's dataset, and config files merge test sets key by key, so a
    preset on real data cannot drop config.yaml's `swapped` by leaving it out."""
    if is_generated(cfg, data["downstream_flavour"]):
        return data
    sets = {name: f for name, f in data["test_sets"].items() if not is_generated(cfg, f)}
    counterpart = data.get("static_counterpart")
    return {**data, "test_sets": sets, "static_counterpart": None if is_generated(cfg, counterpart) else counterpart}


def gated_sets(data: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """`data` with only the generated evaluation sets the selected tables read and, of their copies, the generated
    ones: a real downstream set has no scene-swapped or unbiased copy and no calibration runs, so no gates."""
    read = table_downstreams(cfg)
    sets = {name: {k: v for k, v in spec.items() if k == "gates" or is_generated(cfg, v)}
            for name, spec in (data.get("evaluation_sets") or {}).items() if name in read and is_generated(cfg, name)}
    return {**data, "evaluation_sets": sets}


def ground_truth_need(cfg: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """Why a run cannot run on this config's data (it needs generated ground truth that a real root lacks), or
    None. Calibration runs read the primary sets' unbiased and scene-swapped copies; a method such as the
    oracle-mask control trains on the actor masks of its own pretraining set."""
    if spec.get("role") == "calibration" and not primary_ground_truth(cfg):
        return "a calibration gate's run: it reads the generated set's unbiased and scene-swapped copies"
    flavour = spec.get("flavour") or cfg["data"]["pretrain_flavour"]
    if get_method(spec["method"]).needs_ground_truth(spec.get("options")) and not is_generated(cfg, flavour):
        return f"trains on ground-truth actor masks, and its pretraining set {flavour!r} is a real dataset"
    return None


def split_ground_truth_runs(cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(runs that can run, {run: why not} for the others, with those skipped by an earlier planning)."""
    runs, skipped = {}, dict(cfg.get("skipped_runs") or {})
    for run, spec in cfg["runs"].items():
        reason = ground_truth_need(cfg, spec)
        if reason is None:
            runs[run] = spec
        else:
            skipped[run] = reason
    if not runs:
        raise ConfigError(f"every run needs ground truth this data lacks: {', '.join(skipped)}")
    return runs, skipped


def load_config(preset: str | None = None, files: list[str | os.PathLike] | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """config/config.yaml + the preset + `files` + `overrides`, validated and planned."""
    cfg, source = merge_config(preset, files, overrides)
    return plan(cfg, source)


def from_json(text: str) -> dict[str, Any]:
    """The config given as JSON (the workflow's `--config-json`), validated and planned."""
    return plan(parse_json(text), "--config-json")


__all__ = ["plan", "load_config", "from_json"]
