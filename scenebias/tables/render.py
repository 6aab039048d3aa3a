"""Write a regenerated table: CSV (every number), Markdown and LaTeX (published beside reproduced), a plot,
and a JSON record with the caption, the claim verdicts, the compute cost and the provenance."""
from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.stats import ABSENT, format_ci, format_needed
from ..errors import ConfigError
from ..io import atomic_path, write_json, write_text
from .. import layout
from ..provenance import provenance
from ..report.plotting import pyplot, seaborn
from ..resolve import manifest_path
from . import regenerate as rg
from .kinds import RECORD_KEYS, Rendered, Rendering, table_kind
from .plan import TablePlan, plan_table, source_of
from .published import load_paper_tables

OUTPUTS = ("csv", "seeds.csv", "md", "tex", "png", "json")


def outputs(out_dir: str | Path, table_id: str) -> dict[str, Path]:
    return {kind: Path(out_dir) / f"{table_id}.{kind}" for kind in OUTPUTS}


def build_table(cfg: dict[str, Any], table_id: str, results: str | Path, out_dir: str | Path,
                cams: tuple[Path, Path] | None = None) -> dict[str, Any]:
    """Regenerate `table_id` from the evaluation records under `results`; write every output atomically.
    `cams` = (scores CSV, figure PNG) of `scenebias cams`, shown by the class-activation-map figures.

    One straight line: plan the cells once, collect their values once, summarise and judge the claims on them,
    then render what those steps returned."""
    t0 = time.time()
    tables = load_paper_tables()
    if table_id not in tables:
        raise ConfigError(f"--table: unknown table {table_id!r}; expected one of: {', '.join(sorted(tables))}")
    plan = plan_table(cfg, tables[table_id])
    path_of = rg.eval_path_in(results)
    collected = rg.collect(plan, path_of)
    values, points = collected.values, collected.points
    summary = rg.summarise(plan.table, values)
    claims = rg.judge_claims(plan, values, points, collected.correct)
    table = plan.table
    files = outputs(out_dir, table_id)
    manifest = manifest_path(cfg)  # absent when the records were made elsewhere (then no manifest hash)
    _write_csv(summary, files["csv"])
    _write_csv(values if points is None else points, files["seeds.csv"])
    caption = caption_of(plan)
    kind = table_kind(table)
    if kind is not None and kind.render is not None:
        rendered = kind.render(Rendering(plan, collected, summary, claims, files, cams))
    else:
        plot(table, summary, values, files["png"])
        rendered = Rendered()
    caption += rendered.caption
    if rendered.claim_detail:
        for claim in claims:
            claim["detail"] += rendered.claim_detail
    write_text(files["md"], markdown(table, summary, caption, claims) + rendered.markdown)
    write_text(files["tex"], latex(table, summary, caption))
    record = {"table": table_id, "label": f"{table['paper']['short']} {table['label']}", "kind": table["kind"],
              "caption": caption, "paper_caption": table["caption"], "claims": claims,
              "compute": compute_cost(plan, Path(results)),
              "summary": summary.to_dict(orient="records"),
              "wide": wide(table, summary).to_dict(orient="split", index=False),  # keeps column order
              **{key: rendered.record.get(key) for key in RECORD_KEYS},
              "provenance": provenance(cfg={k: cfg[k] for k in ("data", "clip", "backbone", "pretrain", "runs",
                                                                 "evaluate", "seeds")},
                                       seed=None, device="cpu", wall_time_s=time.time() - t0,
                                       manifest=manifest if manifest.is_file() else None,
                                       paper_file=table["paper"]["file"],
                                       paper_sha256=table["paper"]["text_sha256"],
                                       sources=sorted({str(path_of(c.run, s, c.downstream, c.protocol))
                                                       for c in plan.reproduced for s in plan.seeds}))}
    write_json(files["json"], _finite(record))
    return record


