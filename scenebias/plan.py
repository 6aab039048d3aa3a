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
from .errors import ConfigError
from .tables.plan import expand_table_runs


def plan(cfg: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """`cfg` validated (scenebias.config.validate) with the paper tables' runs added to `runs`."""
    cfg = validate(cfg, source)
    try:
        cfg["runs"] = expand_table_runs(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load_config(preset: str | None = None, files: list[str | os.PathLike] | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """config/config.yaml + the preset + `files` + `overrides`, validated and planned."""
    cfg, source = merge_config(preset, files, overrides)
    return plan(cfg, source)


def from_json(text: str) -> dict[str, Any]:
    """The config given as JSON (the workflow's `--config-json`), validated and planned."""
    return plan(parse_json(text), "--config-json")


__all__ = ["plan", "load_config", "from_json"]
