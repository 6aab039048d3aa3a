"""Kinds of paper table, each declared in one module of this package.

Most tables are grids: rows are runs, columns are downstream sets under one protocol, a cell is a top-1 (or a
recall) per seed, and scenebias.tables.{plan, regenerate, render} plan, collect and draw them. A table whose
`protocol` (benchmarks/paper_tables) names a registered kind gets that kind's hooks instead, where it has them:
- `extra_cells(cfg, table) -> list[Cell]`: evaluations it reads beyond its grid (plan);
- `collect(plan, path_of) -> Collected`: its values (and finer points) from the evaluation records (collect);
- `render(rendering) -> Rendered`: its figure, and what it adds to the caption, the claims' details, the Markdown
  and the JSON record (render).
A new kind is a new module here that calls `register_table_kind`; docs/extending.md walks one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...registry import Registry, import_package_modules


@dataclass(frozen=True)
class Rendering:
    """What a kind's `render` hook reads: the planned table, its values, its judged claims and the output files."""
    plan: Any
    collected: Any
    summary: Any
    claims: list[dict[str, Any]]
    files: dict[str, Path]
    cams: tuple[Path, Path] | None = None


@dataclass(frozen=True)
class Rendered:
    """What a kind's `render` hook drew (files["png"]) and adds to the table's caption, claims and record."""
    caption: str = ""            # appended to the caption
    claim_detail: str = ""       # appended to every claim's detail
    markdown: str = ""           # appended to the Markdown page
    record: dict[str, Any] = field(default_factory=dict)  # extra keys of the JSON record


@dataclass(frozen=True)
class TableKind:
    name: str
    extra_cells: Callable[..., list] | None = None
    collect: Callable[..., Any] | None = None
    render: Callable[[Rendering], Rendered] | None = None


TABLE_KINDS: Registry[TableKind] = Registry("table kind")

# The keys every kind's record may add, present (None) in every table's record.
RECORD_KEYS = ("correlation", "cams")


def register_table_kind(name: str, **hooks: Callable) -> TableKind:
    """Register the kind of table whose `protocol` is `name`, with its hooks (see the module docstring)."""
    kind = TableKind(name, **hooks)
    TABLE_KINDS.register(name)(kind)
    return kind


def table_kind(table: dict[str, Any]) -> TableKind | None:
    """The registered kind of `table` (by its `protocol`), or None for a grid table."""
    import_package_modules(__package__)
    protocol = table["protocol"]  # a list for tables whose columns use several protocols: grids
    return TABLE_KINDS.get(protocol) if isinstance(protocol, str) and protocol in TABLE_KINDS else None

