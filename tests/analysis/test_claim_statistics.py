"""The statistics behind the claim verdicts (scenebias/tables/regenerate.py) against scipy and against the
formulas written out: the paired t-test on per-seed differences (with and without the paper's stated margin),
the two one-sided tests (TOST) of `approx_equal`, d_z = mean / sd, and BE Figure 4 end to end (per-class
relative improvement over MoCo, classes with MoCo at 0 dropped, seeds averaged before Pearson's r)."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenebias.analysis import stats as sstats
from scenebias.tables import regenerate as rg
from scenebias.tables.kinds.static_bias_correlation import class_points
from scenebias.tables.plan import all_cells, plan_table




def _t_p(x: np.ndarray, mu: float, alternative: str = "two-sided") -> float:
    """Student's one-sample t-test written out: t = (mean − μ) / (sd / √n), n − 1 degrees of freedom."""
    n = len(x)
    t = (x.mean() - mu) / (x.std(ddof=1) / math.sqrt(n))
    if alternative == "greater":
        return float(stats.t.sf(t, n - 1))
    if alternative == "less":
        return float(stats.t.cdf(t, n - 1))
    return float(2 * stats.t.sf(abs(t), n - 1))


# -------------------------------------------------------------------------------------- paired t-test
@pytest.mark.parametrize("diffs", [[2.0, 2.5, 1.8], [0.4, -1.3, 2.2, 0.9], [5.1, 4.7, 6.3, 5.0, 5.8],
                                   [-0.7, -2.9, -1.1]])
def test_p_value_is_scipys_one_sample_t_test_on_the_differences(diffs):
    d = np.array(diffs)
    out = sstats.paired_comparison(d, "greater", 0.0, None)
    assert out["p_value"] == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue, rel=1e-12)
    assert out["p_value"] == pytest.approx(_t_p(d, 0.0), rel=1e-9)
    assert out["effect"] == pytest.approx(d.mean(), rel=1e-12)
    assert out["d_z"] == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)  # sample sd (n − 1), not n
    assert out["n"] == len(d)


