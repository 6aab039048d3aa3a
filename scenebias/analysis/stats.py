"""Summary statistics over seeds (mean and a 95% confidence interval, Student t) and the tests behind the claims'
verdicts: paired t-tests over seeds, Holm within a claim, equivalence tests (TOST), the crossed bootstrap over seeds
and test clips, and the minimum detectable effect."""
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


SEEDS_SEARCHED = 1000  # seeds_to_detect looks no further


def format_needed(seeds: float, classes: float) -> str:
    """How many seeds (or, for a correlation, classes) a claim needs to be decided: `27 seeds`, `over 1000 seeds`,
    `32 classes`; – where neither is known."""
    for n, unit in ((seeds, "seeds"), (classes, "classes")):
        if n is not None and not pd.isna(n):
            return f"over {SEEDS_SEARCHED} {unit}" if math.isinf(n) else f"{n:.0f} {unit}"
    return "–"


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


def minimum_detectable_r(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest |ρ| a two-sided test of Pearson's r over n points detects with the given power, by Fisher's z
    (atanh(r)·√(n − 3) is about normal, mean atanh(ρ)·√(n − 3), sd 1); NaN below four points."""
    if n < 4:
        return math.nan
    return math.tanh((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / math.sqrt(n - 3))


def points_to_detect_r(r: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """How many points (classes) that test needs to detect a true |ρ| = |r| with the given power (Fisher's z)."""
    z = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / math.atanh(abs(r))
    return math.ceil(z * z + 3)


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


def seeds_to_detect(sd: float, effect: float, alpha: float = 0.05, power: float = 0.8,
                    most: int = SEEDS_SEARCHED) -> float:
    """Smallest seed count n >= 2 at which that paired t-test's MDE (`minimum_detectable_effect`) is at most
    `effect`, for per-seed differences of standard deviation `sd`: how many seeds would decide a difference of
    that size. Inf beyond `most`; NaN without a positive effect or a finite sd."""
    if not (math.isfinite(sd) and math.isfinite(effect)) or effect <= 0 or sd < 0:
        return math.nan
    if minimum_detectable_effect(sd, most, alpha, power) > effect:
        return math.inf
    low, high = 1, most  # the MDE falls as n grows: bisect for the first n whose MDE is small enough
    while high - low > 1:
        mid = (low + high) // 2
        if minimum_detectable_effect(sd, mid, alpha, power) <= effect:
            high = mid
        else:
            low = mid
    return float(high)


# ----------------------------------------------------------------- a claim's comparisons (paired over seeds)
ALPHA = 0.05  # family-wise level of each claim: its comparisons are Holm-corrected (claims are reported separately)
ABSENT = "absent at this scale"
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: a table stays a pure function of its evaluation records


def tost_p(x: np.ndarray, bound: float) -> float:
    """p of two one-sided tests that mean(x) lies within ±bound (equivalence): the larger of the two one-sided
    p's (`one_sided_p`, so no spread falls back to the sign test), H1 mean > −bound and H1 mean < +bound."""
    return max(one_sided_p(x + bound, "greater"), one_sided_p(x - bound, "less"))


def crossed_bootstrap(per_video: np.ndarray, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                      chunk: int = 1000) -> np.ndarray:
    """Bootstrap replicates of the mean of `per_video` (seeds × test videos, e.g. per-video differences of two
    arms tested on the same videos): each replicate draws seeds and videos with replacement, independently, and
    one video draw serves every drawn seed, because every seed is tested on the same split (a crossed design;
    drawing videos per seed would average the split's own noise away over seeds)."""
    x = np.asarray(per_video, dtype=float)
    n_seeds, n_videos = x.shape
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        seeds = rng.integers(0, n_seeds, (b, n_seeds))
        times_drawn = (seeds[:, :, None] == np.arange(n_seeds)).sum(axis=1)  # (b, seeds)
        per_video_sums = times_drawn @ x  # (b, videos): the drawn seeds' values summed per video
        videos = rng.integers(0, n_videos, (b, n_videos))
        out.append(np.take_along_axis(per_video_sums, videos, axis=1).sum(axis=1) / (n_seeds * n_videos))
    return np.concatenate(out)


def bootstrap_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_tost_p(replicates: np.ndarray, bound: float) -> float:
    """The bootstrap's equivalence p: the larger share of replicates at or beyond −bound or +bound, with the +1
    of a Monte Carlo p (never 0). Below α when the (1 − 2α) percentile interval lies inside ±bound."""
    n = len(replicates)
    beyond = max(int(np.sum(replicates <= -bound)), int(np.sum(replicates >= bound)))
    return (beyond + 1) / (n + 1)


def effect_interval(diffs: np.ndarray, replicates: np.ndarray | None, confidence: float = 0.95) -> tuple[float, float]:
    """The interval shown for a paired effect: the span of the seed-level Student-t interval (exact for few seeds,
    but blind to the test clips every seed shares) and the crossed bootstrap's (both sources, but too narrow
    in the seed direction at few seeds); NaN below two seeds."""
    mean, half, n = mean_ci(diffs, confidence)
    if n < 2:
        return math.nan, math.nan
    low, high = mean - half, mean + half
    if replicates is not None:
        b_low, b_high = bootstrap_interval(replicates, confidence)
        low, high = min(low, b_low), max(high, b_high)
    return float(low), float(high)


def _mde(diffs: np.ndarray) -> float:
    """The t-test's MDE from the observed sd; NaN without spread (the sign test decides there, not the t)."""
    if len(diffs) < 2 or no_spread(diffs):
        return math.nan
    return minimum_detectable_effect(float(diffs.std(ddof=1)), len(diffs), ALPHA)


def _seeds_needed(diffs: np.ndarray, bound: float | None) -> float:
    """Seeds at which the t-test's MDE, from the observed sd, falls to `bound` (±δ, or an approx_equal claim's
    tolerance); NaN without spread or a bound. A floor: the test clips every seed shares add noise more seeds
    do not remove, and an sd from few seeds is itself uncertain."""
    if bound is None or len(diffs) < 2 or no_spread(diffs):
        return math.nan
    return seeds_to_detect(float(diffs.std(ddof=1)), float(bound), ALPHA)


def holm_correct(results: list[dict[str, Any]], direction: str) -> None:
    """Holm within one claim, in place: each comparison keeps its raw p as `p_value_uncorrected`, gets the corrected
    one as `p_value` and its verdict again on the corrected p's. Comparisons with one seed (p NaN) are not in the
    family. approx_equal has two families of the same size: the equivalence p's (TOST, for "reproduced") and the
    non-equivalence p's (for "contradicted"), each corrected on its own; greater and less have the equivalence
    p's against ±δ (for "absent at this scale") as their second family."""
    raw = [r["p_value"] for r in results]
    adjusted = holm(raw)
    outside = holm([r["p_outside"] for r in results]) if direction == "approx_equal" else [None] * len(results)
    equivalent = holm([r.get("p_equivalence", math.nan) for r in results])
    for r, p_raw, p_adj, p_out, p_eq in zip(results, raw, adjusted, outside, equivalent):
        r["p_value_uncorrected"], r["p_value"] = p_raw, float(p_adj)
        r["p_equivalence_uncorrected"], r["p_equivalence"] = r.get("p_equivalence", math.nan), float(p_eq)
        if r["n"] > 1:
            r["verdict"] = comparison_verdict(direction, r["agrees"], float(p_adj), p_out, float(p_eq))


def paired_comparison(diffs: np.ndarray, direction: str, margin: float, tolerance: float | None,
                      delta: float | None = None, per_video: np.ndarray | None = None) -> dict[str, Any]:
    """A paired t-test on per-seed differences A − B (percentage points), uncorrected: the verdict of this one
    comparison alone (a claim with several corrects them together, `holm_correct`).

    `delta`: the smallest meaningful effect (pp); greater and less then also test equivalence within ±delta (TOST)
    for "absent at this scale". `per_video`: seeds × test videos of per-video differences (pp, the same videos for
    both arms; each row's mean is that seed's difference), for the crossed bootstrap: it widens the interval
    shown and must bound the effect within ±delta too."""
    n = len(diffs)
    mean = float(diffs.mean()) if n else math.nan
    sd = float(diffs.std(ddof=1)) if n > 1 else math.nan
    d_z = mean / sd if sd and sd > SAME else (math.copysign(math.inf, mean) if n > 1 and mean != 0 else math.nan)
    replicates = crossed_bootstrap(per_video) if per_video is not None and n > 1 else None
    low, high = effect_interval(diffs, replicates)
    bound = tolerance if direction == "approx_equal" else delta
    out = {"effect": mean, "d_z": d_z, "n": n, "ci_low": low, "ci_high": high, "mde": _mde(diffs),
           "seeds_needed": _seeds_needed(diffs, bound),
           "interval_sources": "seeds and test clips" if replicates is not None else "seeds",
           "delta": math.nan if delta is None or direction == "approx_equal" else float(delta),
           "p_equivalence": math.nan}
    if n < 2:
        return out | {"p_value": math.nan, "p_outside": math.nan, "agrees": None, "verdict": "inconclusive"}
    if direction == "approx_equal":  # two one-sided tests against ±tolerance
        p = tost_p(diffs, tolerance)
        outside = min(one_sided_p(diffs - tolerance, "greater"), one_sided_p(diffs + tolerance, "less"))
        return out | {"p_value": p, "p_outside": outside, "agrees": True,
                      "verdict": comparison_verdict(direction, True, p, outside)}
    shifted = diffs - margin if direction == "greater" else diffs + margin
    p = two_sided_p(shifted)
    agrees = bool((mean > margin) if direction == "greater" else (mean < -margin))
    if delta is not None:  # both the seeds' t-test and the bootstrap must bound it (an intersection-union test)
        out["p_equivalence"] = max(tost_p(diffs, delta),
                                   bootstrap_tost_p(replicates, delta) if replicates is not None else 0.0)
    return out | {"p_value": p, "p_outside": math.nan, "agrees": agrees,
                  "verdict": comparison_verdict(direction, agrees, p, None, out["p_equivalence"])}


def comparison_verdict(direction: str, agrees: bool, p: float, p_outside: float | None,
                       p_equivalence: float = math.nan) -> str:
    """One comparison's verdict from its p's (corrected or not): significant in the claimed direction
    (approx_equal: equivalent within the tolerance) -> reproduced; significant the other way (approx_equal:
    `p_outside`, outside the tolerance) -> contradicted; else, for greater and less, equivalent to zero within
    ±δ (`p_equivalence`) -> absent at this scale; else inconclusive."""
    if direction == "approx_equal":
        return "reproduced" if p < ALPHA else "contradicted" if p_outside < ALPHA else "inconclusive"
    if p < ALPHA:
        return "reproduced" if agrees else "contradicted"
    return ABSENT if p_equivalence < ALPHA else "inconclusive"
