"""How many seeds would decide a claim: `seeds_to_detect` against a power computed here from scipy's noncentral t
and against a simulation of paired t-tests, the normal approximation at large n, and the claim's number as the
most any of its comparisons needs, shown in the table page."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from scenebias.analysis import stats as sstats
from scenebias.tables import regenerate as rg
from scenebias.tables.plan import plan_table

DELTA = 3.0  # the default's analysis.smallest_effect_pp


def _power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample t-test over n differences with true mean `effect`, sd `sd`."""
    df, nc = n - 1, effect / (sd / math.sqrt(n))
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


@pytest.mark.parametrize("sd, effect", [(5.3, 3.0), (1.0, 3.0), (2.0, 1.5), (8.0, 11.2), (0.6, 2.0)])
def test_the_seed_count_is_the_first_with_power_0_8(sd, effect):
    n = int(sstats.seeds_to_detect(sd, effect))
    assert n >= 2
    assert _power(effect, sd, n) >= 0.8 - 1e-6
    if n > 2:
        assert _power(effect, sd, n - 1) < 0.8


def test_it_has_power_0_8_by_simulation():
    sd, effect = 4.0, 3.0
    n = int(sstats.seeds_to_detect(sd, effect))
    rng = np.random.default_rng(0)

    def simulated(k: int) -> float:
        x = effect + sd * rng.standard_normal((20000, k))
        return float((stats.ttest_1samp(x, 0.0, axis=1).pvalue < 0.05).mean())

    assert simulated(n) >= 0.79  # 20000 draws: SE 0.003
    assert simulated(n - 1) < 0.8


def test_large_counts_follow_the_normal_approximation():
    sd, effect = 10.0, 1.0
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    approx = (z * sd / effect) ** 2  # 784.9: the t's heavier tail adds about one seed
    assert approx <= sstats.seeds_to_detect(sd, effect) <= approx + 3


def test_edges():
    assert math.isinf(sstats.seeds_to_detect(100.0, 1.0))  # needs ~78,500: beyond the search
    assert math.isnan(sstats.seeds_to_detect(1.0, 0.0))
    assert math.isnan(sstats.seeds_to_detect(math.nan, 3.0))
    assert sstats.seeds_to_detect(0.0, 3.0) == 2
    assert sstats.format_needed(27.0, math.nan) == "27 seeds"
    assert sstats.format_needed(math.inf, math.nan) == f"over {sstats.SEEDS_SEARCHED} seeds"
    assert sstats.format_needed(math.nan, 32.0) == "32 classes"
    assert sstats.format_needed(math.nan, math.nan) == "–"


def test_a_comparison_needs_seeds_for_its_own_delta_and_none_without_spread():
    diffs = np.array([1.0, -2.0, 4.5])
    out = sstats.paired_comparison(diffs, "greater", 0.0, None, DELTA)
    assert out["seeds_needed"] == sstats.seeds_to_detect(float(diffs.std(ddof=1)), DELTA)
    wider = sstats.paired_comparison(diffs, "greater", 0.0, None, 6.0)
    assert wider["seeds_needed"] < out["seeds_needed"]  # a larger δ needs fewer seeds
    assert math.isnan(sstats.paired_comparison(np.array([2.0, 2.0, 2.0]), "greater", 0.0, None, DELTA)["seeds_needed"])
    assert math.isnan(sstats.paired_comparison(diffs, "greater", 0.0, None, None)["seeds_needed"])
    tolerant = sstats.paired_comparison(diffs, "approx_equal", 0.0, 2.0, None)
    assert tolerant["seeds_needed"] == sstats.seeds_to_detect(float(diffs.std(ddof=1)), 2.0)


def _values(gaps: dict[str, list[float]]):
    import pandas as pd

    base = {"ucf101": [50.0, 52.0, 51.0], "hmdb51": [30.0, 31.0, 33.0]}
    rows = [{"row": r, "column": c, "seed": s, "value": v, "swapped": np.nan}
            for c, vals in base.items()
            for r, shift in (("none", np.zeros(3)), ("intra_video", np.array(gaps[c])))
            for s, v in enumerate(np.array(vals) + shift)]
    return pd.DataFrame(rows)


def test_a_claim_needs_the_most_any_comparison_needs(default_cfg, tables):
    gaps = {"ucf101": [0.5, 5.0, 2.0], "hmdb51": [-0.4, 0.5, 0.0]}  # noisy UCF101, quiet HMDB51
    claim = next(c for c in tables["fame_table4"]["claims"] if c["id"] == "intra_beats_none")
    judged = rg.judge_claims(plan_table(default_cfg, {**tables["fame_table4"], "claims": [claim]}),
                             _values(gaps), None, None)[0]
    need = {c: sstats.seeds_to_detect(float(np.std(g, ddof=1)), DELTA) for c, g in gaps.items()}
    assert need["ucf101"] > need["hmdb51"]
    assert judged["seeds_needed"] == need["ucf101"]
    assert f"MDE down to ±3 pp at {need['ucf101']:.0f} seeds" in judged["detail"]
    assert math.isnan(judged["classes_needed"])


def test_a_correlation_needs_classes_for_the_paper_s_r(default_cfg, tables):
    import pandas as pd

    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(8), rng.standard_normal(8)
    points = pd.DataFrame({"row": "correlation", "seed": 0, "class": [f"c{k}" for k in range(8)],
                           "static_top1": 50 + 10 * x, "moco_top1": 40.0, "method_top1": 40.0,
                           "relative_improvement": 20 + 5 * y})
    claims = rg.judge_claims(plan_table(default_cfg, tables["be_figure4"]), pd.DataFrame(columns=rg.VALUE_COLUMNS),
                             points)
    judged = next(c for c in claims if c["claim"] == "negative_static_bias_correlation")
    assert judged["classes_needed"] == sstats.points_to_detect_r(-0.48) == 32  # the paper prints r = -0.48
    assert math.isnan(judged["seeds_needed"])
