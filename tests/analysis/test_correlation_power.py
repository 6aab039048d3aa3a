"""BE Figure 4's correlation: its interval over classes and the smallest |r| its class count can detect, each
against an independent computation (Fisher's z written out, a Monte Carlo power)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenebias.analysis import stats as sstats
from scenebias.tables import regenerate as rg
from scenebias.tables.plan import plan_table


def test_the_paper_s_r_needs_32_classes_and_32_classes_detect_it():
    assert sstats.points_to_detect_r(-0.48) == 32
    assert sstats.minimum_detectable_r(32) <= 0.48 < sstats.minimum_detectable_r(31)
    assert math.isnan(sstats.minimum_detectable_r(3))


def test_minimum_detectable_r_has_power_0_8_by_simulation():
    n, reps = 20, 4000
    rho = sstats.minimum_detectable_r(n)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((reps, n))
    y = rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal((reps, n))
    xc, yc = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    r = (xc * yc).sum(1) / np.sqrt((xc ** 2).sum(1) * (yc ** 2).sum(1))
    t = r * np.sqrt((n - 2) / (1 - r * r))
    power = float((2 * stats.t.sf(np.abs(t), n - 2) < 0.05).mean())
    assert power == pytest.approx(0.8, abs=0.03)  # Fisher's z is an approximation; 4000 draws: SE 0.006


def _points(classes: int, r_target: float) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(classes)
    y = r_target * x + math.sqrt(1 - r_target ** 2) * rng.standard_normal(classes)
    return pd.DataFrame({"row": "correlation", "seed": 0, "class": [f"c{k}" for k in range(classes)],
                         "static_top1": 50 + 10 * x, "moco_top1": 40.0, "method_top1": 40.0,
                         "relative_improvement": 20 + 5 * y})


def test_the_claim_carries_the_fisher_interval_and_its_detectable_r(default_cfg, tables):
    points = _points(12, -0.6)
    r = stats.pearsonr(points["static_top1"], points["relative_improvement"]).statistic
    half = 1.959964 / math.sqrt(12 - 3)
    claims = rg.judge_claims(plan_table(default_cfg, tables["be_figure4"]), pd.DataFrame(columns=rg.VALUE_COLUMNS),
                             points)
    claim = next(c for c in claims if c["claim"] == "negative_static_bias_correlation")
    assert claim["effect"] == pytest.approx(r)
    assert (claim["ci_low"], claim["ci_high"]) == pytest.approx((math.tanh(math.atanh(r) - half),
                                                                 math.tanh(math.atanh(r) + half)), abs=1e-6)
    assert claim["mde"] == pytest.approx(math.tanh((1.959964 + 0.841621) / 3), abs=1e-5)
    assert "smallest |r| detectable" in claim["detail"] and "needs 32 classes" in claim["detail"]


def test_an_undefined_correlation_has_no_interval(default_cfg, tables):
    points = _points(5, -0.6).assign(static_top1=50.0)  # no spread
    claims = rg.judge_claims(plan_table(default_cfg, tables["be_figure4"]), pd.DataFrame(columns=rg.VALUE_COLUMNS),
                             points)
    claim = next(c for c in claims if c["claim"] == "negative_static_bias_correlation")
    assert math.isnan(claim["ci_low"]) and claim["verdict"] == "inconclusive"
