"""Regenerate one paper table: reproduced numbers per seed, mean ± 95% CI beside the published ones, claims.

Inputs are the evaluation records the table's cells name (scenebias.tables.plan); nothing else is read, so a
table is a pure function of its jobs' outputs. Accuracies and recalls are shown in percent, like the papers.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from .. import layout
from ..analysis import stats as stats_
from ..analysis.stats import ABSENT, ALPHA, mean_ci
from ..errors import DataError
from ..evaluate.retrieval import result_key
from ..io import read_json
from ..resolve import split
from .kinds import table_kind
from .plan import Cell, TablePlan
from .published import claim_holds

VERDICTS = ("reproduced", "contradicted", ABSENT, "inconclusive", "not testable")

SUMMARY_COLUMNS = ["row", "label", "column", "column_label", "published", "mean", "ci95", "seeds", "run",
                   "downstream", "paper_backbone", "paper_pretrain", "reason", "swapped_mean", "swapped_ci95"]
VALUE_COLUMNS = ["row", "column", "run", "downstream", "protocol", "reason", "seed", "value", "swapped"]

EvalPath = Callable[[str, int, str, str], Path]  # (run, seed, downstream, protocol) -> metrics JSON
# (row, column, seed, "value" or "swapped") -> one 0/1 per test video, in test-split order
PerVideo = dict[tuple[str, str, Any, str], np.ndarray]
VideoDiffs = Callable[[Cell, Cell, list], np.ndarray | None]  # (cell A, cell B, seeds) -> seeds × videos, pp


def eval_path_in(results: str | Path) -> EvalPath:
    """The workflow's evaluation records under `results` (scenebias.layout.evaluation)."""
    return lambda run, seed, downstream, protocol: Path(layout.evaluation(results, run, seed, downstream, protocol))


# ------------------------------------------------------------------------------------------ values
def own_test_set(record: dict[str, Any]) -> str:
    """The test set a cell reads: the one that is the downstream set's own test split (`biased` on the primary set,
    `test` on any other), never a copy (scene-swapped, static) that sorts before it."""
    sets = record["test_sets"]
    return next((name for name, flavour in sets.items() if flavour == record.get("downstream")), next(iter(sets)))


def cell_value(record: dict[str, Any], cell: Cell, where: str | Path) -> float:
    """The number a cell shows, from one evaluation record: top-1, or recall@k (in the cell's variant and level)
    in percent."""
    test_set = own_test_set(record)
    results = record["results"]
    try:
        if cell.metric == "top1":
            return 100.0 * float(results[test_set]["top1"])
        if cell.metric == "recall_at_k":
            return 100.0 * float(results[result_key(*cell.retrieval)][test_set][f"R@{cell.k}"])
    except KeyError as exc:
        raise DataError(f"{where}: no {exc.args[0]!r} in the results for {cell.table} {cell.row}/{cell.column} "
                        f"(metric {cell.metric})") from None
    raise DataError(f"{where}: metric {cell.metric!r} of {cell.table} is not read from one record")


def per_class(record: dict[str, Any], where: str | Path) -> np.ndarray:
    test_set = own_test_set(record)
    try:
        return np.asarray(record["results"][test_set]["per_class_acc"], dtype=float)
    except KeyError:
        raise DataError(f"{where}: no per_class_acc for test set {test_set!r}") from None


class Collected(NamedTuple):
    """A table's reproduced numbers, read once from the evaluation records."""
    values: pd.DataFrame  # one row per (table row, column, seed): VALUE_COLUMNS
    points: pd.DataFrame | None  # BE Figure 4's per-class dots (static-bias tables), else None
    correct: PerVideo | None = None  # top-1 cells' per-video correctness, biased and scene-swapped


def collect(plan: TablePlan, path_of: EvalPath) -> Collected:
    """One row per (table row, column, seed) with the reproduced value; unreproduced cells get one row with
    value NaN and the reason. A table of a registered kind (scenebias.tables.kinds) is collected by its kind
    (BE Figure 4: per-seed Pearson r and p over classes, and the per-class points). Top-1 cells keep each seed's per-video correctness too (`Collected.correct`), for the
    claims' bootstrap over test clips."""
    kind = table_kind(plan.table)
    if kind is not None and kind.collect is not None:
        return kind.collect(plan, path_of)
    values, correct = _cell_values(plan, path_of)
    return Collected(values, None, correct)