@pytest.mark.parametrize("direction, diffs, margin", [
    ("greater", [2.5, 2.6, 2.4], 2.0),          # 0.5 pp above the margin, tight: reproduced
    ("greater", [2.1, 1.9, 2.3], 2.0),          # at the margin: p large, inconclusive (vs 0 it would be certain)
    ("greater", [1.1, 0.9, 1.0, 1.2], 2.0),     # clearly below the margin: contradicted
    ("greater", [3.0, 1.0, 2.7, 1.6], 0.5),
    ("less", [-1.5, -1.2, -1.9, -1.4], 1.0),     # "A lower than B by at least 1 pp"
    ("less", [-0.8, -1.3, -0.9], 1.0),
])
def test_margin_shifts_the_test_to_the_stated_bound(direction, diffs, margin):
    """p = scipy's t-test of the differences against +margin (greater) or −margin (less); the verdict agrees in
    sign with mean − margin (greater) or mean + margin (less)."""
    d = np.array(diffs)
    bound = margin if direction == "greater" else -margin
    out = sstats.paired_comparison(d, direction, margin, None)
    expected_p = stats.ttest_1samp(d, bound).pvalue
    assert out["p_value"] == pytest.approx(expected_p, rel=1e-12)
    assert out["p_value"] == pytest.approx(_t_p(d, bound), rel=1e-9)
    assert out["effect"] == pytest.approx(d.mean()) and out["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    if expected_p >= rg.ALPHA:
        verdict = "inconclusive"
    elif (d.mean() > margin) if direction == "greater" else (d.mean() < -margin):
        verdict = "reproduced"
    else:
        verdict = "contradicted"
    assert out["verdict"] == verdict
    # the margin matters: the same differences against 0 give another p
    assert out["p_value"] != pytest.approx(sstats.paired_comparison(d, direction, 0.0, None)["p_value"], rel=1e-3)


def test_margin_verdicts_spelled_out():
    assert sstats.paired_comparison(np.array([2.5, 2.6, 2.4]), "greater", 2.0, None)["verdict"] == "reproduced"
    at_margin = sstats.paired_comparison(np.array([2.1, 1.9, 2.3]), "greater", 2.0, None)
    assert at_margin["verdict"] == "inconclusive"
    # t = 0.1 / (0.2 / √3) = 0.866, 2 df: two-sided p = 0.4778
    assert at_margin["p_value"] == pytest.approx(0.4778, abs=1e-4)
    assert sstats.paired_comparison(np.array([2.1, 1.9, 2.3]), "greater", 0.0, None)["verdict"] == "reproduced"
    assert sstats.paired_comparison(np.array([1.1, 0.9, 1.0, 1.2]), "greater", 2.0, None)["verdict"] == "contradicted"


@pytest.mark.parametrize("diffs, tolerance", [
    ([0.3, -0.2, 0.5, 0.1, -0.4], 1.5),
    ([0.9, 1.1, 0.7, 1.2], 1.5),      # near the upper bound: the "less than +tol" side decides
    ([-1.0, -0.6, -1.3, -0.9], 1.5),  # near the lower bound: the "greater than −tol" side decides
    ([1.0, 2.0, 0.5], 1.5),
    ([3.0, 3.2, 2.9, 3.1], 1.0),
])
def test_tost_p_is_the_larger_one_sided_p(diffs, tolerance):
    d = np.array(diffs)
    p_low = stats.ttest_1samp(d, -tolerance, alternative="greater").pvalue  # H1: mean > −tol
    p_high = stats.ttest_1samp(d, tolerance, alternative="less").pvalue     # H1: mean < +tol
    assert p_low == pytest.approx(_t_p(d, -tolerance, "greater")) and p_high == pytest.approx(_t_p(d, tolerance, "less"))
    out = sstats.paired_comparison(d, "approx_equal", 0.0, tolerance)
    assert out["p_value"] == pytest.approx(max(p_low, p_high), rel=1e-12)
    assert out["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    outside = min(stats.ttest_1samp(d, tolerance, alternative="greater").pvalue,
                  stats.ttest_1samp(d, -tolerance, alternative="less").pvalue)
    expected = ("reproduced" if max(p_low, p_high) < rg.ALPHA
                else "contradicted" if outside < rg.ALPHA else "inconclusive")
    assert out["verdict"] == expected


def test_tost_sides_are_not_interchangeable():
    # mean 1.0 within ±1.5 but close to +1.5: p_high (the binding side) is far larger than p_low
    d = np.array([0.9, 1.1, 0.7, 1.2])
    p_low = stats.ttest_1samp(d, -1.5, alternative="greater").pvalue
    p_high = stats.ttest_1samp(d, 1.5, alternative="less").pvalue
    assert p_high > 10 * p_low
    out = sstats.paired_comparison(d, "approx_equal", 0.0, 1.5)
    assert out["p_value"] == pytest.approx(p_high) and out["verdict"] == "reproduced"
    assert sstats.paired_comparison(np.array([3.0, 3.2, 2.9, 3.1]), "approx_equal", 0.0, 1.0)["verdict"] == "contradicted"
    assert sstats.paired_comparison(np.array([1.0, 2.0, 0.5]), "approx_equal", 0.0, 1.5)["verdict"] == "inconclusive"


# ----------------------------------------------------------------------------------------- via judge_claims
def _values(pairs: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [{"row": r, "column": c, "seed": s, "value": v} for (r, c), vals in pairs.items()
            for s, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["row", "column", "seed", "value"])


def test_claim_with_a_stated_margin_is_tested_against_it(default_cfg, tables):
    """FAME Table 6: "Grid is over 2% lower than FAME on both UCF101 and HMDB51" (margin 2.0)."""
    table = tables["fame_table6"]
    claim = next(c for c in table["claims"] if c["id"] == "fame_beats_grid_k400")
    assert claim["margin"] == 2.0
    fame = {"ucf101": [60.0, 61.0, 62.0], "hmdb51": [40.0, 41.0, 42.0]}
    grid_gap = {"ucf101": [2.5, 2.6, 2.4], "hmdb51": [2.1, 1.9, 2.3]}  # fame − grid per seed
    values = _values({**{("fame_k400", c): v for c, v in fame.items()},
                      **{("grid_k400", c): [f - g for f, g in zip(fame[c], grid_gap[c])] for c in fame}})
    judged = {v["claim"]: v for v in rg.judge_claims(plan_table(default_cfg, table), values)}["fame_beats_grid_k400"]
    p = {c: stats.ttest_1samp(np.array(grid_gap[c]), 2.0).pvalue for c in grid_gap}
    assert p["ucf101"] < 0.05 <= p["hmdb51"]
    # UCF101 reproduced, HMDB51 inconclusive at the margin: inconclusive, shown with the weakest comparison
    assert judged["verdict"] == "inconclusive"
    assert judged["p_value"] == pytest.approx(p["hmdb51"], rel=1e-9)
    assert judged["effect"] == pytest.approx(2.1) and judged["n_seeds"] == 3
    assert judged["detail"].startswith("tested against the stated margin of 2 pp")
    # the same numbers without the margin would be reproduced on both columns
    no_margin = {**claim}
    del no_margin["margin"]
    again = {v["claim"]: v for v in rg.judge_claims(plan_table(default_cfg, {**table, "claims": [no_margin]}), values)}
    assert again["fame_beats_grid_k400"]["verdict"] == "reproduced"
    assert again["fame_beats_grid_k400"]["p_value"] == pytest.approx(
        max(stats.ttest_1samp(np.array(g), 0.0).pvalue for g in grid_gap.values()), rel=1e-9)


def test_approx_equal_claim_reports_the_largest_tost_p(default_cfg, tables):
    """FAME Table 5: single ≈ both within 1.5 pp, six comparisons (3 β × 2 sets); each comparison's p is the
    larger one-sided p, and the claim shows the largest of the six (the weakest equivalence)."""
    table = tables["fame_table5"]
    claim = next(c for c in table["claims"] if c["id"] == "single_approx_both")
    rng = np.random.default_rng(5)
    pairs, diffs = {}, {}
    for i, row in enumerate(["beta_07", "beta_05", "beta_03"]):
        for ds in ("ucf101", "hmdb51"):
            single = 50 + rng.normal(0, 1, 3)
            d = np.array([0.1, -0.2, 0.3]) + 0.15 * i + (0.2 if ds == "hmdb51" else 0.0) + rng.normal(0, 0.1, 3)
            pairs[(row, f"{ds}_single")], pairs[(row, f"{ds}_both")] = list(single), list(single - d)
            diffs[(row, ds)] = d
    judged = {v["claim"]: v for v in rg.judge_claims(plan_table(default_cfg, table),
                                                     _values(pairs))}["single_approx_both"]
    tol = claim["tolerance"]
    ps = {k: max(stats.ttest_1samp(d, -tol, alternative="greater").pvalue,
                 stats.ttest_1samp(d, tol, alternative="less").pvalue) for k, d in diffs.items()}
    assert max(ps.values()) < 0.05
    assert judged["verdict"] == "reproduced"
    # the claim's p is Holm-corrected over the six comparisons; the raw one is kept beside it
    assert judged["p_value_uncorrected"] == pytest.approx(max(ps.values()), rel=1e-9)
    assert judged["p_value"] == pytest.approx(max(
        min(1.0, (len(ps) - k) * p) for k, p in enumerate(sorted(ps.values()))), rel=1e-9)
    worst = max(ps, key=ps.get)
    assert judged["effect"] == pytest.approx(diffs[worst].mean(), rel=1e-9)


def test_contradicted_claim_shows_the_strongest_contradiction(default_cfg, tables):
    table = tables["fame_table6"]
    claim = {**next(c for c in table["claims"] if c["id"] == "fame_beats_grid_k400")}
    del claim["margin"]
    gaps = {"ucf101": np.array([-3.0, -2.0, -2.6]), "hmdb51": np.array([-1.0, -1.4, -0.9])}
    fame = {c: [50.0, 52.0, 51.0] for c in gaps}
    values = _values({**{("fame_k400", c): v for c, v in fame.items()},
                      **{("grid_k400", c): list(np.array(fame[c]) - gaps[c]) for c in gaps}})
    judged = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [claim]}), values)[0]
    p = {c: stats.ttest_1samp(g, 0.0).pvalue for c, g in gaps.items()}
    assert max(p.values()) < 0.05 and judged["verdict"] == "contradicted"
    strongest = min(p, key=p.get)
    # Holm over the claim's two comparisons: the smallest p is doubled; the raw one is kept beside it
    assert judged["p_value_uncorrected"] == pytest.approx(p[strongest], rel=1e-9)
    assert judged["p_value"] == pytest.approx(2 * p[strongest], rel=1e-9)
    assert judged["effect"] == pytest.approx(gaps[strongest].mean())


