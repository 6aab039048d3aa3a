"""Report pages for the regenerated paper tables: an overview section (every claim's verdict, the tally) and
one page per table or figure, built from the JSON records `scenebias table` writes."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.stats import ABSENT, format_ci
from ..io import read_json, write_text
from ..plugins import load_methods
from ..tables.regenerate import SUMMARY_COLUMNS
from ..tables.render import equivalence_text, format_number, holds_text, interval_text, needed_text, swapped_text
from .page import html_page, render

UNDECIDABLE = "the data cannot decide"
VERDICT_COLOURS = {"reproduced": "#d9f0d3", "contradicted": "#f4cccc", ABSENT: "#d6e4f0",
                   "inconclusive": "#fff2cc", UNDECIDABLE: "#f3e0f7", "not testable": "#eeeeee"}


def load_records(paths: list[Path]) -> list[dict[str, Any]]:
    """The paper tables' JSON records among `paths` that exist."""
    return [read_json(p) for p in paths if Path(p).is_file()]


def gate_claims(records: list[dict[str, Any]], calibration: dict[str, Any], primary: str) -> list[dict[str, Any]]:
    """The records with every claim judged on a set that fails or lacks its gates (scenebias.analysis.calibration:
    the primary set's, or an evaluation set's) read "the data cannot decide": the method verdict stays beside it
    (`method_verdict`, `swapped_method_verdict`) and the detail names the set and its failed gates."""
    failing = {name: found for name, found in (calibration.get("sets") or {}).items()
               if found["overall"] in ("fail", "missing")}
    if calibration.get("overall") in ("fail", "missing"):
        failing[primary] = calibration
    out = []
    for record in records:
        claims = []
        for claim in record["claims"]:
            sets = [d for d in claim.get("downstreams", []) if d in failing]
            if sets and claim["verdict"] != "not testable":
                why = "; ".join(f"{d}: " + ", ".join(f"({g['gate']}) {g['status']}" for g in failing[d]["gates"]
                                                     if g["status"] in ("fail", "missing")) for d in sets)
                claim = {**claim, "method_verdict": claim["verdict"], "verdict": UNDECIDABLE,
                         "detail": f"the set fails or lacks its gates ({why}); the method verdict would be "
                                   f"'{claim['verdict']}'. " + claim.get("detail", ""),
                         **({"swapped_method_verdict": claim["swapped_verdict"], "swapped_verdict": UNDECIDABLE}
                            if claim.get("swapped_verdict", "not testable") != "not testable" else {})}
            claims.append(claim)
        out.append({**record, "claims": claims})
    return out


def claims_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Every claim of `records`, one row each, with its table's label and id."""
    rows = [{"table": r["label"], "table_id": r["table"], **c} for r in records for c in r["claims"]]
    return pd.DataFrame(rows, columns=["table", "table_id", "claim", "text", "section", "direction", "verdict",
                                       "effect", "ci_low", "ci_high", "mde", "seeds_needed", "classes_needed",
                                       "p_value", "p_value_uncorrected",
                                       "delta", "p_equivalence", "n_seeds", "holds_on_published", "detail",
                                       "swapped_verdict", "swapped_effect", "swapped_ci_low", "swapped_ci_high",
                                       "swapped_mde", "swapped_p_value", "swapped_p_value_uncorrected",
                                       "swapped_p_equivalence", "swapped_detail"])


def tally(records: list[dict[str, Any]], key: str = "verdict") -> Counter:
    """Claims per verdict; key "swapped_verdict" counts the verdicts on the scene-swapped test set."""
    return Counter(c.get(key, "not testable") for r in records for c in r["claims"])


def overview_section(records: list[dict[str, Any]], css_prefix: str = "") -> str:
    """The index page's section (templates/paper_tables.html.j2): the claims' tallies on each test set, one line
    per table with its verdict counts, and the claims table."""
    return render("paper_tables.html.j2", colours=VERDICT_COLOURS, absent=ABSENT, undecidable=UNDECIDABLE,
                  tally=tally(records), swapped_tally=tally(records, "swapped_verdict"),
                  tables=[{"id": r["table"], "label": r["label"], "counts": Counter(c["verdict"] for c in r["claims"])}
                          for r in records],
                  claims=claims_table(records) if records else "")


def claims_table(records: list[dict[str, Any]], link: bool = True) -> str:
    """Every claim of `records` as one row of templates/claims.html.j2 (values from `_claim_row`); `link`: the
    table's name links to its page."""
    return render("claims.html.j2", link=link, claims=[_claim_row(r, c) for r in records for c in r["claims"]])


