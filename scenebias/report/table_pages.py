"""Report pages for the regenerated paper tables: an overview section (every claim's verdict, the tally) and
one page per table or figure, built from the JSON records `scenebias table` writes."""
from __future__ import annotations

import html
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.stats import ABSENT, format_ci
from ..io import read_json, write_text
from ..plugins import load_methods
from ..tables.regenerate import SUMMARY_COLUMNS
from ..tables.render import equivalence_text, format_number, holds_text, interval_text, swapped_text
from .page import html_page

UNDECIDABLE = "the data cannot decide"
VERDICT_COLOURS = {"reproduced": "#d9f0d3", "contradicted": "#f4cccc", ABSENT: "#d6e4f0",
                   "inconclusive": "#fff2cc", UNDECIDABLE: "#f3e0f7", "not testable": "#eeeeee"}


def load_records(paths: list[Path]) -> list[dict[str, Any]]:
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
    rows = [{"table": r["label"], "table_id": r["table"], **c} for r in records for c in r["claims"]]
    return pd.DataFrame(rows, columns=["table", "table_id", "claim", "text", "section", "direction", "verdict",
                                       "effect", "ci_low", "ci_high", "mde", "p_value", "p_value_uncorrected",
                                       "delta", "p_equivalence", "n_seeds", "holds_on_published", "detail",
                                       "swapped_verdict", "swapped_effect", "swapped_ci_low", "swapped_ci_high",
                                       "swapped_mde", "swapped_p_value", "swapped_p_value_uncorrected",
                                       "swapped_p_equivalence", "swapped_detail"])


def tally(records: list[dict[str, Any]], key: str = "verdict") -> Counter:
    """Claims per verdict; key "swapped_verdict" counts the verdicts on the scene-swapped test set."""
    return Counter(c.get(key, "not testable") for r in records for c in r["claims"])


def _pills(counts: Counter) -> str:
    return ", ".join(f"<span class='pill' style='background:{VERDICT_COLOURS[v]}'>{counts.get(v, 0)} {v}</span>"
                     for v in VERDICT_COLOURS)


def overview_section(records: list[dict[str, Any]], css_prefix: str = "") -> str:
    """The index page's section: tally, one line per table, one row per claim."""
    if not records:
        return "<h2>Paper tables</h2><p class='note'>No paper tables in this preset (config key <code>tables</code>).</p>"
    summary, swapped = _pills(tally(records)), _pills(tally(records, "swapped_verdict"))
    links = "".join(f"<li><a href='tables/{r['table']}.html'>{html.escape(r['label'])}</a> — "
                    f"{_claim_counts(r)}</li>" for r in records)
    return f"""
<h2>Paper tables and claims</h2>
<p>Every table and figure of both papers regenerated on this preset, published numbers beside ours. Claims: {summary}
(paired t-test over seeds, two-sided; the comparisons within one claim are Holm-corrected together, so each claim
is judged at a family-wise α = 0.05: its verdict uses the corrected p, and the uncorrected p is shown beside it;
<i>{ABSENT}</i>: neither reproduced nor contradicted, and an equivalence test over seeds (and test clips, where
the records have them) bounds every comparison's effect within ±δ, the smallest effect declared meaningful before
any run (config <code>analysis.smallest_effect_pp</code>, or the claim's own stated margin where larger);
<i>not testable</i>: a comparison with another paper's method, a dataset without stand-in, two rows that are the same
run here, or a qualitative statement). Beside each verdict: the deciding comparison's effect, its 95% interval over
seeds and test clips, and its minimum detectable effect (MDE: what the paired t-test over these seeds detects with
power 0.8 at α = 0.05, from the observed spread).</p>
<p>The same claims judged on the <b>scene-swapped</b> copy of the test set (each actor on another class's scene;
the UCF101-like, HMDB51-like and Actor cells — the suite's addition, not the papers' setting): {swapped}.
<i>{UNDECIDABLE}</i>: the claim is judged on a set that fails or lacks a calibration gate (above), so its
verdict would describe the data, not the methods; the method verdict is in the detail.</p>
<ul>{links}</ul>
{claims_table(records)}
"""