# ------------------------------------------------------------------------------------ BE Figure 4, end to end
CLASSES = 9
# per seed and class, top-1 (fractions): MoCo, MoCo+BE, the static classifier. Class 4: MoCo scores 0 on every
# seed, so it has no relative improvement and is dropped. Seed noise makes the per-point r differ from the
# seed-averaged one.
_RNG = np.random.default_rng(11)
STATIC = np.clip(np.linspace(0.15, 0.85, CLASSES)[None] + _RNG.normal(0, 0.12, (3, CLASSES)), 0.01, 0.99)
MOCO = np.clip(0.4 + _RNG.normal(0, 0.05, (3, CLASSES)), 0.05, 0.95)
MOCO[:, 4] = 0.0
GAIN = 0.6 - 0.5 * STATIC.mean(axis=0)[None] + _RNG.normal(0, 0.12, (3, CLASSES))  # relative gain, falling with static
METHOD = MOCO * (1 + GAIN)
METHOD[:, 4] = 0.2  # BE gets 20 % of class 4 where MoCo gets none: an infinite relative gain, left out


def _figure4_records(cfg, table, results, method=METHOD, moco=MOCO, static=STATIC):
    path_of = rg.eval_path_in(results)
    per_role = {"reference": moco, "static": static}
    for cell in all_cells(cfg, table):
        if not cell.reproduced:
            continue
        acc = per_role.get(cell.column, method)
        for s, seed in enumerate(cfg["seeds"]):
            path = path_of(cell.run, seed, cell.downstream, cell.protocol)
            path.parent.mkdir(parents=True, exist_ok=True)
            record = {"run": cell.run, "seed": seed, "protocol": cell.protocol, "downstream": cell.downstream,
                      "test_sets": {"test": cell.downstream},
                      "results": {"test": {"top1": float(acc[s].mean()), "per_class_acc": acc[s].tolist()}}}
            path.write_text(json.dumps(record))
    return path_of


