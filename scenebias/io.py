"""File input and output. Output is atomic: write to a temporary name beside the target, then rename.

A killed job therefore never leaves a half-written output that Snakemake (or a reader) could mistake
for a finished one.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import yaml

from .errors import ConfigError, DataError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary shared files
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str, newline: str | None = None) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline=newline, encoding="utf-8") as fh:
            fh.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json_if_valid(path: str | os.PathLike) -> Any | None:
    """The JSON in `path`, or None when it is missing or unreadable (a resumable job's "is this step done?")."""
    try:
        return read_json(path)
    except DataError:
        return None


def read_json(path: str | os.PathLike) -> Any:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: not valid JSON ({exc})") from exc


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (a config, a preset, the paper tables); ConfigError otherwise."""
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