def claims_table(records: list[dict[str, Any]], link: bool = True) -> str:
    rows = []
    for r in records:
        for c in r["claims"]:
            table = (f"<a href='tables/{r['table']}.html'>{html.escape(r['label'])}</a>" if link
                     else html.escape(r["label"]))
            rows.append(
                f"<tr><td>{table}</td><td title='{html.escape(c['text'])}'><code>{html.escape(c['claim'])}</code><br>"
                f"<small>{html.escape(_short(c['text']))}</small></td>"
                f"<td style='background:{VERDICT_COLOURS[c['verdict']]}'>{c['verdict']}</td>"
                f"<td>{format_number(c.get('effect'), signed=True)}</td>"
                f"<td title='{html.escape(str(c.get('interval_sources') or ''))}'>{interval_text(c)}</td>"
                f"<td>{format_number(c.get('mde'))}</td>"
                f"<td>{format_number(c.get('p_value'), digits=3)}</td>"
                f"<td>{format_number(c.get('p_value_uncorrected'), digits=3)}</td>"
                f"<td>{equivalence_text(c)}</td>"
                f"<td>{c.get('n_seeds', 0)}</td><td>{holds_text(c.get('holds_on_published'))}</td>"
                f"<td style='background:{VERDICT_COLOURS[c.get('swapped_verdict', 'not testable')]}' "
                f"title='{html.escape(c.get('swapped_detail', ''))}'>{html.escape(swapped_text(c))}</td>"
                f"<td class='detail'>{_detail(c.get('detail', ''))}</td></tr>")
    return ("<table class='claims'><tr><th>table</th><th>claim</th><th>verdict</th><th>effect (pp or r) of the deciding comparison</th>"
            "<th>95% interval (pp, or r)</th><th>MDE (pp, or r)</th>"
            "<th>p (Holm within the claim)</th><th>uncorrected p</th><th>p within ±δ pp (Holm)</th>"
            "<th>seeds</th><th>on published numbers</th><th>on the scene-swapped test</th><th>detail</th></tr>"
            + "".join(rows) + "</table>")


def write_table_page(record: dict[str, Any], out_dir: Path, css: str, extra_html: str = "") -> Path:
    """tables/<id>.html: caption, published vs reproduced, the plot, claims, compute, provenance."""
    tid = record["table"]
    summary = pd.DataFrame(record["summary"], columns=SUMMARY_COLUMNS)
    wide = pd.DataFrame(record["wide"]["data"], columns=record["wide"]["columns"])
    compute = record.get("compute") or {}
    correlation = record.get("correlation")
    corr = (f"<p>Pearson r = {format_number(correlation['pearson_r'], digits=2)}, "
            f"p = {format_number(correlation['p_value'], digits=3)}"
            f" over {correlation['classes']} classes (seed-averaged; {correlation['classes_without_moco_accuracy']}"
            f" class(es) left out: MoCo top-1 0, no relative improvement).</p>" if correlation else "")
    prov = record.get("provenance", {})
    if record.get("cams"):
        cams = pd.DataFrame(record["cams"]).round(3)
        extra_html += ("<h2>Class activation maps: where the energy is</h2><p class='note'>Share of each clip's CAM "
                       "energy inside the ground-truth actor and inside FAME's foreground mask, mean ± 95% CI over "
                       "clips; the areas are the shares a uniform map would get.</p>"
                       + cams.to_html(index=False, border=0, na_rep="–"))
    body = f"""
<p><a href="../index.html">← report</a></p>
<h1>{html.escape(record['label'])}</h1>
<p><b>Paper:</b> {html.escape(record['paper_caption'])}</p>
<p class="note"><b>Here:</b> {html.escape(record['caption'])}</p>
{wide.to_html(index=False, escape=True, border=0, na_rep="–")}
{_reasons(summary)}
<img src="{tid}.png" alt="{html.escape(record['label'])}: published vs reproduced">
{corr}
{extra_html}
<h2>Claims</h2>
{claims_table([record], link=False)}
<h2>Compute and provenance</h2>
<p class="note">{compute.get('jobs_measured', 0)} of {compute.get('jobs', 0)} jobs measured
(Snakemake <code>benchmark:</code>): {format_number(compute.get('job_seconds', math.nan) / 3600 if compute.get('job_seconds')
                                       is not None else math.nan, digits=3)} job-hours, peak RSS
{compute.get('max_rss_mb', '–')} MB. Runs: {html.escape(', '.join(compute.get('runs', [])) or 'none')}.
Git {html.escape(str(prov.get('git_commit')))}, config {html.escape(str(prov.get('config_hash')))}, dataset manifest
{html.escape(str(prov.get('dataset_manifest_hash')))}, paper text {html.escape(str(prov.get('paper_sha256', ''))[:16])}.</p>
<p class="note">Files: <a href="{tid}.md">Markdown</a> · <a href="{tid}.tex">LaTeX</a> · <a href="{tid}.csv">CSV</a>
· <a href="{tid}.seeds.csv">per seed</a> · <a href="{tid}.json">JSON</a></p>
"""
    page = html_page(record["label"], body, css)
    path = out_dir / "tables" / f"{tid}.html"
    write_text(path, page)
    return path