def _cell_values(plan: TablePlan, path_of: EvalPath) -> tuple[pd.DataFrame, PerVideo]:
    rows, correct = [], {}
    for cell in plan.cells:
        base = {"row": cell.row, "column": cell.column, "run": cell.run, "downstream": cell.downstream,
                "protocol": cell.protocol, "reason": cell.reason}
        if not cell.reproduced:
            rows.append({**base, "seed": np.nan, "value": np.nan, "swapped": np.nan})
            continue
        for seed in plan.seeds:
            path = path_of(cell.run, seed, cell.downstream, cell.protocol)
            record = _read(path)
            rows.append({**base, "seed": seed, "value": cell_value(record, cell, path),
                         "swapped": swapped_value(record, cell)})
            for which, flags in per_video_correct(record, cell).items():
                correct[(cell.row, cell.column, seed, which)] = flags
    return pd.DataFrame(rows, columns=VALUE_COLUMNS), correct


def per_video_correct(record: dict[str, Any], cell: Cell) -> dict[str, np.ndarray]:
    """A top-1 cell's 0/1 per test video, in test-split order: "value" on the primary test set, "swapped" on the
    scene-swapped one where the record has it (the names of VALUE_COLUMNS they belong to). Recall cells: none."""
    if cell.metric != "top1":
        return {}
    results = record["results"]
    found = {"value": results.get(own_test_set(record), {}), "swapped": results.get("swapped")}
    return {which: np.asarray(r["correct"], dtype=float) for which, r in found.items()
            if isinstance(r, dict) and "correct" in r}


def swapped_value(record: dict[str, Any], cell: Cell) -> float:
    """The same cell on the scene-swapped test set (the actor on another class's scene), where the primary
    downstream set has one: what separates a motion representation from the scene shortcut."""
    swapped = record["results"].get("swapped")
    if cell.metric == "top1" and isinstance(swapped, dict) and "top1" in swapped:
        return 100.0 * float(swapped["top1"])
    return math.nan


def _class_means(points: pd.DataFrame) -> pd.DataFrame:
    return points.groupby("class")[["static_top1", "relative_improvement"]].mean().dropna()


def _why_undefined(means: pd.DataFrame) -> str | None:
    if len(means) < 3:
        return f"{len(means)} class(es) with a MoCo accuracy above 0, fewer than 3"
    same = [label for column, label in (("static_top1", "the static classifier's top-1"),
                                        ("relative_improvement", "the relative improvement over MoCo"))
            if means[column].std() == 0]
    return f"{' and '.join(same)} is the same for every class (no spread)" if same else None


def correlation_undefined(points: pd.DataFrame) -> str | None:
    """Why Pearson's r over these classes is undefined (None: it is defined), for the claim's detail."""
    return _why_undefined(_class_means(points))


def correlation(points: pd.DataFrame) -> tuple[float, float, int]:
    """Pearson r and its two-sided p over classes (seed-averaged points), and the number of classes used."""
    means = _class_means(points)
    if _why_undefined(means):
        return math.nan, math.nan, len(means)
    r, p = stats.pearsonr(means["static_top1"], means["relative_improvement"])
    return float(r), float(p), len(means)


def correlation_interval(points: pd.DataFrame, level: float = 0.95) -> tuple[float, float]:
    """Pearson r's confidence interval over classes (Fisher's z, scipy), NaN where r is undefined or n < 4."""
    means = _class_means(points)
    if _why_undefined(means) or len(means) < 4:
        return math.nan, math.nan
    ci = stats.pearsonr(means["static_top1"], means["relative_improvement"]).confidence_interval(level)
    return float(ci.low), float(ci.high)


# --------------------------------------------------------------------------------------------- summary
def summarise(table: dict[str, Any], values: pd.DataFrame) -> pd.DataFrame:
    """One row per (table row, column): published, reproduced mean, CI half-width, seeds, run, reason."""
    out = []
    for row in table["rows"]:
        for column in table["columns"]:
            mine = values[(values["row"] == row["id"]) & (values["column"] == column["id"])]
            mean, half, n = mean_ci(mine["value"]) if len(mine) else (math.nan, math.nan, 0)
            s_mean, s_half, _ = mean_ci(mine["swapped"]) if len(mine) else (math.nan, math.nan, 0)
            first = mine.iloc[0] if len(mine) else None
            reason = (first["reason"] if first is not None else
                      ("another paper's method: published number only" if row["external"] else None))
            out.append({"row": row["id"], "label": row["row"] or row["id"], "column": column["id"],
                        "column_label": column["label"], "published": row["values"][column["id"]],
                        "mean": mean, "ci95": half, "seeds": n,
                        "run": first["run"] if first is not None else None,
                        "downstream": first["downstream"] if first is not None else None,
                        "paper_backbone": row.get("backbone_printed") or row.get("backbone"),
                        "paper_pretrain": row.get("pretrain"), "reason": reason,
                        "swapped_mean": s_mean, "swapped_ci95": s_half})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


