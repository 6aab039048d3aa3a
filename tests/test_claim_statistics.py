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

from scenebias.config import load_config
from scenebias.paper_tables import load_paper_tables
from scenebias.tables import regenerate as rg
from scenebias.tables.plan import all_cells


@pytest.fixture(scope="module")
def default_cfg():
    return load_config("default")


@pytest.fixture(scope="module")
def tables():
    return load_paper_tables()


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
    out = rg._test(d, "greater", 0.0, None)
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
    out = rg._test(d, direction, margin, None)
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
    assert out["p_value"] != pytest.approx(rg._test(d, direction, 0.0, None)["p_value"], rel=1e-3)


def test_margin_verdicts_spelled_out():
    assert rg._test(np.array([2.5, 2.6, 2.4]), "greater", 2.0, None)["verdict"] == "reproduced"
    at_margin = rg._test(np.array([2.1, 1.9, 2.3]), "greater", 2.0, None)
    assert at_margin["verdict"] == "inconclusive"
    # t = 0.1 / (0.2 / √3) = 0.866, 2 df: two-sided p = 0.4778
    assert at_margin["p_value"] == pytest.approx(0.4778, abs=1e-4)
    assert rg._test(np.array([2.1, 1.9, 2.3]), "greater", 0.0, None)["verdict"] == "reproduced"
    assert rg._test(np.array([1.1, 0.9, 1.0, 1.2]), "greater", 2.0, None)["verdict"] == "contradicted"


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
    out = rg._test(d, "approx_equal", 0.0, tolerance)
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
    out = rg._test(d, "approx_equal", 0.0, 1.5)
    assert out["p_value"] == pytest.approx(p_high) and out["verdict"] == "reproduced"
    assert rg._test(np.array([3.0, 3.2, 2.9, 3.1]), "approx_equal", 0.0, 1.0)["verdict"] == "contradicted"
    assert rg._test(np.array([1.0, 2.0, 0.5]), "approx_equal", 0.0, 1.5)["verdict"] == "inconclusive"


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
    judged = {v["claim"]: v for v in rg.judge_claims(table, values, default_cfg)}["fame_beats_grid_k400"]
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
    again = {v["claim"]: v for v in rg.judge_claims({**table, "claims": [no_margin]}, values, default_cfg)}
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
    judged = {v["claim"]: v for v in rg.judge_claims(table, _values(pairs), default_cfg)}["single_approx_both"]
    tol = claim["tolerance"]
    ps = {k: max(stats.ttest_1samp(d, -tol, alternative="greater").pvalue,
                 stats.ttest_1samp(d, tol, alternative="less").pvalue) for k, d in diffs.items()}
    assert max(ps.values()) < 0.05
    assert judged["verdict"] == "reproduced"
    assert judged["p_value"] == pytest.approx(max(ps.values()), rel=1e-9)
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
    judged = rg.judge_claims({**table, "claims": [claim]}, values, default_cfg)[0]
    p = {c: stats.ttest_1samp(g, 0.0).pvalue for c, g in gaps.items()}
    assert max(p.values()) < 0.05 and judged["verdict"] == "contradicted"
    strongest = min(p, key=p.get)
    assert judged["p_value"] == pytest.approx(p[strongest], rel=1e-9)
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
    points = rg.class_points(table, cfg, path_of)
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
    points = rg.class_points(table, cfg, path_of)
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
    values = rg.seed_values(table, cfg, path_of)
    for s, seed in enumerate(cfg["seeds"]):
        per_seed = stats.pearsonr(100 * STATIC[s, keep], rel[s, keep])
        got = values[values["seed"] == seed].set_index("column")["value"]
        assert got["pearson_r"] == pytest.approx(per_seed.statistic, rel=1e-9)
        assert got["p_value"] == pytest.approx(per_seed.pvalue, rel=1e-9)
    # the claim: r < 0 with p < 0.05 -> reproduced, with the seed-averaged r and p
    claim = {c["claim"]: c for c in rg.judge_claims(table, values, cfg, points)}["negative_static_bias_correlation"]
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
    points = rg.class_points(table, cfg, path_of)
    values = rg.seed_values(table, cfg, path_of)
    claim = {c["claim"]: c for c in rg.judge_claims(table, values, cfg, points)}["negative_static_bias_correlation"]
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
    claim = rg.judge_claims(table, pd.DataFrame(columns=rg.VALUE_COLUMNS), default_cfg, None)
    verdicts = {c["claim"]: c for c in claim}
    assert verdicts["negative_static_bias_correlation"]["verdict"] == "not testable"
    assert verdicts["be_helps_less_static_classes"]["verdict"] == "not testable"  # qualitative
    # MoCo at 0 everywhere: no class has a relative improvement -> r undefined, inconclusive (not made up)
    cfg = _cfg_without_data(default_cfg, tmp_path)
    path_of = _figure4_records(cfg, table, tmp_path / "results", moco=np.zeros((3, CLASSES)))
    points = rg.class_points(table, cfg, path_of)
    r, p, k = rg.correlation(points)
    assert math.isnan(r) and math.isnan(p) and k == 0
    judged = {c["claim"]: c for c in rg.judge_claims(table, rg.seed_values(table, cfg, path_of), cfg, points)}
    assert judged["negative_static_bias_correlation"]["verdict"] == "inconclusive"
