"""Collect metrics.json files into one tidy table (one row per run, seed, protocol, test set and metric)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..errors import DataError
from ..io import atomic_path, read_json

COLUMNS = ["run", "method", "role", "seed", "protocol", "downstream", "backbone", "pretrain_flavour", "test_set", "metric",
           "value", "wall_time_s", "source"]


def _flatten(results: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], float]]:
    for key, value in results.items():
        if isinstance(value, dict):
            yield from _flatten(value, prefix + (str(key),))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield prefix + (str(key),), float(value)


def rows_of(path: Path) -> list[dict[str, Any]]:
    record = read_json(path)
    for key in ("run", "method", "seed", "protocol", "results"):
        if key not in record:
            raise DataError(f"{path}: metrics file lacks the key {key!r}")
    test_sets = set(record.get("test_sets", {})) | {"swapped_static"}
    rows = []
    for keys, value in _flatten(record["results"]):
        test_set = next((k for k in keys if k in test_sets), "")
        metric = "/".join(k for k in keys if k != test_set)
        rows.append({"run": record["run"], "method": record["method"], "role": record.get("role", "method"),
                     "seed": int(record["seed"]), "protocol": record["protocol"],
                     "downstream": record.get("downstream", ""),
                     "backbone": record.get("backbone", ""), "pretrain_flavour": record.get("pretrain_flavour", ""),
                     "test_set": test_set, "metric": metric, "value": value,
                     "wall_time_s": record.get("provenance", {}).get("wall_time_s"), "source": str(path)})
    return rows


def aggregate(inputs: list[Path], out: Path) -> pd.DataFrame:
    rows = [row for path in inputs for row in rows_of(path)]
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values(["role", "run", "protocol", "downstream", "test_set", "metric",
                                                             "seed"], kind="stable")
    with atomic_path(out) as tmp:
        if out.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return frame
