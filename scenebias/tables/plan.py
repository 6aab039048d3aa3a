"""Which runs and evaluations regenerate each paper table on the active preset.

A table row names a method with options, a pretraining dataset and a protocol; a column names a downstream
dataset (and sometimes a protocol, metric or extra options). Each (row, column) is a *cell*. On a preset a cell
becomes one run (method + options + pretraining flavour, trained for every seed) and one evaluation (protocol on a
downstream flavour):

- datasets map onto flavours: a dataset with a real root under `data.real` is read from it; else the stand-in the
  user named in `data.substitutes`; else, on generated data only, the table's `grid.generated_flavours` names its
  generated stand-in (Kinetics-400 pretraining runs on the UCF101-like flavour, say). A dataset without one
  (ImageNet, Sports-1M; with real roots, any dataset not declared) leaves the cell unreproduced, with the reason;
- a row's options are added to the preset's own options of that method (those of the run named like the method,
  e.g. `runs.moco+be.options.queue_size`), so a table's variants differ from the preset's run in exactly the
  options the paper varies;
- a cell whose run already exists in `runs:` (same method, options with defaults filled in, pretraining flavour,
  schedule) reuses it; otherwise a run is derived, named like a sweep point: `moco+fame@beta~0.7`;
- every row uses the preset's backbone; the papers' backbone column is shown beside it, not reproduced.

`expand_table_runs` adds the derived runs to the config (scenebias.plan calls it on the validated config);
`table_cells` and `table_evaluations` give the workflow its jobs.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from ..data.sources import real_flavours, substitute, uses_real_data
from ..errors import ConfigError
from ..models.backbones import BACKBONES
from .kinds import table_kind
from .published import load_paper_tables, run_options, table_ids
from ..plugins import load_methods

ALL = "all"
# paper protocol -> (suite protocol, note). The actor evaluation is fine-tuning on the actor-crop flavour.
PROTOCOLS = {"linear": "linear", "finetune": "finetune", "retrieval": "retrieval", "actor": "finetune",
             "static_bias_correlation": "finetune"}


@dataclass(frozen=True)
class Cell:
    table: str
    row: str
    column: str
    method: str | None
    options: dict[str, Any] = field(hash=False, compare=False)
    pretrain_flavour: str | None
    downstream: str | None
    protocol: str | None
    metric: str
    k: int | None = None
    backbone: str | None = None  # the row's own backbone (tables_backbones: paper); None: the preset's
    run: str | None = None
    reason: str | None = None  # why the cell is not reproduced (None: it is)
    retrieval: tuple[str, str] | None = None  # (variant, level) a retrieval cell reads (`retrieval_reading`)

    @property
    def reproduced(self) -> bool:
        return self.run is not None

    @property
    def eval_key(self) -> tuple[str, str, str] | None:
        return None if self.run is None else (self.run, self.downstream, self.protocol)


def selected_tables(cfg: dict[str, Any]) -> list[str]:
    """The table ids the preset regenerates (`tables:` in the config; `[all]` means every table)."""
    known = table_ids()
    wanted = cfg.get("tables", [ALL])
    if ALL in wanted:
        return known
    for tid in wanted:
        if tid not in known:
            raise ConfigError(f"tables: unknown table {tid!r}; expected {ALL!r} or some of: {', '.join(known)}")
    return list(wanted)


def flavour_of(cfg: dict[str, Any], table: dict[str, Any], dataset: str | None) -> tuple[str | None, str | None]:
    """(flavour, reason-if-none) for a paper dataset on this preset: its real root; else the stand-in the user
    chose (`data.substitutes`); else, on generated data only, the table's generated stand-in. With real roots a
    dataset without one is not reproduced: nothing is substituted behind the user's back."""
    if dataset is None:
        return None, "the paper gives no dataset"
    if dataset in real_flavours(cfg):
        return dataset, None
    chosen = substitute(cfg, dataset)
    if chosen is not None:
        return chosen, None
    flavour = table["grid"]["generated_flavours"].get(dataset)
    if flavour is None:
        return None, f"no real root and no generated stand-in for {dataset}"
    if uses_real_data(cfg):
        return None, (f"no {dataset} root (data.real); to use a stand-in, name one in data.substitutes, "
                      f"e.g. {{{dataset}: {flavour}}} (a real root, or this generated flavour)")
    return flavour, None


