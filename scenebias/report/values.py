"""How the report writes its values: Markdown tables and the gates' measured values in words (shared by the HTML
report, the results page and the calibration study)."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..analysis.calibration import MOCO_RUN, ORACLE_RUN
from ..analysis.stats import format_ci


def markdown_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(v) for v in row.tolist()) + " |")
    return "\n".join(lines) + "\n"


def pct(summary: dict[str, Any] | None) -> str:
    return format_ci(summary["mean"], summary["ci95"]) if summary and summary.get("seeds") else "–"


KIND_OF_GATE = {"a": "threshold", "b": "scene", "c": "gap", "d": "paired"}  # the primary's gates


def gate_values(g: dict[str, Any]) -> str:
    """The measured values of one gate, in words."""
    kind = g.get("kind") or KIND_OF_GATE[g["gate"]]
    if g["status"] == "not available" and kind != "paired":
        return g.get("detail", "not available")
    if kind == "threshold":
        seeds = ", ".join(f"{100 * v:.1f}" for v in g["swapped"]["per_seed"].values()) or "–"
        return f"{g.get('test_set', 'swapped')} top-1 {pct(g['swapped'])}% (seeds: {seeds})"
    if kind == "scene":
        return f"biased {pct(g['biased'])}%, swapped {pct(g['swapped'])}%"
    if kind == "gap":
        gap = "–" if math.isnan(g["gap_pp"]) else f"{g['gap_pp']:.1f} pp"
        return f"MoCo swapped {pct(g['moco_swapped'])}%; below (a) by {gap}"
    mde = "–" if math.isnan(g.get("mde_pp", math.nan)) else f"{g['mde_pp']:.1f} pp"
    with_mde = "mde_pp" in g
    if g["status"] == "not available":
        return f"{g['detail']}; MDE of a paired test at this seed count {mde}" if with_mde else g["detail"]
    effect = g.get("effect_pp", math.nan)
    shown = "–" if math.isnan(effect) else (f"{effect:+.1f}" + ("" if math.isnan(g.get("effect_ci95_pp", math.nan))
                                                              else f" ± {g['effect_ci95_pp']:.1f}") + " pp")
    p = g.get("p_value", math.nan)
    better = "oracle" if g.get("better", ORACLE_RUN) == ORACLE_RUN else g["better"]
    worse = "MoCo" if g.get("worse", MOCO_RUN) == MOCO_RUN else g["worse"]
    return (f"{better} {g.get('test_set', 'swapped')} {pct(g.get('oracle_swapped'))}% vs {worse} "
            f"{pct(g.get('moco_swapped'))}%: "
            f"{shown}, p {'–' if math.isnan(p) else f'{p:.3g}'} ({g.get('seeds', 0)} seeds)"
            + (f"; MDE of a paired test at this seed count {mde}" if with_mde else ""))
