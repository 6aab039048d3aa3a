"""Gate (d) — the benchmark has power — against independent computations: the oracle and MoCo are paired by seed
(not by row position), fewer than two common seeds is "missing", the p-value is scipy's two-sided paired t-test
(or the two-sided exact sign test when every seed differs by the same amount), the gate's α is 0.05, and the MDE
beside it is solved here from the noncentral t distribution with the seed count of the paired arms when MoCo and
the other run have different numbers of seeds."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenebias.analysis import calibration as C

SQRT3 = math.sqrt(3.0)


def _cell(run: str, protocol: str, test_set: str, by_seed: dict[int, float], role: str = "method") -> list[dict]:
    # rows in descending seed order: pairing by position would not line the seeds up
    return [{"run": run, "method": run, "role": role, "seed": s, "protocol": protocol, "downstream": "ucf101",
             "test_set": test_set, "metric": "top1", "value": v} for s, v in sorted(by_seed.items(), reverse=True)]


def _frame(moco: dict[int, float], oracle: dict[int, float] | None, others: dict[str, dict[int, float]] | None = None):
    """Gates (a)-(c) pass comfortably on seeds 0-4; MoCo, the oracle and any other linear run as given."""
    seeds = range(5)
    rows = _cell("motion_learnability", "classifier", "swapped", {s: 0.9 for s in seeds}, "calibration")
    rows += _cell("scene_shortcut", "classifier", "biased", {s: 0.95 for s in seeds}, "calibration")
    rows += _cell("scene_shortcut", "classifier", "swapped", {s: 0.05 for s in seeds}, "calibration")
    rows += _cell("moco", "linear", "swapped", moco)
    if oracle is not None:
        rows += _cell("moco+oracle_mask", "linear", "swapped", oracle, "reference")
    for run, values in (others or {}).items():
        rows += _cell(run, "linear", "swapped", values)
    return pd.DataFrame(rows)


def _gate_d(frame: pd.DataFrame, ground_truth: bool = True) -> dict:
    gates = C.calibration_gates(frame, ground_truth=ground_truth)
    return next(g for g in gates["gates"] if g["gate"] == "d")


def _with_p(target_p: float, sd_pp: float) -> tuple[dict[int, float], dict[int, float], np.ndarray]:
    """MoCo and oracle over seeds 0-2 whose paired differences (pp) have sample sd `sd_pp` and a two-sided paired
    t-test p of `target_p`: d = m + sd·(−1, 0, 1), t = m / (sd / √3)."""
    m = stats.t.isf(target_p / 2, 2) * sd_pp / SQRT3
    diffs = m + sd_pp * np.array([-1.0, 0.0, 1.0])
    moco = {0: 0.05, 1: 0.07, 2: 0.04}
    oracle = {s: moco[s] + diffs[s] / 100 for s in moco}
    return moco, oracle, diffs


# ------------------------------------------------------------------------------------------- pairing by seed
def test_gate_d_pairs_oracle_and_moco_by_seed_not_by_position():
    # MoCo ran seeds 0-3, the oracle seeds 1-4: only seeds 1, 2, 3 are paired (oracle − MoCo = 15, 18, 22 pp).
    # By position (sorted or as listed) the differences would be others, e.g. 20, 10, 28, 27.
    moco = {0: 0.05, 1: 0.10, 2: 0.02, 3: 0.08}
    oracle = {1: 0.25, 2: 0.20, 3: 0.30, 4: 0.35}
    common = [1, 2, 3]
    a, b = np.array([oracle[s] for s in common]), np.array([moco[s] for s in common])
    gate = _gate_d(_frame(moco, oracle))
    assert gate["seeds"] == 3
    assert gate["effect_pp"] == pytest.approx(100 * (a - b).mean(), rel=1e-12)
    assert gate["effect_pp"] == pytest.approx((15 + 18 + 22) / 3, rel=1e-9)
    assert gate["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    half = stats.t.ppf(0.975, 2) * (100 * (a - b)).std(ddof=1) / SQRT3
    assert gate["effect_ci95_pp"] == pytest.approx(half, rel=1e-9)
    assert gate["status"] == "pass"  # 18.3 pp, p 0.012


def test_gate_d_with_fewer_than_two_common_seeds_is_missing():
    moco = {0: 0.05, 1: 0.06, 2: 0.04}
    # one seed in common (2): three oracle seeds, three MoCo seeds, but no paired test
    one = _gate_d(_frame(moco, {2: 0.30, 3: 0.31, 4: 0.29}))
    assert one["status"] == "missing" and one["seeds"] == 1 and math.isnan(one["p_value"])
    assert C.calibration_gates(_frame(moco, {2: 0.30, 3: 0.31, 4: 0.29}))["overall"] == "missing"
    # no seed in common
    none = _gate_d(_frame(moco, {3: 0.30, 4: 0.31}))
    assert none["status"] == "missing" and none["seeds"] == 0
    # two seeds in common (1, 2) is a test: a verdict, not "missing"
    two = _gate_d(_frame(moco, {1: 0.30, 2: 0.26, 3: 0.31}))
    a, b = np.array([0.30, 0.26]), np.array([0.06, 0.04])
    assert two["seeds"] == 2 and two["status"] in ("pass", "fail")
    assert two["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    assert two["status"] == ("pass" if stats.ttest_rel(a, b).pvalue < 0.05 else "fail")


# ---------------------------------------------------------------------------------------- two-sided, α 0.05
def test_gate_d_p_value_is_two_sided():
    # an effect above 10 pp whose two-sided p is 0.08 and one-sided p 0.04: not significant at 0.05
    moco, oracle, diffs = _with_p(0.08, sd_pp=6.0)
    assert diffs.mean() > 10
    a, b = np.array([oracle[s] for s in range(3)]), np.array([moco[s] for s in range(3)])
    two_sided = stats.ttest_rel(a, b).pvalue
    one_sided = stats.ttest_rel(a, b, alternative="greater").pvalue
    assert two_sided == pytest.approx(0.08, rel=1e-6) and one_sided == pytest.approx(0.04, rel=1e-6)
    gate = _gate_d(_frame(moco, oracle))
    assert gate["p_value"] == pytest.approx(two_sided, rel=1e-9)
    assert gate["status"] == "fail"


def test_gate_d_without_spread_uses_the_two_sided_sign_test():
    # five seeds, every one +15 pp: no t statistic; the two-sided exact sign test gives 2 · 0.5⁵ = 0.0625 (> 0.05),
    # the one-sided one 0.03125 (< 0.05): the gate fails only if the test is two-sided
    moco = {s: 0.05 for s in range(5)}
    oracle = {s: 0.20 for s in range(5)}
    gate = _gate_d(_frame(moco, oracle))
    assert gate["effect_pp"] == pytest.approx(15.0) and gate["seeds"] == 5
    assert gate["p_value"] == pytest.approx(stats.binomtest(5, 5, 0.5).pvalue, rel=1e-12)
    assert gate["p_value"] == pytest.approx(0.0625, rel=1e-12)
    assert gate["status"] == "fail"
    # six seeds: 2 · 0.5⁶ = 0.03125 < 0.05 passes
    six = _gate_d(_frame({s: 0.05 for s in range(6)}, {s: 0.20 for s in range(6)}))
    assert six["p_value"] == pytest.approx(0.03125, rel=1e-12) and six["status"] == "pass"


@pytest.mark.parametrize("target_p, expected", [(0.049, "pass"), (0.051, "fail"), (0.011, "pass"), (0.09, "fail")])
def test_gate_d_alpha_is_0_05(target_p, expected):
    # the effect stays above 10 pp in every case: only p against α = 0.05 decides
    moco, oracle, diffs = _with_p(target_p, sd_pp=6.0)
    assert diffs.mean() > 10.5
    gate = _gate_d(_frame(moco, oracle))
    assert gate["p_value"] == pytest.approx(target_p, rel=1e-6)
    assert gate["status"] == expected


# ------------------------------------------------------------------------------- the MDE with unequal arms
def _power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample t-test over n paired differences of sd `sd` at true mean `delta`."""
    df, crit, nc = n - 1, stats.t.isf(alpha / 2, n - 1), delta * math.sqrt(n) / sd
    # P(T > crit) + P(T < −crit); the second written as P(T' > crit) at −nc (scipy's cdf is NaN far in that tail)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc))


