"""The FAME and BE papers' tables and figures as data (benchmarks/paper_tables/*.yaml).

Each file holds one paper: `paper` (name, venue, the text extraction and its hash) and `tables` keyed by id
(`fame_table1`, `be_figure4`, ...). A table gives its experimental grid (methods with options, backbones,
datasets and the generated flavour standing in for each), its columns, one entry per printed row with the
published numbers, and the claims the paper draws from it. The source of every number is (paper file, table
label, row label on `line` of the text, column label); `value_sources` spells it out.

`load_paper_tables()` validates both files against benchmarks/paper_tables/schema.yaml and then checks what
the schema cannot; an error names the file and the key. `check_methods` checks every method and option
against the method registry; `claim_holds` evaluates a claim on published or reproduced numbers.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import math
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from ..errors import ConfigError
from ..io import read_yaml
from ..provenance import REPO_ROOT

PAPER_TABLES_DIR = REPO_ROOT / "benchmarks" / "paper_tables"
PAPER_FILES = ("fame.yaml", "be.yaml")
SCHEMA = PAPER_TABLES_DIR / "schema.yaml"
# where the papers' text extractions live: shared/papers/ in the checkout, or beside it
PAPER_TEXT_DIRS = (REPO_ROOT / "shared" / "papers", REPO_ROOT.parent / "shared" / "papers")
DELTA_TOLERANCE = 0.05  # printed numbers have one decimal: a difference is exact up to float error
_SETTING = ("backbone", "pretrain", "frames", "resolution")


def load_paper_tables(directory: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Every table of every paper file, keyed by id. Each table carries `id`, `paper` (the paper block),
    `file` (its YAML) and rows with the table's `row_defaults` filled in and `options` defaulting to {}.
    The suite's own files are read and validated once per process (the workflow asks for them in every job);
    the result is shared, so treat it as read-only."""
    if directory is None:
        return _suite_tables()
    return _load(directory)


@functools.lru_cache(maxsize=1)
def _suite_tables() -> dict[str, dict[str, Any]]:
    return _load(None)


def _load(directory: str | Path | None) -> dict[str, dict[str, Any]]:
    folder = Path(directory) if directory is not None else PAPER_TABLES_DIR
    schema = read_yaml(folder / SCHEMA.name if directory is not None else SCHEMA)
    tables: dict[str, dict[str, Any]] = {}
    for name in PAPER_FILES:
        path = folder / name
        data = read_yaml(path)
        _validate_schema(data, schema, path)
        for tid, table in data["tables"].items():
            where = f"{path}: tables.{tid}"
            if tid in tables:
                raise ConfigError(f"{where}: table id also used in {tables[tid]['file']}")
            if not tid.startswith(data["paper"]["id"] + "_"):
                raise ConfigError(f"{where}: a table id starts with its paper's id {data['paper']['id']!r}")
            tables[tid] = _materialise(tid, table, data["paper"], path)
            _check_table(tables[tid], where)
    return tables


def table_ids() -> list[str]:
    return sorted(load_paper_tables())


def rows_by_id(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in table["rows"]}


def run_options(row: dict[str, Any], column: dict[str, Any] | None = None) -> dict[str, Any]:
    """The method options of one cell: the row's, updated by the column's (FAME Table 5's branches)."""
    return {**row.get("options", {}), **((column or {}).get("options") or {})}


