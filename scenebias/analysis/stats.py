"""Summary statistics over seeds: mean and a 95% confidence interval (Student t)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width of the CI, n). The half-width is NaN with fewer than two seeds."""
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(x[0]), math.nan, 1
    half = stats.t.ppf(0.5 + confidence / 2, df=n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


def format_ci(mean: Any, half: Any, scale: float = 100.0, digits: int = 1, n: int | None = None) -> str:
    """`mean ± half`, both times `scale` (100: fractions shown in %; 1: numbers already in their unit), with
    `digits` decimals; just the mean without a half-width (one seed); – without a mean, or with `n` = 0 seeds."""
    if n == 0 or mean is None or pd.isna(mean):
        return "–"
    if half is None or pd.isna(half):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {half * scale:.{digits}f}"


SAME = 1e-9  # pp: per-seed differences closer than this are the same count of videos (float round-off only)


def no_spread(x: np.ndarray) -> bool:
    # -0.8333 pp from different totals can differ in the 15th digit; a t-test would read that as certainty
    return bool(np.all(np.abs(x - x[0]) < SAME))


def _sign_test_p(x: np.ndarray, alternative: str) -> float:
    """The exact sign test of differences that are all equal (no spread): scipy's binomial test of k positive
    signs out of n seeds at 1/2, k = n or 0. All differences 0 carry no sign: p = 1."""
    if abs(x[0]) < SAME:
        return 1.0
    n = len(x)
    return float(stats.binomtest(n if x[0] > 0 else 0, n, 0.5, alternative=alternative).pvalue)


def two_sided_p(x: np.ndarray) -> float:
    """p of the two-sided one-sample t-test of mean(x) = 0 (paired differences). No spread (accuracies are
    discrete, so every seed can differ by the same few videos): the t statistic is undefined, and calling it
    infinite would make 3 seeds "certain"; the exact sign test (`scipy.stats.binomtest`) is used instead:
    2 · 0.5ⁿ, at most 1."""
    if no_spread(x):
        return _sign_test_p(x, "two-sided")
    return float(stats.ttest_1samp(x, 0.0).pvalue)


def one_sided_p(x: np.ndarray, alternative: str) -> float:
    """As `two_sided_p`, one-sided ("greater" or "less"); the sign test gives 0.5ⁿ when every difference lies on
    the alternative's side, else 1."""
    if no_spread(x):
        return _sign_test_p(x, alternative)
    return float(stats.ttest_1samp(x, 0.0, alternative=alternative).pvalue)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (family-wise error rate, any dependence).

    Sort the m p-values ascending, multiply the k-th smallest (k = 1 … m) by m − k + 1, take the running maximum
    so the adjusted values keep the order of the raw ones, cap at 1; reject where the adjusted p < α. E.g.
    (0.01, 0.04, 0.03) -> 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.04·1, 0.06) = 0.06: (0.03, 0.06, 0.06).
    NaN entries (comparisons not tested) stay NaN and do not count in m. Returned in the input order.
    """
    p = np.asarray(list(p_values), dtype=float)
    out = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * (m - np.arange(m))  # k-th smallest (0-based k) times m − k
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def minimum_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided paired t-test over n seeds detects with the given power, for
    per-seed differences of standard deviation `sd`: the exact noncentral-t solution (NaN below two seeds)."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    from scipy.optimize import brentq

    if sd <= 0:
        return 0.0

    def shortfall(nc: float) -> float:  # power at noncentrality nc minus the target
        lower = float(stats.nct.cdf(-crit, df, nc))  # the wrong-sign rejections: negligible, NaN in scipy's tail
        return float(stats.nct.sf(crit, df, nc)) + (0.0 if math.isnan(lower) else lower) - power

    nc = brentq(shortfall, 1e-9, 40.0)  # power 0.8 needs nc < 40 for any n >= 2 at alpha >= 1e-3
    return float(nc * sd / math.sqrt(n))


# ----------------------------------------------------------------- a claim's comparisons (paired over seeds)
ALPHA = 0.05  # family-wise level of each claim: its comparisons are Holm-corrected (claims are reported separately)


def holm_correct(results: list[dict[str, Any]], direction: str) -> None:
    """Holm within one claim, in place: each comparison keeps its raw p as `p_value_uncorrected`, gets the corrected
    one as `p_value` and its verdict again on the corrected p's. Comparisons with one seed (p NaN) are not in the
    family. approx_equal has two families of the same size: the equivalence p's (TOST, for "reproduced") and the
    non-equivalence p's (for "contradicted"), each corrected on its own."""
    raw = [r["p_value"] for r in results]
    adjusted = holm(raw)
    outside = holm([r["p_outside"] for r in results]) if direction == "approx_equal" else [None] * len(results)
    for r, p_raw, p_adj, p_out in zip(results, raw, adjusted, outside):
        r["p_value_uncorrected"], r["p_value"] = p_raw, float(p_adj)
        if r["n"] > 1:
            r["verdict"] = comparison_verdict(direction, r["agrees"], float(p_adj), p_out)


def paired_comparison(diffs: np.ndarray, direction: str, margin: float, tolerance: float | None) -> dict[str, Any]:
    """A paired t-test on per-seed differences A − B (percentage points), uncorrected: the verdict of this one
    comparison alone (a claim with several corrects them together, `holm_correct`)."""
    n = len(diffs)
    mean = float(diffs.mean()) if n else math.nan
    sd = float(diffs.std(ddof=1)) if n > 1 else math.nan
    d_z = mean / sd if sd and sd > SAME else (math.copysign(math.inf, mean) if n > 1 and mean != 0 else math.nan)
    out = {"effect": mean, "d_z": d_z, "n": n}
    if n < 2:
        return out | {"p_value": math.nan, "p_outside": math.nan, "agrees": None, "verdict": "inconclusive"}
    if direction == "approx_equal":  # two one-sided tests against ±tolerance
        p_low = one_sided_p(diffs + tolerance, "greater")
        p_high = one_sided_p(diffs - tolerance, "less")
        p = max(p_low, p_high)
        outside = min(one_sided_p(diffs - tolerance, "greater"), one_sided_p(diffs + tolerance, "less"))
        return out | {"p_value": p, "p_outside": outside, "agrees": True,
                      "verdict": comparison_verdict(direction, True, p, outside)}
    shifted = diffs - margin if direction == "greater" else diffs + margin
    p = two_sided_p(shifted)
    agrees = bool((mean > margin) if direction == "greater" else (mean < -margin))
    return out | {"p_value": p, "p_outside": math.nan, "agrees": agrees,
                  "verdict": comparison_verdict(direction, agrees, p, None)}


def comparison_verdict(direction: str, agrees: bool, p: float, p_outside: float | None) -> str:
    """One comparison's verdict from its p (corrected or not): significant in the claimed direction (approx_equal:
    equivalent within the tolerance) -> reproduced; significant the other way (approx_equal: `p_outside`, outside
    the tolerance) -> contradicted; else inconclusive."""
    if direction == "approx_equal":
        return "reproduced" if p < ALPHA else "contradicted" if p_outside < ALPHA else "inconclusive"
    if p < ALPHA:
        return "reproduced" if agrees else "contradicted"
    return "inconclusive"