def _mde_by_bisection(sd: float, n: int, power: float = 0.8) -> float:
    lo, hi = 0.0, 100.0 * sd
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _power(mid, sd, n) < power else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize("moco_seeds, oracle_seeds", [
    ((0, 1, 2, 3, 4), (1, 3, 4)),       # MoCo has more seeds than the other arm
    ((1, 3, 4), (0, 1, 2, 3, 4)),       # the other arm has more
    ((0, 1, 2, 3), (2, 3, 4, 5, 6, 7)),  # overlapping: two common seeds
])
def test_mde_uses_the_seeds_both_arms_share(moco_seeds, oracle_seeds):
    rng = np.random.default_rng(sum(moco_seeds) * 31 + len(oracle_seeds))
    moco = {s: float(0.05 + 0.02 * rng.random()) for s in moco_seeds}
    oracle = {s: float(0.25 + 0.08 * rng.random()) for s in oracle_seeds}
    common = sorted(set(moco) & set(oracle))
    d = np.array([100 * (oracle[s] - moco[s]) for s in common])
    sd, n = float(d.std(ddof=1)), len(common)
    expected = _mde_by_bisection(sd, n)
    assert _power(expected, sd, n) == pytest.approx(0.8, abs=1e-9)
    gate = _gate_d(_frame(moco, oracle))
    assert gate["mde_pp"] == pytest.approx(expected, rel=1e-6)
    # the count matters: with either arm's own seed count the MDE would be another number
    for wrong in {len(moco_seeds), len(oracle_seeds)} - {n}:
        assert gate["mde_pp"] != pytest.approx(_mde_by_bisection(sd, wrong), rel=1e-3)