# --------------------------------------------------------------------------------------------- caption
def caption_of(plan: TablePlan) -> str:
    """What ran: the dataset -> flavour mapping, the backbone, the seeds, what is not reproduced."""
    cfg, table = plan.cfg, plan.table
    datasets = sorted({d for d in table["grid"].get("pretrain", []) + table["grid"].get("downstream", [])
                       if d and d != "none"})
    mapping = [source_of(cfg, table, dataset) for dataset in datasets]
    backbone = cfg["backbone"]["name"]
    seeds = len(cfg["seeds"])
    return (f"{table['paper']['short']} {table['label']} regenerated on the {cfg['preset']} preset. "
            "Top-1 is on each set's test split, as in the papers; where the set has a scene-swapped copy, "
            "'scene-swapped' is the same model on the test actors pasted onto other classes' scenes. "
            f"Datasets: {'; '.join(mapping) or 'none'}. Every reproduced row uses the preset's backbone "
            f"{backbone} (the paper's backbone is listed beside it). Reproduced: mean ± 95% CI over {seeds} "
            f"seed{'s' if seeds != 1 else ''} (Student t). Claims: paired t-test over seeds, α = {rg.ALPHA}.")


# ------------------------------------------------------------------------------------------- formats
def format_number(x: Any, digits: int = 1, signed: bool = False) -> str:
    """A claim's effect (signed, fixed) or p-value / r (`digits` significant); – for a missing number."""
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}g}" if digits > 1 else f"{x:.{digits}f}"


def swapped_text(claim: dict[str, Any]) -> str:
    """A claim's verdict on the scene-swapped test set, with its deciding effect, interval and the p that decided
    it (the equivalence p of an absent claim) where it was tested."""
    verdict = claim.get("swapped_verdict", "not testable")
    if verdict == "not testable":
        return verdict
    return (f"{verdict}, {format_number(claim.get('swapped_effect'), signed=True)} "
            f"{interval_text(claim, 'swapped_')}, {deciding_p_text(claim, 'swapped_')}")


def interval_text(claim: dict[str, Any], prefix: str = "") -> str:
    """The deciding comparison's 95% interval, [low, high] in pp; – where there is none."""
    low, high = claim.get(f"{prefix}ci_low"), claim.get(f"{prefix}ci_high")
    if format_number(low) == "–" or format_number(high) == "–":
        return "–"
    return f"[{format_number(low, signed=True)}, {format_number(high, signed=True)}]"


def needed_text(claim: dict[str, Any], prefix: str = "") -> str:
    """What would decide the claim: the seeds at which its MDE falls to ±δ, or a correlation's classes."""
    return format_needed(claim.get(f"{prefix}seeds_needed", math.nan), claim.get(f"{prefix}classes_needed", math.nan))


def equivalence_text(claim: dict[str, Any], prefix: str = "") -> str:
    """The equivalence p (Holm within the claim) against ±δ, with δ; – for claims without the test."""
    delta = claim.get(f"{prefix}delta")
    if format_number(delta) == "–":
        return "–"
    return f"{format_number(claim.get(f'{prefix}p_equivalence'), 3)} (±{delta:g})"


def deciding_p_text(claim: dict[str, Any], prefix: str = "") -> str:
    """The p that decided a claim: the equivalence p of an absent one, else the paired test's."""
    if claim.get(f"{prefix}verdict") == ABSENT:
        return f"p within ±{claim[f'{prefix}delta']:g} pp {format_number(claim.get(f'{prefix}p_equivalence'), 3)}"
    return f"p {format_number(claim.get(f'{prefix}p_value'), 3)}"


def holds_text(value: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "–"}[value]


def _digits(table: dict[str, Any]) -> int:
    return 2 if table["metric"] in ("pearson_r", "p_value") else 1


def wide(table: dict[str, Any], summary: pd.DataFrame) -> pd.DataFrame:
    """Row label, paper setting, then per column: the published number and ours."""
    digits = _digits(table)
    records = []
    for row in table["rows"]:
        mine = summary[summary["row"] == row["id"]]
        rec = {"Row": row["row"] or row["id"],
               "Paper backbone / pretraining": f"{mine.iloc[0]['paper_backbone'] or '–'} / "
                                               f"{mine.iloc[0]['paper_pretrain'] or '–'}" if len(mine) else "–",
               "Run (ours)": (mine.iloc[0]["run"] or "–") if len(mine) else "–"}
        for _, cell in mine.iterrows():
            published = cell["published"]
            rec[f"{cell['column_label']} paper"] = "–" if published is None or (
                isinstance(published, float) and math.isnan(published)) else f"{published:g}"
            rec[f"{cell['column_label']} ours"] = format_ci(cell["mean"], cell["ci95"], scale=1.0, digits=digits,
                                                           n=cell["seeds"])
            if not pd.isna(cell["swapped_mean"]):
                rec[f"{cell['column_label']} ours, scene-swapped"] = format_ci(
                    cell["swapped_mean"], cell["swapped_ci95"], scale=1.0, digits=digits, n=cell["seeds"])
        records.append(rec)
    return pd.DataFrame(records)