def source_of(cfg: dict[str, Any], table: dict[str, Any], dataset: str) -> str:
    """How a table's caption names where a dataset's numbers came from."""
    flavour, reason = flavour_of(cfg, table, dataset)
    if flavour is None:
        return f"{dataset} → not reproduced ({reason})"
    if dataset in real_flavours(cfg):
        return f"{dataset} → real root {flavour}"
    origin = "real root" if flavour in real_flavours(cfg) else "generated"
    if substitute(cfg, dataset) is not None:
        return f"{dataset} → stand-in {origin} {flavour} (data.substitutes)"
    return f"{dataset} → {origin} {flavour}"


def table_cells(cfg: dict[str, Any], table: dict[str, Any]) -> list[Cell]:
    """Every (row, column) of one table, internal rows only, with its run resolved against `cfg['runs']`."""
    cells = []
    columns = table["columns"] or [{"id": "", "dataset": None}]
    for row in table["rows"]:
        if row["method"] is None:
            continue
        for column in columns:
            options = run_options(row, column)
            pretrain = row.get("pretrain")
            paper_protocol = column.get("protocol") or row.get("protocol") or _single(table["protocol"])
            metric = column.get("metric") or table["metric"]
            if pretrain == "none":  # random initialisation: nothing to pretrain, the run has no data
                flavour, reason = cfg["data"]["pretrain_flavour"], None
            else:
                flavour, reason = flavour_of(cfg, table, pretrain)
            downstream, down_reason = flavour_of(cfg, table, column.get("dataset"))
            reason = reason or down_reason
            if paper_protocol == "cam":
                reason = "class activation maps: a figure, drawn by the cams rule (scenebias cams), not a number"
            backbone, backbone_reason = row_backbone(cfg, row)
            reason = reason or backbone_reason
            protocol = PROTOCOLS.get(paper_protocol)
            if reason is None and protocol is None:
                reason = f"protocol {paper_protocol!r} is not a number the workflow computes (see the report's figures)"
            run = None if reason else resolve_run(cfg, row["method"], options, flavour, backbone)
            reading = retrieval_reading(cfg, table) if protocol == "retrieval" else None
            cells.append(Cell(table["id"], row["id"], column["id"], row["method"], options, flavour,
                              downstream, protocol, metric, column.get("k"), backbone, run, reason, reading))
    return cells


def retrieval_reading(cfg: dict[str, Any], table: dict[str, Any]) -> tuple[str, str]:
    """(variant, level) of the retrieval results a table's cells read: its `protocol_options` (variant: centred
    or plain, default plain; level: video or clip, default video). The clip level exists only where the preset
    computes it (`evaluate.retrieval.levels`); elsewhere (the default and smoke presets) a clip-level table reads
    the video level."""
    options = table.get("protocol_options") or {}
    level = options.get("level", "video")
    if level not in cfg["evaluate"]["retrieval"].get("levels", ["video"]):
        level = "video"
    return options.get("variant", "plain"), level


def all_cells(cfg: dict[str, Any], table: dict[str, Any]) -> list[Cell]:
    cells = table_cells(cfg, table)
    kind = table_kind(table)
    if kind is not None and kind.extra_cells is not None:
        cells += kind.extra_cells(cfg, table)
    return cells


@dataclass(frozen=True, eq=False)
class TablePlan:
    """One table planned on one config, once: the first step of regenerating it (plan -> collect the values ->
    judge the claims -> render, scenebias.tables.render.build_table), which every later step reads."""
    cfg: dict[str, Any]
    table: dict[str, Any]
    cells: tuple[Cell, ...]

    @property
    def seeds(self) -> list[int]:
        return list(self.cfg["seeds"])

    @property
    def reproduced(self) -> list[Cell]:
        return [c for c in self.cells if c.reproduced]


def plan_table(cfg: dict[str, Any], table: dict[str, Any]) -> TablePlan:
    return TablePlan(cfg, table, tuple(all_cells(cfg, table)))


def table_evaluations(cfg: dict[str, Any], table_id: str) -> list[tuple[str, str, str]]:
    """(run, downstream flavour, protocol) of every evaluation a table reads, without repeats."""
    table = load_paper_tables()[table_id]
    return sorted({c.eval_key for c in all_cells(cfg, table) if c.reproduced})


def table_downstreams(cfg: dict[str, Any]) -> set[str]:
    """Every downstream flavour the selected tables evaluate on."""
    tables = load_paper_tables()
    return {c.downstream for tid in selected_tables(cfg) for c in all_cells(cfg, tables[tid]) if c.reproduced}