# ---------------------------------------------------------------------------------------------- claims
def judge_claims(plan: TablePlan, values: pd.DataFrame, points: pd.DataFrame | None = None,
                 correct: PerVideo | None = None) -> list[dict[str, Any]]:
    """Every claim of the table judged on the reproduced numbers (`collect`'s) by a paired test over seeds; with
    `correct` (`collect`'s per-video correctness) the intervals and the equivalence test cover the test clips too."""
    table = plan.table
    smallest = float(plan.cfg["analysis"]["smallest_effect_pp"])
    cells = {(c.row, c.column): c for c in plan.cells}
    # The same claim judged again on the scene-swapped test set (the suite's addition, not the papers' setting):
    # where the biased test saturates at the scene shortcut's ceiling, this is what can still separate methods.
    on_swapped = values.assign(value=values["swapped"]) if "swapped" in values else None
    verdicts = []
    for claim in table["claims"]:
        base = {"table": table["id"], "claim": claim["id"], "text": claim["text"], "section": claim["section"],
                "direction": claim["direction"], "holds_on_published": claim_holds(claim, table),
                "downstreams": claim_downstreams(claim, plan)}
        if claim["direction"] == "qualitative":
            judged = _not_testable("qualitative: see the figure (class activation maps)")
            swapped = _not_testable("qualitative")
        elif claim["direction"] == "negative_correlation":
            judged = _judge_correlation(claim, points, published_r(table, claim))
            swapped = _not_testable("per-class static-bias correlation: measured on the biased test set only")
        else:
            judged = _judge_comparisons(claim, values, cells, smallest, _videos(correct, "value"))
            swapped = (_judge_comparisons(claim, on_swapped, cells, smallest, _videos(correct, "swapped"))
                       if on_swapped is not None else _not_testable("no scene-swapped values"))
        verdicts.append({**base, **judged, **{f"swapped_{k}": v for k, v in swapped.items()}})
    return verdicts


def claim_downstreams(claim: dict[str, Any], plan: TablePlan) -> list[str]:
    """The downstream sets a claim is judged on (those of its reproduced cells): the sets whose gates decide
    whether the data can decide it."""
    if claim["direction"] == "qualitative":
        return []
    cells = {(c.row, c.column): c for c in plan.cells}
    if claim["direction"] == "negative_correlation":
        found = plan.reproduced
    else:
        found = [cells[key] for a, ca, b, cb in comparisons(claim) for key in ((a, ca), (b, cb)) if key in cells]
    return sorted({c.downstream for c in found if c.reproduced})


NO_NUMBERS = {"effect": math.nan, "ci_low": math.nan, "ci_high": math.nan, "mde": math.nan, "delta": math.nan,
              "seeds_needed": math.nan, "classes_needed": math.nan,
              "p_value": math.nan, "p_value_uncorrected": math.nan, "p_equivalence": math.nan,
              "p_equivalence_uncorrected": math.nan, "interval_sources": None}


def _not_testable(detail: str) -> dict[str, Any]:
    return {"verdict": "not testable", **NO_NUMBERS, "comparisons_tested": 0, "n_seeds": 0, "detail": detail}