def markdown(table: dict[str, Any], summary: pd.DataFrame, caption: str, claims: list[dict[str, Any]]) -> str:
    lines = [f"# {table['paper']['short']} {table['label']}", "", f"*Paper:* {table['caption']}", "",
             f"*Here:* {caption}", "", wide(table, summary).to_markdown(index=False), ""]
    reasons = summary.dropna(subset=["reason"]).drop_duplicates("reason")
    if len(reasons):
        lines += ["Not reproduced:", ""] + [f"- {r['label']}: {r['reason']}" for _, r in reasons.iterrows()] + [""]
    if claims:
        lines += ["## Claims", "", "| claim | verdict | deciding effect (pp, or r) | 95% interval | MDE (pp, or r) | "
                  "MDE down to δ at | p | p within ±δ pp | seeds | holds on published numbers "
                  "| on the scene-swapped test: verdict, effect (pp), interval, p |", "|---" * 11 + "|"]
        for c in claims:
            lines.append(f"| {c['claim']} | {c['verdict']} | {format_number(c['effect'], signed=True)} | "
                         f"{interval_text(c)} | {format_number(c.get('mde'))} | {needed_text(c)} | "
                         f"{format_number(c['p_value'], 3)} | {equivalence_text(c)} | {c['n_seeds']} | "
                         f"{holds_text(c['holds_on_published'])} | {swapped_text(c)} |")
        lines += ["", "Effect, interval, MDE and p are the deciding comparison's; the interval spans seeds and, for "
                  "top-1, test clips (a correlation's: its classes, Fisher z); the MDE is the effect the paired t-test "
                  "over these seeds (a correlation: the test over its classes) detects with power 0.8; "
                  "'MDE down to δ at': the seeds at which that MDE, from the observed spread, would fall to ±δ in "
                  "every comparison (a floor: the shared test clips add noise that seeds do not remove), or the "
                  "classes a correlation needs to detect the paper's r; "
                  "absent at this scale: bounded within ±δ (docs/verdicts.md). "
                  "The last column judges the same comparisons on the scene-swapped copy of the test set (each "
                  "actor on another class's scene): the suite's addition, not the papers' setting.", ""]
    return "\n".join(lines)


# Characters pandas' LaTeX escaping leaves alone (they are not special to LaTeX) that the .tex spells in
# LaTeX: in the table (the CIs' ±, the empty cells' –, the papers' † marks) and in the caption (whose en
# dashes stay as typed).
TABLE_SYMBOLS = (("±", r"$\pm$"), ("†", r"$^\dagger$"), ("–", "--"))
CAPTION_SYMBOLS = (("±", r"$\pm$"), ("→", r"$\to$"), ("α", r"$\alpha$"))


def latex(table: dict[str, Any], summary: pd.DataFrame, caption: str) -> str:
    """The wide table as a LaTeX table. Cells and headers are escaped by pandas (Styler.format(escape="latex"));
    a row label's `\\dagger` (the papers' † mark, as the text extraction spells it) becomes a superscript dagger."""
    frame = wide(table, summary).drop(columns=["Run (ours)"])
    frame["Row"] = frame["Row"].map(lambda label: re.sub(r"\s*\\dagger\b", "†", label))
    styler = frame.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    body = _tex_symbols(styler.to_latex(hrules=True, column_format="l" * len(frame.columns)), TABLE_SYMBOLS)
    label = f"tab:{table['id']}"
    return (f"% {table['paper']['short']} {table['label']} regenerated by scenebias\n"
            "\\begin{table}[t]\n\\centering\\small\n" + body +
            f"\\caption{{{_tex_escape(caption)}}}\n\\label{{{label}}}\n\\end{{table}}\n")


