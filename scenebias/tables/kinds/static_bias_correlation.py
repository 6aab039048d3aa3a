"""BE Figure 4's kind of table (`protocol: static_bias_correlation`): per class, the static-video classifier's
top-1 against the relative improvement of a method over MoCo, and Pearson's r over classes (BE §4.6).

Plan: beside each row's fine-tuned method, MoCo fine-tuned the same way and a static-video classifier trained on
the downstream set. Collect: per class and seed, the three per-class accuracies; per seed, r and p. Render: the
scatter with its least-squares line, and r, p and the class count in the record. The claim's statistics (r's
interval, its minimum detectable effect) are the claims' (scenebias.tables.regenerate)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...io import atomic_path
from ...report.plotting import pyplot, seaborn
from ..plan import Cell, TablePlan, resolve_run, table_cells
from ..regenerate import VALUE_COLUMNS, Collected, EvalPath, _class_names, _read, correlation, per_class
from . import Rendered, Rendering, register_table_kind


def static_bias_cells(cfg: dict[str, Any], table: dict[str, Any]) -> list[Cell]:
    """BE Figure 4's extra evaluations: MoCo (the reference of the relative improvement) fine-tuned like the
    row's method, and the static-video classifier trained from scratch on the downstream set."""
    extra = []
    for cell in table_cells(cfg, table):
        if not cell.reproduced:
            continue
        moco = resolve_run(cfg, "moco", {}, cell.pretrain_flavour, cell.backbone)
        static = resolve_run(cfg, "supervised", {"static": True, "dropout": 0.0}, cell.downstream, cell.backbone)
        extra.append(Cell(table["id"], cell.row, "reference", "moco", {}, cell.pretrain_flavour, cell.downstream,
                          cell.protocol, "per_class_acc", backbone=cell.backbone, run=moco))
        extra.append(Cell(table["id"], cell.row, "static", "supervised", {"static": True, "dropout": 0.0},
                          cell.downstream, cell.downstream, "classifier", "per_class_acc", backbone=cell.backbone,
                          run=static))
    return extra


def class_points(plan: TablePlan, path_of: EvalPath) -> pd.DataFrame:
    """BE Figure 4's dots: per class (and seed), the static classifier's top-1 and the relative top-1
    improvement (%) of the row's method over MoCo: 100 (acc_method - acc_moco) / acc_moco. A class where MoCo
    scores 0 has no relative improvement and is left out (counted in the caption)."""
    by_role = {(c.row, c.column): c for c in plan.cells}
    out = []
    for cell in plan.cells:
        if cell.column != plan.table["columns"][0]["id"] or not cell.reproduced:
            continue
        ref, static = by_role[(cell.row, "reference")], by_role[(cell.row, "static")]
        classes = None
        for seed in plan.seeds:
            acc = {}
            for role, c in (("method", cell), ("moco", ref), ("static", static)):
                path = path_of(c.run, seed, c.downstream, c.protocol)
                record = _read(path)
                acc[role] = per_class(record, path)
                classes = classes or _class_names(plan.cfg, c.downstream)
            for k in range(len(acc["method"])):
                rel = (100.0 * (acc["method"][k] - acc["moco"][k]) / acc["moco"][k]) if acc["moco"][k] > 0 else np.nan
                out.append({"row": cell.row, "seed": seed, "class": classes[k] if classes else str(k),
                            "static_top1": 100.0 * acc["static"][k], "moco_top1": 100.0 * acc["moco"][k],
                            "method_top1": 100.0 * acc["method"][k], "relative_improvement": rel})
    return pd.DataFrame(out, columns=["row", "seed", "class", "static_top1", "moco_top1", "method_top1",
                                      "relative_improvement"])


def correlation_values(plan: TablePlan, points: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for cell in plan.cells:
        if cell.column not in ("pearson_r", "p_value"):
            continue
        base = {"row": cell.row, "column": cell.column, "run": cell.run, "downstream": cell.downstream,
                "protocol": cell.protocol, "reason": cell.reason}
        if not cell.reproduced:
            rows.append({**base, "seed": np.nan, "value": np.nan})
            continue
        mine = points[points["row"] == cell.row]
        for seed in plan.seeds:
            r, p, _ = correlation(mine[mine["seed"] == seed])
            rows.append({**base, "seed": seed, "value": r if cell.column == "pearson_r" else p})
    return pd.DataFrame(rows, columns=VALUE_COLUMNS)


def correlation_plot(points, plt, sns):
    """BE Figure 4: per class, static-classifier top-1 vs relative improvement, with a least-squares line."""
    means = points.groupby("class")[["static_top1", "relative_improvement"]].mean().dropna().reset_index()
    r, p, k = correlation(points)
    fig, ax = plt.subplots(figsize=(5, 4))
    sns.regplot(data=means, x="static_top1", y="relative_improvement", ax=ax, ci=95,
                scatter_kws={"s": 30, "color": "#08519c"}, line_kws={"color": "#e6550d"})
    for _, m in means.iterrows():
        ax.annotate(str(m["class"]), (m["static_top1"], m["relative_improvement"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("static-video classifier top-1 per class (%)")
    ax.set_ylabel("relative top-1 improvement over MoCo (%)")
    ax.set_title(f"Pearson r = {r:.2f}, p = {p:.3g} ({k} classes)", fontsize=9)
    return fig


def correlation_record(points: pd.DataFrame) -> dict[str, Any]:
    """The record's `correlation`: r, p and the classes over which they were computed."""
    r, p, k = correlation(points)
    return {"pearson_r": r, "p_value": p, "classes": k,
            "classes_without_moco_accuracy": int(points.groupby("class")["relative_improvement"].mean().isna().sum())}


def collect(plan: TablePlan, path_of: EvalPath) -> Collected:
    """Per-seed r and p (the table's values) and the per-class points they come from."""
    points = class_points(plan, path_of)
    return Collected(correlation_values(plan, points), points)


def render(r: Rendering) -> Rendered:
    """The scatter (files["png"]) and r, p and the class counts in the record."""
    plt, sns = pyplot(), seaborn()
    fig = correlation_plot(r.collected.points, plt, sns)
    with atomic_path(r.files["png"], suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Rendered(record={"correlation": correlation_record(r.collected.points)})


register_table_kind("static_bias_correlation", extra_cells=static_bias_cells, collect=collect, render=render)