def test_mde_pools_runs_with_different_seed_counts_by_degrees_of_freedom():
    # MoCo seeds 0-4; the oracle shares all five, moco+be only seeds 0-2. Pooled variance: each run's variance of
    # its paired differences weighted by its degrees of freedom (4 and 2); the seed count: the median of the runs'
    # paired counts (5 and 3 -> 4).
    moco = {0: 0.05, 1: 0.06, 2: 0.04, 3: 0.07, 4: 0.05}
    oracle = {0: 0.25, 1: 0.20, 2: 0.31, 3: 0.22, 4: 0.28}
    be = {0: 0.30, 1: 0.06, 2: 0.04}
    d1 = np.array([100 * (oracle[s] - moco[s]) for s in range(5)])
    d2 = np.array([100 * (be[s] - moco[s]) for s in range(3)])
    pooled_sd = math.sqrt((4 * d1.var(ddof=1) + 2 * d2.var(ddof=1)) / 6)
    unweighted_sd = math.sqrt((d1.var(ddof=1) + d2.var(ddof=1)) / 2)
    assert abs(pooled_sd - unweighted_sd) > 0.5
    gate = _gate_d(_frame(moco, oracle, {"moco+be": be}))
    assert gate["mde_pp"] == pytest.approx(_mde_by_bisection(pooled_sd, 4), rel=1e-6)


def test_gate_d_is_not_available_without_ground_truth_whatever_the_numbers():
    moco, oracle, _ = _with_p(0.01, sd_pp=6.0)
    assert _gate_d(_frame(moco, oracle))["status"] == "pass"
    gate = _gate_d(_frame(moco, oracle), ground_truth=False)
    assert gate["status"] == "not available" and "effect_pp" not in gate and "p_value" not in gate