def _tex_escape(text: str) -> str:
    """The caption for LaTeX: escaped as pandas escapes a cell (a one-cell table's only line), then CAPTION_SYMBOLS."""
    cell = pd.DataFrame([[text]]).style.hide(axis="index").hide(axis="columns").format(escape="latex").to_latex()
    return _tex_symbols(cell.split("\n")[1].removesuffix(" \\\\"), CAPTION_SYMBOLS)


def _tex_symbols(text: str, symbols: tuple[tuple[str, str], ...]) -> str:
    for symbol, tex in symbols:
        text = text.replace(symbol, tex)
    return text


# ---------------------------------------------------------------------------------------------- plots
def plot(table: dict[str, Any], summary: pd.DataFrame, values: pd.DataFrame, out: Path) -> None:
    """A grid table's figure: published vs reproduced per row, one panel per column."""
    plt, sns = pyplot(), seaborn()
    fig = _comparison_plot(table, summary, values, plt, sns)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _comparison_plot(table, summary, values, plt, sns):
    """Published (diamond) and reproduced (dots per seed, bar = mean) per row, one panel per column."""
    internal = summary[summary["run"].notna() | summary["published"].notna()]
    columns = list(dict.fromkeys(internal["column_label"]))
    rows = [r["row"] or r["id"] for r in table["rows"] if r["method"] is not None]
    fig, axes = plt.subplots(1, max(len(columns), 1), figsize=(3.2 * max(len(columns), 1) + 1,
                                                                0.35 * len(rows) + 1.6), sharey=True, squeeze=False)
    label_of = {r["id"]: r["row"] or r["id"] for r in table["rows"]}
    for ax, column in zip(axes[0], columns):
        cid = internal[internal["column_label"] == column]["column"].iloc[0]
        pub = internal[(internal["column"] == cid) & internal["row"].map(lambda r: label_of[r] in rows)]
        ours = values[(values["column"] == cid)].dropna(subset=["value"]).assign(label=lambda d: d["row"].map(label_of))
        if len(ours):
            sns.barplot(data=ours, y="label", x="value", order=rows, ax=ax, color="#9ecae1", errorbar=("ci", 95),
                        label="reproduced (mean, 95% CI)")
            sns.stripplot(data=ours, y="label", x="value", order=rows, ax=ax, color="#08519c", size=3)
        pub = pub.assign(label=pub["row"].map(label_of)).dropna(subset=["published"])
        ax.scatter(pub["published"], [rows.index(lbl) for lbl in pub["label"]], marker="D", color="#e6550d",
                   zorder=5, label="published")
        ax.set_title(column)
        ax.set_xlabel(table["metric"].replace("_", " ") + (" (%)" if table["metric"] in ("top1", "recall_at_k")
                                                            else ""))
        ax.set_ylabel("")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"{table['paper']['short']} {table['label']}: published vs reproduced", fontsize=10, y=1.02)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


# -------------------------------------------------------------------------------------------- compute
def compute_cost(plan: TablePlan, results: Path) -> dict[str, Any]:
    """CPU/GPU time the table's jobs took, from Snakemake `benchmark:` files (those present)."""
    keys = {c.eval_key for c in plan.reproduced}
    runs = {k[0] for k in keys}
    files = [Path(layout.benchmark(results, layout.pretrain_job(run, s))) for run in runs for s in plan.seeds]
    files += [Path(layout.benchmark(results, layout.evaluate_job(run, s, d, p)))
              for run, d, p in keys for s in plan.seeds]
    seconds, found, rss = 0.0, 0, 0.0
    for f in files:
        if f.is_file():
            frame = pd.read_csv(f, sep="\t")
            seconds += float(frame["s"].sum())
            rss = max(rss, float(frame["max_rss"].max()) if "max_rss" in frame else 0.0)
            found += 1
    return {"jobs": len(files), "jobs_measured": found, "job_seconds": round(seconds, 1),
            "max_rss_mb": round(rss, 1), "runs": sorted(runs), "evaluations": len(keys) * len(plan.seeds)}


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)


def _finite(obj: Any) -> Any:
    """JSON has no NaN: None instead."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item"):
        return _finite(obj.item())
    return obj


__all__ = ["OUTPUTS", "outputs", "build_table", "caption_of", "wide", "markdown", "latex", "plot", "compute_cost",
           "format_number", "holds_text", "swapped_text", "interval_text", "equivalence_text", "deciding_p_text"]