def _cfg_without_data(cfg, tmp_path):
    cfg = copy.deepcopy(cfg)
    cfg["paths"]["data"] = str(tmp_path / "no-data")  # no class names: classes are numbered
    return cfg


def _expected_relative(method=METHOD, moco=MOCO):
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(moco > 0, 100 * (method - moco) / moco, np.nan)
    return rel


def test_figure4_points_are_relative_improvements_over_moco(default_cfg, tables, tmp_path):
    cfg, table = _cfg_without_data(default_cfg, tmp_path), tables["be_figure4"]
    path_of = _figure4_records(cfg, table, tmp_path / "results")
    points = class_points(plan_table(cfg, table), path_of)
    assert len(points) == 3 * CLASSES and set(points["row"]) == {"correlation"}
    rel = _expected_relative()
    for s, seed in enumerate(cfg["seeds"]):
        mine = points[points["seed"] == seed].set_index("class")
        for k in range(CLASSES):
            got = mine.loc[str(k)]
            assert got["static_top1"] == pytest.approx(100 * STATIC[s, k])
            assert got["moco_top1"] == pytest.approx(100 * MOCO[s, k])
            assert got["method_top1"] == pytest.approx(100 * METHOD[s, k])
            if k == 4:
                assert math.isnan(got["relative_improvement"])  # MoCo at 0: no relative improvement
            else:
                # 100·(m − moco)/moco, e.g. moco 40 %, BE 50 %: +25 %, not +10 pp
                assert got["relative_improvement"] == pytest.approx(rel[s, k], rel=1e-9)
                assert got["relative_improvement"] == pytest.approx(100 * GAIN[s, k], rel=1e-6)