def comparisons(claim: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(row A, column A, row B, column B) of every comparison a claim makes."""
    if "column_pairs" in claim:
        return [(r, a, r, b) for r in claim["rows"] for a, b in claim["column_pairs"]]
    pairs = [claim["compare"]] if "compare" in claim else claim.get("pairs", [])
    return [(a, c, b, c) for a, b in pairs for c in claim["columns"]]


def _judge_comparisons(claim, values, cells, smallest: float, videos: VideoDiffs) -> dict[str, Any]:
    """A claim's comparisons tested one by one, their p-values Holm-corrected within the claim (the family), each
    comparison's verdict taken on its corrected p; then the claim: contradicted if any comparison is, reproduced if
    all are, absent at this scale if all are, else inconclusive. Greater and less claims test equivalence within
    ±δ, δ = the larger of `smallest` (the config's smallest meaningful effect) and the claim's stated margin. The
    numbers shown (effect, interval, MDE, p) are the deciding comparison's."""
    direction, margin = claim["direction"], claim.get("margin", 0.0)
    delta = max(smallest, margin) if direction in ("greater", "less") else None
    results, skipped = [], []
    for ra, ca, rb, cb in comparisons(claim):
        a, b = cells.get((ra, ca)), cells.get((rb, cb))
        if a is None or b is None or not a.reproduced or not b.reproduced:
            skipped.append(f"{ra}/{ca} vs {rb}/{cb}: " + ("an external row (published only)" if a is None or b is None
                                                       else (a.reason if a is not None and not a.reproduced
                                                             else b.reason)))
            continue
        if a.eval_key == b.eval_key:
            skipped.append(f"{ra}/{ca} vs {rb}/{cb}: the same run and evaluation on this preset")
            continue
        diffs = _paired(values, (ra, ca), (rb, cb))
        if len(diffs) == 0:  # only on the scene-swapped set: a downstream set without a swapped copy
            skipped.append(f"{ra}/{ca} vs {rb}/{cb}: no scene-swapped test set for this downstream set")
            continue
        per_video = videos(a, b, list(diffs.index)) if a.downstream == b.downstream else None
        results.append(stats_.paired_comparison(diffs.to_numpy(dtype=float), direction, margin,
                                                claim.get("tolerance"), delta, per_video)
                       | {"pair": f"{ra}/{ca} − {rb}/{cb}"})
    if not results:
        return _not_testable("; ".join(skipped) or "no comparison")
    stats_.holm_correct(results, direction)
    verdict = _claim_verdict([r["verdict"] for r in results])
    worst = _deciding(results, verdict)
    m = sum(1 for r in results if not math.isnan(r["p_value_uncorrected"]))
    detail = "; ".join(f"{r['pair']}: {r['effect']:+.1f} pp " + (_comparison_text(r, m) if r["n"] > 1
                                                                 else "(one seed: no test)") for r in results)
    if m > 1:
        detail = f"Holm-corrected over {m} comparisons: " + detail
    if delta is not None:
        why = "the claim's stated margin" if margin > smallest else "the smallest effect declared meaningful"
        detail = f"equivalence bound ±{delta:g} pp ({why}): " + detail
    if margin:
        detail = f"tested against the stated margin of {margin:g} pp: " + detail
    if skipped:
        detail += "; not tested: " + "; ".join(skipped)
    numbers = {k: worst.get(k, math.nan) for k in NO_NUMBERS}
    # the claim is decided only when every comparison is: the most seeds any of them needs
    numbers["seeds_needed"] = max((r["seeds_needed"] for r in results), key=lambda x: np.nan_to_num(x, nan=-1.0))
    return {"verdict": verdict, **numbers, "comparisons_tested": m,
            "n_seeds": min(r["n"] for r in results), "detail": detail}


def _claim_verdict(verdicts: list[str]) -> str:
    if "contradicted" in verdicts:
        return "contradicted"
    for unanimous in ("reproduced", ABSENT):
        if all(v == unanimous for v in verdicts):
            return unanimous
    return "inconclusive"


def _deciding(results: list[dict[str, Any]], verdict: str) -> dict[str, Any]:
    """The comparison whose numbers the claim shows: the strongest contradiction, the weakest equivalence (largest
    corrected equivalence p) of an absent claim, else the weakest comparison (by corrected p, ties by the raw p)."""
    def by(key: str):
        return lambda r: (np.nan_to_num(r[key], nan=1.0), np.nan_to_num(r[f"{key}_uncorrected"], nan=1.0))

    if verdict == "contradicted":
        return min((r for r in results if r["verdict"] == "contradicted"), key=by("p_value"))
    return max(results, key=by("p_equivalence" if verdict == ABSENT else "p_value"))


def _comparison_text(r: dict[str, Any], m: int) -> str:
    text = (f"(d_z {r['d_z']:.2f}, p {r['p_value']:.3g}" + (f", uncorrected {r['p_value_uncorrected']:.3g}" if m > 1
                                                            else "") + f", {r['verdict']})")
    text += f", 95% interval [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] over {r['interval_sources']}"
    if not math.isnan(r["mde"]):
        text += f", MDE {r['mde']:.1f} pp"
    if not math.isnan(r["seeds_needed"]):
        bound = f"±{r['delta']:g} pp" if not math.isnan(r["delta"]) else "the tolerance"
        text += f", MDE down to {bound} at {stats_.format_needed(r['seeds_needed'], math.nan)}"
    if not math.isnan(r["p_equivalence"]):
        text += f", equivalence p {r['p_equivalence']:.3g}"
    return text


def _paired(values: pd.DataFrame, a: tuple[str, str], b: tuple[str, str]) -> pd.Series:
    """Per-seed differences A − B, indexed by seed (the seeds both have)."""
    def series(key):
        mine = values[(values["row"] == key[0]) & (values["column"] == key[1])].dropna(subset=["value"])
        return mine.set_index("seed")["value"]

    sa, sb = series(a), series(b)
    common = sa.index.intersection(sb.index)
    return (sa[common] - sb[common]).astype(float)


def _videos(correct: PerVideo | None, which: str) -> VideoDiffs:
    """Per-video differences (pp) of two cells over the given seeds, seeds × videos, from the per-video
    correctness on test set `which`; None where a seed lacks it or the two were tested on different videos."""
    def diffs(a: Cell, b: Cell, seeds: list) -> np.ndarray | None:
        pairs = [(correct.get((a.row, a.column, s, which)), correct.get((b.row, b.column, s, which)))
                 for s in seeds] if correct else []
        if not pairs or any(x is None or y is None or x.shape != y.shape or x.size == 0 for x, y in pairs):
            return None
        return 100.0 * np.stack([x - y for x, y in pairs])

    return diffs


def published_r(table: dict[str, Any], claim: dict[str, Any]) -> float | None:
    """The paper's own r for a correlation claim's first row (its `pearson_r` value), if it prints one."""
    row = next((r for r in table["rows"] if r["id"] == claim["rows"][0]), None)
    return (row or {}).get("values", {}).get("pearson_r")


def _judge_correlation(claim, points, stated: float | None = None) -> dict[str, Any]:
    """Pearson's r of each listed row, p Holm-corrected over the rows (one row in both papers: no change)."""
    if points is None or points.empty:
        return _not_testable("no per-class points")
    results, why = [], {}
    for row in claim["rows"]:
        mine = points[points["row"] == row]
        r, p, k = correlation(mine)
        results.append((row, r, p, k, mine["seed"].nunique()))
        why[row] = correlation_undefined(mine) if math.isnan(r) else None
    adjusted = [float(a) for a in stats_.holm([p for _, _, p, _, _ in results])]
    details = "; ".join(f"{row}: " + (f"r undefined: {why[row]}" if why[row] else f"r = {r:.2f}, p = {p:.3g}")
                        + f" over {k} classes (seed-averaged, {s} seeds)" for row, r, p, k, s in results)
    k = results[0][3]
    mde = stats_.minimum_detectable_r(k, ALPHA)
    details += (f"; with {k} classes the smallest |r| detectable at α {ALPHA:g} with power 0.8 is {mde:.2f}"
                if not math.isnan(mde) else f"; {k} classes are too few to test a correlation")
    if stated is not None:
        details += f" (the paper's r = {stated:g} needs {stats_.points_to_detect_r(stated, ALPHA)} classes)"
    low, high = correlation_interval(points[points["row"] == results[0][0]])
    if len(results) > 1:
        details = f"Holm-corrected over {len(results)} rows (p uncorrected here): " + details
    if any(math.isnan(r) for _, r, _, _, _ in results):
        verdict = "inconclusive"
    elif all(r < 0 and p < ALPHA for (_, r, _, _, _), p in zip(results, adjusted)):
        verdict = "reproduced"
    elif any(r > 0 and p < ALPHA for (_, r, _, _, _), p in zip(results, adjusted)):
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    classes_needed = float(stats_.points_to_detect_r(stated, ALPHA)) if stated is not None else math.nan
    return {"verdict": verdict, **NO_NUMBERS, "effect": results[0][1], "ci_low": low, "ci_high": high, "mde": mde,
            "classes_needed": classes_needed,
            "interval_sources": "classes (Fisher z)" if not math.isnan(low) else None, "p_value": adjusted[0],
            "p_value_uncorrected": results[0][2],
            "comparisons_tested": sum(1 for _, _, p, _, _ in results if not math.isnan(p)),
            "n_seeds": min(s for *_, s in results), "detail": details}


# ------------------------------------------------------------------------------------------ helpers
def _read(path: Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise DataError(f"{path}: evaluation record missing (run the workflow: snakemake <table id>)")
    return read_json(path)


def _class_names(cfg: dict[str, Any], flavour: str) -> list[str] | None:
    try:
        return list(split(cfg, flavour, "test").class_names)
    except Exception:  # names are a nicety for the plot; the numbers do not depend on them
        return None


__all__ = ["ALPHA", "VERDICTS", "Collected", "eval_path_in", "collect", "per_video_correct",
           "correlation", "summarise", "judge_claims", "comparisons"]