def value_sources(table: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One record per published number: the value and its (paper, table, row, line, column) source."""
    labels = {c["id"]: c["label"] for c in table["columns"]}
    for row in table["rows"]:
        for column, value in row["values"].items():
            yield {"paper": table["paper"]["short"], "file": table["paper"]["file"], "table": table["label"],
                   "row": row["row"], "row_id": row["id"], "line": row["line"], "column": labels[column],
                   "column_id": column, "value": value, "derived": column in row.get("derived", {})}


def paper_text(paper: dict[str, Any]) -> str | None:
    """The paper's text extraction when it is at hand (shared/papers/), else None."""
    for folder in PAPER_TEXT_DIRS:
        path = folder / paper["file"]
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_methods(tables: dict[str, dict[str, Any]]) -> None:
    """Every method a row or grid names is registered, and its options (row's and column's) are valid."""
    from ..plugins import load_methods  # the method registry (torch) only here: reading the tables stays light

    methods = load_methods()
    for tid, table in tables.items():
        where = f"{table['file']}: tables.{tid}"
        points = [(f"{where}.grid.methods[{i}]", p["method"], p["options"])
                  for i, p in enumerate(table["grid"]["methods"])]
        for row in table["rows"]:
            if row["method"] is not None:
                for column in table["columns"] or [None]:
                    points.append((f"{where}.rows.{row['id']}", row["method"], run_options(row, column)))
        for key, name, options in points:
            if name not in methods:
                raise ConfigError(f"{key}.method: unknown method {name!r}; expected one of: "
                                  f"{', '.join(methods.names())}")
            methods.get(name).options(options, where=f"{key}.options")


def claim_holds(claim: dict[str, Any], table: dict[str, Any],
                values: dict[str, dict[str, float | None]] | None = None) -> bool | None:
    """Whether the claim's relation holds on `values` (row id -> column id -> number; default: the published
    numbers). None when it cannot be decided: a qualitative claim, or a number it needs is missing.
    `stated_delta` is not checked here (a reproduction need not match the paper's gap; see `stated_delta_errors`)."""
    values = values if values is not None else {r["id"]: r["values"] for r in table["rows"]}
    direction = claim["direction"]
    if direction == "qualitative":
        return None
    if direction == "negative_correlation":
        rs = [values.get(r, {}).get("pearson_r") for r in claim["rows"]]
        return None if any(r is None for r in rs) else all(r < 0 for r in rs)
    diffs = _differences(claim, values)
    if diffs is None:
        return None
    if direction == "greater":
        return all(d > 0 and d >= claim.get("margin", 0.0) - 1e-9 for d in diffs)
    if direction == "less":
        return all(d < 0 and -d >= claim.get("margin", 0.0) - 1e-9 for d in diffs)
    return all(abs(d) <= claim["tolerance"] + 1e-9 for d in diffs)  # approx_equal


def stated_delta_errors(claim: dict[str, Any], table: dict[str, Any]) -> list[str]:
    """Where the published numbers' difference A − B differs from the gap the text states."""
    if "stated_delta" not in claim:
        return []
    rows = rows_by_id(table)
    a, b = (rows[r]["values"] for r in claim["compare"])
    tolerance = claim.get("delta_tolerance", DELTA_TOLERANCE)
    return [f"{claim['id']}.{c}: {a[c]} - {b[c]} != {stated} (±{tolerance})"
            for c, stated in claim["stated_delta"].items()
            if a[c] is None or b[c] is None or abs(a[c] - b[c] - stated) > tolerance + 1e-9]


# --------------------------------------------------------------------------------------------- internals
def _validate_schema(data: dict[str, Any], schema: dict[str, Any], path: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{path}: {key}: {error.message}{more}")


def _materialise(tid: str, table: dict[str, Any], paper: dict[str, Any], path: Path) -> dict[str, Any]:
    out = copy.deepcopy(table)
    defaults = out.get("row_defaults", {})
    out["rows"] = [{"options": {}, **defaults, **row} for row in out["rows"]]
    return {**out, "id": tid, "paper": copy.deepcopy(paper), "file": str(path)}


def _check_table(table: dict[str, Any], where: str) -> None:
    columns = [c["id"] for c in table["columns"]]
    _unique(columns, f"{where}.columns")
    _unique([r["id"] for r in table["rows"]], f"{where}.rows")
    _unique([c["id"] for c in table["claims"]], f"{where}.claims")
    rows = rows_by_id(table)
    grid = table["grid"]
    protocols = table["protocol"] if isinstance(table["protocol"], list) else None
    points = {_point(p["method"], p["options"]) for p in grid["methods"]}
    for row in table["rows"]:
        key = f"{where}.rows.{row['id']}"
        if set(row["values"]) != set(columns):
            raise ConfigError(f"{key}.values: columns {sorted(row['values'])} != the table's {sorted(columns)}")
        if (row["method"] is None) != row["external"]:
            raise ConfigError(f"{key}: external must be true exactly when method is null")
        if row["row"] is None and not (row.get("notes") and row.get("inferred")):
            raise ConfigError(f"{key}: a blank label needs `notes` and `inferred` saying how the row was identified")
        for field in ("deltas", "garbled", "derived", "inconsistent", "cell_notes"):
            for column in row.get(field, {}):
                if column not in columns:
                    raise ConfigError(f"{key}.{field}.{column}: not a column ({', '.join(columns)})")
        for column, value in row["values"].items():
            if (value is None or column in row.get("derived", {})) and column not in row.get("cell_notes", {}):
                raise ConfigError(f"{key}.cell_notes.{column}: a null or derived value needs a note")
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"{key}.values.{column}: {value} is not a finite number")
        if ("deltas" in row) != ("delta_reference" in row) or row.get("delta_reference", row["id"]) not in rows:
            raise ConfigError(f"{key}.delta_reference: deltas need an existing reference row")
        if protocols is not None and row.get("protocol") not in protocols:
            raise ConfigError(f"{key}.protocol: {row.get('protocol')!r} is not one of the table's {protocols}")
        for field, allowed in (("backbone", "backbones"), ("pretrain", "pretrain"), ("frames", "frames"),
                               ("resolution", "resolution")):
            if row.get(field) is not None and row[field] not in grid.get(allowed, []):
                raise ConfigError(f"{key}.{field}: {row[field]!r} is missing from grid.{allowed}")
        if row["method"] is not None:
            for column in table["columns"] or [None]:
                if _point(row["method"], run_options(row, column)) not in points:
                    raise ConfigError(f"{key}: {row['method']} {run_options(row, column)} is missing from "
                                      f"grid.methods")
    datasets = [d for d in grid["pretrain"] if d != "none"] + grid["downstream"]
    for column in table["columns"]:
        if column.get("dataset") is not None and column["dataset"] not in grid["downstream"]:
            raise ConfigError(f"{where}.columns.{column['id']}.dataset: missing from grid.downstream")
    notes = grid.get("flavour_notes", {})
    for dataset in datasets:
        if dataset not in grid["generated_flavours"]:
            raise ConfigError(f"{where}.grid.generated_flavours: no entry for {dataset!r}")
        flavour = grid["generated_flavours"][dataset]
        if flavour != dataset and dataset not in notes:
            raise ConfigError(f"{where}.grid.flavour_notes.{dataset}: a missing or stand-in flavour needs a note")
    for claim in table["claims"]:
        key = f"{where}.claims.{claim['id']}"
        named = ([r for pair in claim.get("pairs", []) for r in pair] + claim.get("compare", [])
                 + claim.get("rows", []))
        for r in named:
            if r not in rows:
                raise ConfigError(f"{key}: row {r!r} does not exist in {where}")
        used = (claim["columns"] + [c for pair in claim.get("column_pairs", []) for c in pair]
                + list(claim.get("stated_delta", {})))
        for c in used:
            if c not in columns:
                raise ConfigError(f"{key}: column {c!r} does not exist ({', '.join(columns)})")
        if "stated_delta" in claim and "compare" not in claim:
            raise ConfigError(f"{key}.stated_delta: only a `compare` claim states a gap")
        if claim["direction"] == "approx_equal" and "tolerance" not in claim:
            raise ConfigError(f"{key}.tolerance: an approx_equal claim needs one")
        if ("column_pairs" in claim) != (claim["direction"] == "approx_equal" and "rows" in claim):
            raise ConfigError(f"{key}.column_pairs: only an approx_equal claim over `rows` compares columns")


def _differences(claim: dict[str, Any], values: dict[str, dict[str, float | None]]) -> list[float] | None:
    if "column_pairs" in claim:
        cells = [(values.get(r, {}).get(a), values.get(r, {}).get(b))
                 for r in claim["rows"] for a, b in claim["column_pairs"]]
    else:
        pairs = [claim["compare"]] if "compare" in claim else claim.get("pairs", [])
        cells = [(values.get(a, {}).get(c), values.get(b, {}).get(c))
                 for a, b in pairs for c in claim["columns"]]
    if not cells or any(a is None or b is None for a, b in cells):
        return None
    return [a - b for a, b in cells]


def _point(method: str, options: dict[str, Any]) -> tuple[str, str]:
    return method, yaml.safe_dump(options, sort_keys=True)


def _unique(ids: list[str], where: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ConfigError(f"{where}: id {i!r} is used twice")
        seen.add(i)


__all__ = ["PAPER_TABLES_DIR", "PAPER_FILES", "SCHEMA", "load_paper_tables", "table_ids", "rows_by_id",
           "run_options", "value_sources", "paper_text", "text_sha256", "check_methods", "claim_holds",
           "stated_delta_errors"]