def test_figure4_correlation_is_pearson_over_seed_averaged_classes(default_cfg, tables, tmp_path):
    cfg, table = _cfg_without_data(default_cfg, tmp_path), tables["be_figure4"]
    path_of = _figure4_records(cfg, table, tmp_path / "results")
    points = class_points(plan_table(cfg, table), path_of)
    rel = _expected_relative()
    keep = [k for k in range(CLASSES) if k != 4]
    x, y = 100 * STATIC.mean(axis=0)[keep], rel.mean(axis=0)[keep]
    expected = stats.pearsonr(x, y)
    r, p, k = rg.correlation(points)
    assert k == CLASSES - 1
    assert r == pytest.approx(expected.statistic, rel=1e-9) and p == pytest.approx(expected.pvalue, rel=1e-9)
    # the data are such that correlating every (class, seed) point would give another r
    pooled = stats.pearsonr((100 * STATIC[:, keep]).ravel(), rel[:, keep].ravel()).statistic
    assert abs(pooled - expected.statistic) > 0.05
    assert expected.statistic < 0 and expected.pvalue < 0.05
    # per-seed values of the figure's cells: r and p over that seed's classes
    values = rg.collect(plan_table(cfg, table), path_of).values
    for s, seed in enumerate(cfg["seeds"]):
        per_seed = stats.pearsonr(100 * STATIC[s, keep], rel[s, keep])
        got = values[values["seed"] == seed].set_index("column")["value"]
        assert got["pearson_r"] == pytest.approx(per_seed.statistic, rel=1e-9)
        assert got["p_value"] == pytest.approx(per_seed.pvalue, rel=1e-9)
    # the claim: r < 0 with p < 0.05 -> reproduced, with the seed-averaged r and p
    claims = {c["claim"]: c for c in rg.judge_claims(plan_table(cfg, table), values, points)}
    claim = claims["negative_static_bias_correlation"]
    assert claim["verdict"] == "reproduced"
    assert claim["effect"] == pytest.approx(expected.statistic) and claim["p_value"] == pytest.approx(expected.pvalue)
    assert claim["n_seeds"] == 3 and f"over {CLASSES - 1} classes" in claim["detail"]


def test_figure4_record_carries_the_correlation(default_cfg, tables, tmp_path):
    from scenebias.tables.render import build_table

    cfg = _cfg_without_data(default_cfg, tmp_path)
    _figure4_records(cfg, tables["be_figure4"], tmp_path / "results")
    record = build_table(cfg, "be_figure4", tmp_path / "results", tmp_path / "out")
    keep = [k for k in range(CLASSES) if k != 4]
    expected = stats.pearsonr(100 * STATIC.mean(axis=0)[keep], _expected_relative().mean(axis=0)[keep])
    corr = record["correlation"]
    assert corr["classes"] == CLASSES - 1 and corr["classes_without_moco_accuracy"] == 1
    assert corr["pearson_r"] == pytest.approx(expected.statistic) and corr["p_value"] == pytest.approx(expected.pvalue)


