"""The claims' significance level is 0.05, written here as a number: a comparison whose p lies just below 0.05 is
significant and one just above is not, for the paired test (both directions, either sign), the TOST of approx_equal,
a claim judged end to end (FAME Table 6, one comparison: no Holm factor), and BE Figure 4's correlation claim."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenebias.analysis import stats as sstats
from scenebias.tables import regenerate as rg
from scenebias.tables.plan import plan_table

ALPHA = 0.05
JUST_BELOW, JUST_ABOVE = 0.045, 0.055




def _diffs_with_p(p: float, sign: float = 1.0, sd: float = 1.0) -> np.ndarray:
    """Three paired differences (pp) whose two-sided one-sample t-test against 0 has p-value `p`."""
    m = stats.t.isf(p / 2, 2) * sd / math.sqrt(3)
    return sign * m + sd * np.array([-1.0, 0.0, 1.0])


@pytest.mark.parametrize("p", [JUST_BELOW, JUST_ABOVE, 0.01, 0.09])
@pytest.mark.parametrize("direction, sign", [("greater", 1.0), ("greater", -1.0), ("less", -1.0), ("less", 1.0)])
def test_a_comparison_is_significant_only_below_0_05(p, direction, sign):
    d = _diffs_with_p(p, sign)
    assert stats.ttest_1samp(d, 0.0).pvalue == pytest.approx(p, rel=1e-9)
    out = sstats.paired_comparison(d, direction, 0.0, None)
    assert out["p_value"] == pytest.approx(p, rel=1e-9)
    agrees = (sign > 0) == (direction == "greater")
    expected = ("reproduced" if agrees else "contradicted") if p < 0.05 else "inconclusive"
    assert out["verdict"] == expected


@pytest.mark.parametrize("p", [JUST_BELOW, JUST_ABOVE])
def test_tost_equivalence_is_significant_only_below_0_05(p):
    # differences centred on 0 with sd 1: both one-sided p's equal t.sf(tol / (1/√3), 2); choose tol so they are p
    tolerance = stats.t.isf(p, 2) / math.sqrt(3)
    d = np.array([-1.0, 0.0, 1.0])
    assert stats.ttest_1samp(d, tolerance, alternative="less").pvalue == pytest.approx(p, rel=1e-9)
    out = sstats.paired_comparison(d, "approx_equal", 0.0, tolerance)
    assert out["p_value"] == pytest.approx(p, rel=1e-9)
    assert out["verdict"] == ("reproduced" if p < 0.05 else "inconclusive")


@pytest.mark.parametrize("p", [JUST_BELOW, JUST_ABOVE])
def test_tost_non_equivalence_is_significant_only_below_0_05(p):
    # mean beyond +tol: "contradicted" when the one-sided test of mean > tol has p < 0.05
    tolerance = 1.0
    d = tolerance + stats.t.isf(p, 2) / math.sqrt(3) + np.array([-1.0, 0.0, 1.0])
    assert stats.ttest_1samp(d, tolerance, alternative="greater").pvalue == pytest.approx(p, rel=1e-9)
    out = sstats.paired_comparison(d, "approx_equal", 0.0, tolerance)
    assert out["p_outside"] == pytest.approx(p, rel=1e-9)
    assert out["verdict"] == ("contradicted" if p < 0.05 else "inconclusive")


@pytest.mark.parametrize("p, sign", [(JUST_BELOW, 1.0), (JUST_ABOVE, 1.0), (JUST_BELOW, -1.0), (JUST_ABOVE, -1.0)])
def test_a_one_comparison_claim_uses_alpha_0_05(default_cfg, tables, p, sign):
    """FAME Table 6 "Grid outperforms FAME slightly on UCF101": one comparison, so Holm leaves its p as it is."""
    table = tables["fame_table6"]
    claim = next(c for c in table["claims"] if c["id"] == "grid_beats_fame_ucf101")
    fame = np.array([60.0, 61.5, 59.0])
    grid = fame + _diffs_with_p(p, sign, sd=0.8)
    values = pd.DataFrame([{"row": row, "column": "ucf101", "seed": s, "value": float(v)}
                           for row, vals in (("grid", grid), ("fame", fame)) for s, v in enumerate(vals)])
    judged = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [claim]}), values)[0]
    assert judged["comparisons_tested"] == 1
    assert judged["p_value"] == pytest.approx(stats.ttest_rel(grid, fame).pvalue, rel=1e-9)
    assert judged["p_value"] == pytest.approx(p, rel=1e-9)
    expected = ("reproduced" if sign > 0 else "contradicted") if p < 0.05 else "inconclusive"
    assert judged["verdict"] == expected


def _points_with_r_p(p: float, sign: float, classes: int = 10) -> pd.DataFrame:
    """One seed's per-class points whose Pearson r has the given sign and two-sided p."""
    df = classes - 2
    t = stats.t.isf(p / 2, df)
    r = sign * t / math.sqrt(t * t + df)
    x = np.linspace(-1.0, 1.0, classes)
    w = np.array([(-1.0) ** k for k in range(classes)])
    w = w - w.mean()
    w = w - (w @ x) / (x @ x) * x  # orthogonal to x (x has mean 0)
    zx, zw = x / np.linalg.norm(x), w / np.linalg.norm(w)
    y = r * zx + math.sqrt(1 - r * r) * zw
    return pd.DataFrame({"row": "correlation", "seed": 0, "class": [f"c{k}" for k in range(classes)],
                         "static_top1": 50 + 30 * x, "moco_top1": 40.0, "method_top1": 40.0 * (1 + y / 100),
                         "relative_improvement": 20 + 10 * y})


@pytest.mark.parametrize("p, sign, expected", [(JUST_BELOW, -1.0, "reproduced"), (JUST_ABOVE, -1.0, "inconclusive"),
                                               (JUST_BELOW, 1.0, "contradicted"), (JUST_ABOVE, 1.0, "inconclusive")])
def test_the_correlation_claim_uses_alpha_0_05(default_cfg, tables, p, sign, expected):
    table = tables["be_figure4"]
    points = _points_with_r_p(p, sign)
    check = stats.pearsonr(points["static_top1"], points["relative_improvement"])
    assert check.pvalue == pytest.approx(p, rel=1e-6) and math.copysign(1, check.statistic) == sign
    claims = rg.judge_claims(plan_table(default_cfg, table), pd.DataFrame(columns=rg.VALUE_COLUMNS), points)
    claim = next(c for c in claims if c["claim"] == "negative_static_bias_correlation")
    assert claim["p_value"] == pytest.approx(p, rel=1e-6)
    assert claim["verdict"] == expected


def test_the_level_is_0_05():
    assert sstats.ALPHA == ALPHA and rg.ALPHA == ALPHA