def _claim_row(record: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    """One claim's cells: its verdicts and their colours, the deciding comparison's numbers as text, and the
    detail with its comparisons split out."""
    detail = c.get("detail", "")
    return {"table_id": record["table"], "label": record["label"], "claim": c["claim"], "text": c["text"],
            "short_text": _short(c["text"]), "verdict": c["verdict"], "colour": VERDICT_COLOURS[c["verdict"]],
            "effect": format_number(c.get("effect"), signed=True),
            "interval_sources": str(c.get("interval_sources") or ""), "interval": interval_text(c),
            "mde": format_number(c.get("mde")), "needed": needed_text(c), "p": format_number(c.get("p_value"), digits=3),
            "p_uncorrected": format_number(c.get("p_value_uncorrected"), digits=3),
            "equivalence": equivalence_text(c), "seeds": c.get("n_seeds", 0),
            "holds": holds_text(c.get("holds_on_published")),
            "swapped_colour": VERDICT_COLOURS[c.get("swapped_verdict", "not testable")],
            "swapped_detail": c.get("swapped_detail", ""), "swapped": swapped_text(c),
            "detail": detail, "comparisons": [p.strip() for p in detail.split("; ") if p.strip()]}


def write_table_page(record: dict[str, Any], out_dir: Path, css: str, extra_html: str = "") -> Path:
    """tables/<id>.html (templates/table_page.html.j2): caption, published vs reproduced, the rows not reproduced
    and why, the plot, the correlation, `extra_html`, CAM energy shares, claims, compute and provenance."""
    tid = record["table"]
    summary = pd.DataFrame(record["summary"], columns=SUMMARY_COLUMNS)
    wide = pd.DataFrame(record["wide"]["data"], columns=record["wide"]["columns"])
    reasons = summary.dropna(subset=["reason"]).drop_duplicates(["label", "reason"])
    compute = record.get("compute") or {}
    correlation = record.get("correlation")
    prov = record.get("provenance", {})
    job_seconds = compute.get("job_seconds")
    body = render(
        "table_page.html.j2", id=tid, label=record["label"], paper_caption=record["paper_caption"],
        caption=record["caption"], table=wide.to_html(index=False, escape=True, border=0, na_rep="–"),
        reasons=[(str(r["label"]), str(r["reason"])) for _, r in reasons.iterrows()],
        correlation={"r": format_number(correlation["pearson_r"], digits=2),
                     "p": format_number(correlation["p_value"], digits=3), "classes": correlation["classes"],
                     "left_out": correlation["classes_without_moco_accuracy"]} if correlation else None,
        extra_html=extra_html,
        cams=pd.DataFrame(record["cams"]).round(3).to_html(index=False, border=0, na_rep="–")
        if record.get("cams") else "",
        claims=claims_table([record], link=False), jobs_measured=compute.get("jobs_measured", 0),
        jobs=compute.get("jobs", 0),
        job_hours=format_number(job_seconds / 3600 if job_seconds is not None else math.nan, digits=3),
        max_rss_mb=compute.get("max_rss_mb", "–"), runs=", ".join(compute.get("runs", [])),
        git_commit=str(prov.get("git_commit")), config_hash=str(prov.get("config_hash")),
        manifest_hash=str(prov.get("dataset_manifest_hash")), paper_sha256=str(prov.get("paper_sha256", ""))[:16])
    page = html_page(record["label"], body, css)
    path = out_dir / "tables" / f"{tid}.html"
    write_text(path, page)
    return path


def write_method_pages(records: list[dict[str, Any]], cfg: dict[str, Any], out_dir: Path, css: str) -> str:
    """methods/<method>.html (templates/method_page.html.j2): the method's description and defaults, every run of
    it and every table cell it fills, published beside ours; returns the index's links to them
    (templates/method_links.html.j2)."""
    methods = load_methods()
    cells = pd.DataFrame([{**row, "table": r["label"], "table_id": r["table"]} for r in records
                          for row in r["summary"] if row.get("run")],
                         columns=["table", "table_id", "label", "column_label", "published", "mean", "ci95", "seeds",
                                  "run"])
    links = []
    for method in sorted({spec["method"] for spec in cfg["runs"].values()}):
        runs = {name: spec for name, spec in cfg["runs"].items() if spec["method"] == method}
        spec = methods.get(method)
        mine = cells[cells["run"].isin(list(runs))]
        shown = mine.assign(ours=[format_ci(m, c, scale=1.0) for m, c in zip(mine["mean"], mine["ci95"])])[
            ["table", "label", "column_label", "run", "published", "ours", "seeds"]].rename(
            columns={"label": "row", "column_label": "column", "published": "paper"})
        body = render("method_page.html.j2", method=method, description=spec.description, paper=spec.paper,
                      defaults=str(spec.defaults),
                      runs=[(name, str(r.get("options", {})), r.get("from_tables")) for name, r in runs.items()],
                      cells=shown.to_html(index=False, border=0, na_rep="–") if len(shown) else "")
        page = html_page(method, body, css)
        safe = method.replace("+", "_plus_")
        write_text(out_dir / "methods" / f"{safe}.html", page)
        links.append((method, safe))
    return render("method_links.html.j2", methods=links)


def _short(text: str, n: int = 110) -> str:
    """`text` on one line, cut to `n` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