@pytest.mark.parametrize("slope, verdict", [(-0.5, "reproduced"), (0.5, "contradicted"), (0.0, "inconclusive")])
def test_figure4_verdict_rules(default_cfg, tables, tmp_path, slope, verdict):
    """r < 0 and p < 0.05: reproduced; r > 0 and p < 0.05: contradicted; otherwise inconclusive."""
    cfg, table = _cfg_without_data(default_cfg, tmp_path), tables["be_figure4"]
    rng = np.random.default_rng(2)
    static = np.tile(np.linspace(0.1, 0.9, 12), (3, 1))
    moco = np.full((3, 12), 0.4)
    noise = rng.normal(0, 0.02, 12) if slope else np.array([0.1, -0.1] * 6)  # slope 0: r = 0 exactly-ish
    gain = 0.3 + slope * static + noise[None]
    path_of = _figure4_records(cfg, table, tmp_path / "results", method=moco * (1 + gain), moco=moco, static=static)
    values, points, _ = rg.collect(plan_table(cfg, table), path_of)
    claims = {c["claim"]: c for c in rg.judge_claims(plan_table(cfg, table), values, points)}
    claim = claims["negative_static_bias_correlation"]
    expected = stats.pearsonr(100 * static[0], 100 * gain[0])
    assert claim["effect"] == pytest.approx(expected.statistic, abs=1e-9)
    assert claim["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert claim["verdict"] == verdict
    if verdict == "inconclusive":
        assert expected.pvalue >= 0.05
    else:
        assert expected.pvalue < 0.05


def test_figure4_without_points_or_spread_is_not_a_number(default_cfg, tables, tmp_path):
    table = tables["be_figure4"]
    claim = rg.judge_claims(plan_table(default_cfg, table), pd.DataFrame(columns=rg.VALUE_COLUMNS), None)
    verdicts = {c["claim"]: c for c in claim}
    assert verdicts["negative_static_bias_correlation"]["verdict"] == "not testable"
    assert verdicts["be_helps_less_static_classes"]["verdict"] == "not testable"  # qualitative
    # MoCo at 0 everywhere: no class has a relative improvement -> r undefined, inconclusive (not made up)
    cfg = _cfg_without_data(default_cfg, tmp_path)
    path_of = _figure4_records(cfg, table, tmp_path / "results", moco=np.zeros((3, CLASSES)))
    plan = plan_table(cfg, table)
    values, points, _ = rg.collect(plan, path_of)
    r, p, k = rg.correlation(points)
    assert math.isnan(r) and math.isnan(p) and k == 0
    judged = {c["claim"]: c for c in rg.judge_claims(plan, values, points)}
    assert judged["negative_static_bias_correlation"]["verdict"] == "inconclusive"
    assert "r undefined: 0 class(es) with a MoCo accuracy above 0" in judged["negative_static_bias_correlation"]["detail"]
    # every model right on the same clips (as on the default's HMDB51-like set): no spread in the improvement
    same = _figure4_records(cfg, table, tmp_path / "same", method=np.full((3, CLASSES), 0.9),
                            moco=np.full((3, CLASSES), 0.9), static=np.tile(np.linspace(0.1, 0.9, CLASSES), (3, 1)))
    values, points, _ = rg.collect(plan, same)
    detail = {c["claim"]: c for c in rg.judge_claims(plan, values, points)}["negative_static_bias_correlation"]
    assert detail["verdict"] == "inconclusive"
    assert "r undefined: the relative improvement over MoCo is the same for every class" in detail["detail"]


# ------------------------------------------------------------------ Holm within a claim, the sign-test fallback


def _holm_by_definition(p: list[float]) -> list[float]:
    """Holm's adjusted p written out for the i-th smallest: max over j <= i of min(1, (m − j + 1) · p_(j))."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    for rank, i in enumerate(order, start=1):
        out[i] = max(min(1.0, (m - j + 1) * p[order[j - 1]]) for j in range(1, rank + 1))
    return out


def test_holm_matches_a_hand_computed_example():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    adjusted = sstats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert sstats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # the docstring's example
    assert sstats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # 1.2 capped at 1, 0.7 raised to it
    assert sstats.holm([0.02]) == pytest.approx([0.02])  # one comparison: no correction
    # an untested comparison (one seed, p NaN) is not in the family: m = 2 here
    got = sstats.holm([math.nan, 0.02, 0.04])
    assert math.isnan(got[0]) and got[1:] == pytest.approx([0.04, 0.04])
    assert sstats.holm([]).shape == (0,)


def test_holm_against_its_definition_and_the_step_down_procedure():
    rng = np.random.default_rng(3)
    for m in (2, 3, 6, 10):
        for _ in range(50):
            p = list(rng.uniform(0, 0.2, m) ** 2)
            adjusted = sstats.holm(p)
            assert adjusted == pytest.approx(_holm_by_definition(p), rel=1e-12)
            assert np.all(adjusted >= np.array(p)) and np.all(adjusted <= np.minimum(1.0, m * np.array(p)) + 1e-15)
            # rejections at α: the step-down test (p_(k) < α / (m − k + 1) for k = 1 … i, stop at the first miss)
            reject, order = set(), np.argsort(p)
            for k, i in enumerate(order):
                if p[i] >= 0.05 / (m - k):
                    break
                reject.add(int(i))
            assert {i for i in range(m) if adjusted[i] < 0.05} == reject


def _beta_values(diffs: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """FAME Table 3 values: baseline 50, 51, 52 (UCF101) and 30, 31, 32 (HMDB51), each β row = baseline + diff."""
    base = {"ucf101": np.array([50.0, 51.0, 52.0]), "hmdb51": np.array([30.0, 31.0, 32.0])}
    pairs = {("baseline", c): list(v) for c, v in base.items()}
    pairs |= {(row, c): list(base[c] + d) for (row, c), d in diffs.items()}
    return _values(pairs)


def test_a_single_p_of_003_among_six_comparisons_is_inconclusive_after_holm(default_cfg, tables):
    """FAME Table 3, "every β < 1 beats the baseline": 3 β × 2 sets = 6 comparisons. One of them goes the other
    way with an uncorrected p of exactly 0.03 (contradicted on its own), the other five are noise: without a
    correction the claim would be contradicted; with Holm its p is 6 × 0.03 = 0.18 and the claim inconclusive."""
    table = tables["fame_table3"]
    claim = next(c for c in table["claims"] if c["id"] == "beta_below_one_beats_baseline")
    assert len(rg.comparisons(claim)) == 6
    t = stats.t.isf(0.015, 2)  # two-sided p 0.03 at 2 df
    against = -t / math.sqrt(3) + np.array([-1.0, 0.0, 1.0])  # sd 1, mean −t/√3
    assert stats.ttest_1samp(against, 0.0).pvalue == pytest.approx(0.03, rel=1e-9)
    noise = [np.array([1.0, -0.5, 0.3]), np.array([-0.4, 0.9, 0.2]), np.array([0.6, -0.8, 0.1]),
             np.array([0.2, 0.5, -0.9]), np.array([-0.3, 1.1, -0.2])]
    keys = [(row, c) for row in ("beta_07", "beta_05", "beta_03") for c in ("ucf101", "hmdb51")]
    diffs = dict(zip(keys, [against, *noise]))
    raw = {k: stats.ttest_1samp(d, 0.0).pvalue for k, d in diffs.items()}
    assert min(raw.values()) == pytest.approx(0.03) and sorted(raw.values())[1] > 0.3
    assert sstats.paired_comparison(against, "greater", 0.0, None)["verdict"] == "contradicted"  # alone: significant
    judged = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [claim]}), _beta_values(diffs))[0]
    assert judged["verdict"] == "inconclusive"
    assert judged["comparisons_tested"] == 6
    assert "Holm-corrected over 6 comparisons" in judged["detail"]
    assert "p 0.18, uncorrected 0.03, inconclusive" in judged["detail"]
    # the same comparison alone in its claim (m = 1): contradicted, p uncorrected = corrected = 0.03
    alone = {**claim, "pairs": [["beta_07", "baseline"]], "columns": ["ucf101"]}
    one = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [alone]}), _beta_values(diffs))[0]
    assert one["verdict"] == "contradicted"
    assert one["p_value"] == pytest.approx(0.03) and one["p_value_uncorrected"] == pytest.approx(0.03)


def test_the_uncorrected_p_is_kept_beside_the_corrected_one(default_cfg, tables):
    table = tables["fame_table3"]
    claim = next(c for c in table["claims"] if c["id"] == "beta_below_one_beats_baseline")
    rng = np.random.default_rng(8)
    keys = [(row, c) for row in ("beta_07", "beta_05", "beta_03") for c in ("ucf101", "hmdb51")]
    # the same t on every comparison (sd 5 % of the mean): six equal p's, each multiplied by 6 after Holm
    diffs = {k: (2.0 + i * 0.3) * np.array([0.95, 1.0, 1.05]) for i, k in enumerate(keys)}
    values = _beta_values(diffs)
    swapped_diffs = {k: d + rng.normal(0, 2.0, 3) for k, d in diffs.items()}
    swapped = _beta_values(swapped_diffs).set_index(["row", "column", "seed"])["value"]
    values["swapped"] = [swapped[(r, c, s)] for r, c, s in zip(values["row"], values["column"], values["seed"])]
    judged = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [claim]}), values)[0]
    for prefix, ds in (("", diffs), ("swapped_", swapped_diffs)):
        raw = [stats.ttest_1samp(ds[k], 0.0).pvalue for k in keys]
        adjusted = _holm_by_definition(raw)
        verdict = judged[f"{prefix}verdict"]
        # the deciding comparison: the weakest (largest corrected p) unless one contradicts
        i = (int(np.argmin(adjusted)) if verdict == "contradicted"
             else max(range(6), key=lambda j: (adjusted[j], raw[j])))
        assert judged[f"{prefix}p_value"] == pytest.approx(adjusted[i], rel=1e-9)
        assert judged[f"{prefix}p_value_uncorrected"] == pytest.approx(raw[i], rel=1e-9)
        assert judged[f"{prefix}p_value"] >= judged[f"{prefix}p_value_uncorrected"]
        assert judged[f"{prefix}comparisons_tested"] == 6
        expected = ("reproduced" if max(adjusted) < 0.05 else "contradicted"
                    if any(a < 0.05 and ds[k].mean() < 0 for a, k in zip(adjusted, keys)) else "inconclusive")
        assert verdict == expected
    assert judged["verdict"] == "reproduced" and judged["p_value"] > judged["p_value_uncorrected"]
    # not testable: both are NaN, the fields exist
    none = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [claim]}), _values({}))[0]
    assert none["verdict"] == "not testable"
    assert math.isnan(none["p_value"]) and math.isnan(none["p_value_uncorrected"])
    # and the report's claims table shows both
    from scenebias.report.table_pages import claims_frame, claims_table

    record = {"table": "fame_table3", "label": "Table 3", "claims": [judged]}
    html_text = claims_table([record])
    assert "uncorrected p" in html_text and "Holm" in html_text
    assert f"{judged['p_value_uncorrected']:.3g}" in html_text and f"{judged['p_value']:.3g}" in html_text
    assert claims_frame([record])["p_value_uncorrected"].iloc[0] == judged["p_value_uncorrected"]


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 8, 10])
@pytest.mark.parametrize("value", [0.7, -0.7, 100 * (5 / 6 - 1)])
def test_sign_test_fallback_is_scipys_binomtest(n, value):
    """All differences equal and non-zero (no spread): the exact sign test over n seeds, k = n positive signs or 0."""
    x = np.full(n, value)
    k = n if value > 0 else 0
    assert sstats.two_sided_p(x) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, rel=1e-15)
    assert sstats.two_sided_p(x) == pytest.approx(min(1.0, 2 * 0.5 ** n), rel=1e-12)
    for alternative in ("greater", "less"):
        assert sstats.one_sided_p(x, alternative) == pytest.approx(
            stats.binomtest(k, n, 0.5, alternative=alternative).pvalue, rel=1e-15)
    assert sstats.one_sided_p(x, "greater" if value > 0 else "less") == pytest.approx(0.5 ** n)
    assert sstats.one_sided_p(x, "less" if value > 0 else "greater") == 1.0
    # through the claim test: the same p
    assert sstats.paired_comparison(x, "greater", 0.0, None)["p_value"] == pytest.approx(stats.binomtest(k, n, 0.5).pvalue)
    # all differences 0: no sign at all, p = 1
    assert sstats.two_sided_p(np.zeros(n)) == 1.0 and sstats.one_sided_p(np.zeros(n), "greater") == 1.0