def write_method_pages(records: list[dict[str, Any]], cfg: dict[str, Any], out_dir: Path, css: str) -> str:
    """methods/<method>.html: every run of the method and every table cell it fills, published beside ours;
    returns the index's list of links."""
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
        run_rows = "".join(f"<li><code>{html.escape(n)}</code>: options {html.escape(str(r.get('options', {})))}"
                           f"{' (from the paper tables)' if r.get('from_tables') else ''}</li>" for n, r in runs.items())
        body = (f"<p><a href='../index.html'>← report</a></p><h1>{html.escape(method)}</h1>"
                f"<p>{html.escape(spec.description)}</p><p class='note'>Source: {html.escape(spec.paper)}. "
                f"Defaults: <code>{html.escape(str(spec.defaults))}</code>.</p><h2>Runs</h2><ul>{run_rows}</ul>"
                f"<h2>Its cells in the paper tables</h2>"
                + (shown.to_html(index=False, border=0, na_rep="–") if len(shown) else "<p class='note'>none</p>"))
        page = html_page(method, body, css)
        safe = method.replace("+", "_plus_")
        write_text(out_dir / "methods" / f"{safe}.html", page)
        links.append(f"<a href='methods/{safe}.html'>{html.escape(method)}</a>")
    return "<h2>Methods</h2><p>" + " · ".join(links) + "</p>"


def _reasons(summary: pd.DataFrame) -> str:
    reasons = summary.dropna(subset=["reason"]).drop_duplicates(["label", "reason"])
    if reasons.empty:
        return ""
    items = "".join(f"<li>{html.escape(str(r['label']))}: {html.escape(str(r['reason']))}</li>"
                    for _, r in reasons.iterrows())
    return f"<details><summary>Rows not reproduced ({len(reasons)})</summary><ul>{items}</ul></details>"


def _detail(text: str) -> str:
    """The per-comparison effects, folded: one line each, behind a summary."""
    parts = [p.strip() for p in text.split("; ") if p.strip()]
    if len(parts) <= 1:
        return f"<small>{html.escape(text)}</small>"
    items = "".join(f"<li>{html.escape(p)}</li>" for p in parts)
    return f"<details><summary><small>{len(parts)} comparisons</small></summary><ul><small>{items}</small></ul></details>"


def _claim_counts(record: dict[str, Any]) -> str:
    counts = Counter(c["verdict"] for c in record["claims"])
    return ", ".join(f"{counts[v]} {v}" for v in VERDICT_COLOURS if counts[v]) or "no claims"


def _short(text: str, n: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
