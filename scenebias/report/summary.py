"""The results page the workflow writes beside the report (reports/<preset>/results.md): gates, claims,
leaderboard and compute in Markdown, from the same values as the HTML report. Its prose is a Jinja2 template."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from ..data.sources import primary_ground_truth, real_flavours
from ..tables.render import format_number, interval_text, needed_text, swapped_text
from .page import TEMPLATES
from .table_pages import UNDECIDABLE, VERDICT_COLOURS, tally
from .values import gate_values, markdown_table

TEMPLATE = TEMPLATES.get_template("results.md.j2")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _counts(counts: Counter) -> str:
    """Claims per verdict in words, every verdict in the report's order."""
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICT_COLOURS)


def gate_rows(calibration: dict[str, Any], primary: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(gate letters, one row per set: the primary first, then each fine-tuning set) for the gates table."""
    sets = [(primary, calibration)] + list((calibration.get("sets") or {}).items())
    letters = sorted({g["gate"] for _, found in sets for g in found.get("gates", [])})
    rows = []
    for name, found in sets:
        by_letter = {g["gate"]: g for g in found.get("gates", [])}
        rows.append({"set": f"`{name}`", "overall": found["overall"],
                     "cells": [_cell(f"{by_letter[x]['status']}: {gate_values(by_letter[x])}") if x in by_letter
                               else "–" for x in letters]})
    return letters, rows


def results_markdown(cfg: dict[str, Any], calibration: dict[str, Any], records: list[dict[str, Any]],
                     leaderboard: pd.DataFrame, stage_seconds: pd.Series) -> str:
    """The page's Markdown, with the HTML report's own formatters (scenebias.report.values): both pages show the
    same numbers. `stage_seconds`: summed job wall time per stage."""
    primary = cfg["data"]["downstream_flavour"]
    letters, rows = gate_rows(calibration, primary)
    if primary_ground_truth(cfg):
        seed = ((cfg["data"].get("generator") or {}).get("seed", 0))
        data_line = f"the generated scene-bias set (generator seed {seed})"
    else:
        data_line = "real datasets " + ", ".join(f"`{f}`" for f in real_flavours(cfg))
    claims = [{"table": _cell(r["label"]), "claim": c["claim"], "verdict": c["verdict"],
               "method_verdict": c.get("method_verdict"),
               "effect": format_number(c.get("effect"), signed=True), "interval": interval_text(c),
               "mde": format_number(c.get("mde")), "needed": needed_text(c),
               "p": format_number(c.get("p_value"), digits=3),
               "swapped": _cell(swapped_text(c))} for r in records for c in r["claims"]]
    compute = ", ".join(f"{stage} {secs / 60:.0f} min" for stage, secs in stage_seconds.items()) or "none recorded"
    return TEMPLATE.render(
        preset=cfg["preset"], data_line=data_line, backbone=cfg["backbone"]["name"], epochs=cfg["pretrain"]["epochs"],
        seeds=cfg["seeds"], primary=primary, calibration=calibration, undecidable=UNDECIDABLE, gate_names=letters,
        gate_rows=rows, claims=claims, tally=_counts(tally(records)), swapped_tally=_counts(tally(records,
                                                                                                 "swapped_verdict")),
        leaderboard=markdown_table(leaderboard), compute=compute)