# ----------------------------------------------------------------------------------------------- runs
def row_backbone(cfg: dict[str, Any], row: dict[str, Any]) -> tuple[str | None, str | None]:
    """(backbone, reason-if-unavailable) of a row: None (the preset's) unless `tables_backbones: paper`."""
    if cfg.get("tables_backbones", "preset") != "paper":
        return None, None
    name = row.get("backbone")
    if name in BACKBONES:
        return name, None
    return None, f"the paper's backbone {row.get('backbone_printed') or name!r} is not in the suite (scenebias backbones)"


def resolve_run(cfg: dict[str, Any], method: str, options: dict[str, Any], flavour: str | None,
                backbone: str | None = None) -> str:
    """The run that trains `method` with the preset's options of that method updated by `options`, on
    `flavour` (with `backbone`, default the preset's): an existing run of `cfg['runs']` if one is identical,
    else the name of the derived run."""
    base = _base_options(cfg, method)
    wanted = _identity(cfg, method, {**base, **options}, flavour, {}, backbone)
    for name, spec in cfg["runs"].items():
        if spec.get("role") == "calibration" and not spec.get("from_tables"):
            continue  # calibration runs have their own schedules and purpose
        own = (spec.get("backbone") or {}).get("name")
        if _identity(cfg, spec["method"], spec.get("options", {}), spec.get("flavour"), spec.get("pretrain", {}),
                     own) == wanted:
            return name
    return _derived_name(cfg, method, options, flavour, backbone)


def expand_table_runs(cfg: dict[str, Any]) -> dict[str, Any]:
    """`cfg['runs']` plus the runs the selected tables need (marked `from_tables: true`). Idempotent."""
    runs = {name: spec for name, spec in cfg["runs"].items() if not spec.get("from_tables")}
    work = {**cfg, "runs": runs}
    tables = load_paper_tables()
    for tid in selected_tables(cfg):
        for cell in all_cells(work, tables[tid]):
            if not cell.reproduced or cell.run in runs:
                continue
            base = _base_spec(work, cell.method)
            spec = {**copy.deepcopy(base), "method": cell.method, "from_tables": True,
                    "options": {**base.get("options", {}), **cell.options}, "protocols": []}
            spec.pop("sweep", None)
            if cell.method in ("supervised", "random_init"):
                spec["role"] = "reference"
            if cell.pretrain_flavour != cfg["data"]["pretrain_flavour"]:
                spec["flavour"] = cell.pretrain_flavour
            if cell.backbone is not None and cell.backbone != cfg["backbone"]["name"]:
                spec["backbone"] = {"name": cell.backbone, "options": {}}
            runs[cell.run] = spec
    return runs


def _single(protocol: str | list[str]) -> str | None:
    return protocol if isinstance(protocol, str) else None


def _base_spec(cfg: dict[str, Any], method: str) -> dict[str, Any]:
    spec = cfg["runs"].get(method)
    if spec is None or spec["method"] != method or spec.get("from_tables"):
        return {"method": method}
    return {k: v for k, v in spec.items() if k in ("method", "role", "options")}


def _base_options(cfg: dict[str, Any], method: str) -> dict[str, Any]:
    return dict(_base_spec(cfg, method).get("options", {}))


def _identity(cfg: dict[str, Any], method: str, options: dict[str, Any], flavour: str | None,
              pretrain: dict[str, Any], backbone: str | None = None) -> str:
    full = load_methods().get(method).options(options)
    return json.dumps([method, full, flavour or cfg["data"]["pretrain_flavour"], pretrain,
                       backbone or cfg["backbone"]["name"]], sort_keys=True, default=str)


def _derived_name(cfg: dict[str, Any], method: str, options: dict[str, Any], flavour: str | None,
                  backbone: str | None = None) -> str:
    """Sweep-style name: the method, then the options the table sets (key~value, sorted), then the
    pretraining flavour and the backbone when they are not the preset's."""
    parts = [f"{k}~{_short(v)}" for k, v in sorted(options.items())]
    if flavour and flavour != cfg["data"]["pretrain_flavour"]:
        parts.append(f"pretrain~{flavour}")
    if backbone and backbone != cfg["backbone"]["name"]:
        parts.append(f"backbone~{backbone}")
    name = method if not parts else f"{method}@{'_'.join(parts)}"
    taken = cfg["runs"].get(name)
    if taken is not None and not taken.get("from_tables"):  # a hand-written run of that name is another thing
        name += ("_" if "@" in name else "@") + "table~run"
    return name


def _short(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = ["ALL", "Cell", "TablePlan", "plan_table", "selected_tables", "table_cells", "all_cells",
           "table_evaluations", "table_downstreams", "resolve_run", "expand_table_runs", "retrieval_reading"]
