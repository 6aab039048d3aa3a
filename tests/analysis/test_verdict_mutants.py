"""Verdict behaviours that a mutation audit of scenebias/analysis/stats.py, calibration.py and
scenebias/tables/regenerate.py found no test pinning. Each test names the behaviour; expected numbers come from
scipy or hand arithmetic, not from the code's own constants."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenebias.analysis import calibration as C
from scenebias.analysis import stats as sstats
from scenebias.tables import regenerate as rg
from scenebias.tables.plan import plan_table

ABSENT = "absent at this scale"


def _values(pairs: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [{"row": r, "column": c, "seed": s, "value": v, "swapped": np.nan} for (r, c), vals in pairs.items()
            for s, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["row", "column", "seed", "value", "swapped"])


def _judge(cfg, table, claim_id, values, **change):
    claim = {**next(c for c in table["claims"] if c["id"] == claim_id), **change}
    return rg.judge_claims(plan_table(cfg, {**table, "claims": [claim]}), values)[0]


# ------------------------------------------------------------------------------ power and seed counts
@pytest.mark.parametrize("r, expected", [(0.5, 30), (-0.48, 32), (0.3, 85)])
def test_classes_to_detect_r_is_the_first_count_with_power_0_8(r, expected):
    """points_to_detect_r rounds up: the smallest n whose Fisher-z power (Φ(atanh|r|·√(n−3) − z₀.₉₇₅)) reaches
    0.8. r = 0.5: z = 2.8016 / 0.5493 = 5.100, z² + 3 = 29.01 -> 30 classes (29 has power 0.7998)."""
    def power(n: int) -> float:
        return float(stats.norm.cdf(math.atanh(abs(r)) * math.sqrt(n - 3) - stats.norm.ppf(0.975)))

    n = sstats.points_to_detect_r(r)
    assert n == expected
    assert power(n) >= 0.8 > power(n - 1)


def test_seeds_to_detect_at_exactly_the_searched_limit_is_that_limit():
    """An effect equal to the MDE at the last searched count (1000 seeds) is detected there: 1000, not "over
    1000"; a hair smaller is over."""
    effect = sstats.minimum_detectable_effect(2.0, sstats.SEEDS_SEARCHED)
    assert sstats.seeds_to_detect(2.0, effect) == 1000
    assert math.isinf(sstats.seeds_to_detect(2.0, effect * (1 - 1e-9)))


@pytest.mark.parametrize("n", [10, 30])
def test_the_mde_solves_the_two_sided_power_exactly(n):
    """The MDE is the exact noncentral-t solution of P(|T'| > t₀.₉₇₅) = 0.8, both tails counted: the wrong-sign
    rejections (about 1e-6 of power at 10-30 seeds) are part of the power, not dropped."""
    sd = 1.7
    mde = sstats.minimum_detectable_effect(sd, n)
    df, crit, nc = n - 1, stats.t.ppf(0.975, n - 1), mde * math.sqrt(n) / sd
    power = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    assert power == pytest.approx(0.8, abs=1e-9)


# ----------------------------------------------------------------------------------- one comparison
def test_the_interval_keeps_the_seeds_t_interval_where_it_is_the_wider():
    """Seeds far apart, every video of a seed equal to that seed's difference: the bootstrap over three seeds
    spans only [−2, +4], the t interval 1 ± t₀.₉₇₅,₂ · 3 / √3 = 1 ± 7.45. The interval shown is the span: the t's."""
    d = np.array([-2.0, 1.0, 4.0])
    per_video = np.repeat(d[:, None], 40, axis=1)
    out = sstats.paired_comparison(d, "greater", 0.0, None, 3.0, per_video)
    half = stats.t.ppf(0.975, 2) * 3.0 / math.sqrt(3)
    assert half == pytest.approx(7.453, abs=1e-3)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((1.0 - half, 1.0 + half), rel=1e-9)
    assert out["interval_sources"] == "seeds and test clips"


def test_a_less_claim_significantly_short_of_its_margin_is_contradicted():
    """"A lower than B by at least 1 pp" with A − B = −0.4, −0.5, −0.6: significantly above −1 pp (scipy's
    t-test against −1: t = 8.66, p = 0.013), so the claim as stated is contradicted, not reproduced."""
    d = np.array([-0.4, -0.5, -0.6])
    p = stats.ttest_1samp(d, -1.0).pvalue
    assert p == pytest.approx(0.0131, abs=1e-4)
    out = sstats.paired_comparison(d, "less", 1.0, None)
    assert out["p_value"] == pytest.approx(p, rel=1e-9)
    assert out["agrees"] is False and out["verdict"] == "contradicted"


# ------------------------------------------------------------------------------ Holm within a claim
def test_two_seed_comparisons_are_judged_on_their_holm_corrected_p(default_cfg, tables):
    """Two seeds are a test (1 df) and belong to the family: FAME Table 4 intra > none on both columns, each with
    differences m ± 1 (t = m, two-sided p 0.03 at 1 df). Alone each is reproduced; together Holm gives 0.06 and
    the claim is inconclusive."""
    m = stats.t.isf(0.015, 1)
    gap = [m - 1.0, m + 1.0]
    assert stats.ttest_1samp(np.array(gap), 0.0).pvalue == pytest.approx(0.03, rel=1e-9)
    base = {"ucf101": [50.0, 52.0], "hmdb51": [30.0, 31.0]}
    values = _values({**{("none", c): v for c, v in base.items()},
                      **{("intra_video", c): list(np.array(v) + gap) for c, v in base.items()}})
    both = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", values)
    assert both["n_seeds"] == 2 and both["comparisons_tested"] == 2
    assert both["p_value"] == pytest.approx(0.06, rel=1e-9) and both["verdict"] == "inconclusive"
    alone = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", values, columns=["ucf101"])
    assert alone["verdict"] == "reproduced"


def test_approx_equal_outside_p_values_are_holm_corrected_too(default_cfg, tables):
    """approx_equal's second family: FAME Table 5 single ≈ both (±1.5 pp) on one β row, two columns, each
    difference 1.5 + m + (−1, 0, 1) with a one-sided p of 0.03 for "above +1.5". Alone: contradicted; as a
    family of two, Holm gives 0.06 on both and the claim is inconclusive."""
    tol = 1.5
    d = tol + stats.t.isf(0.03, 2) / math.sqrt(3) + np.array([-1.0, 0.0, 1.0])
    assert stats.ttest_1samp(d, tol, alternative="greater").pvalue == pytest.approx(0.03, rel=1e-9)
    single = {"ucf101": [50.0, 51.0, 52.0], "hmdb51": [30.0, 31.5, 32.0]}
    values = _values({**{("beta_07", f"{c}_single"): v for c, v in single.items()},
                      **{("beta_07", f"{c}_both"): list(np.array(v) - d) for c, v in single.items()}})
    table = tables["fame_table5"]
    both = _judge(default_cfg, table, "single_approx_both", values, rows=["beta_07"])
    assert both["comparisons_tested"] == 2 and both["verdict"] == "inconclusive"
    alone = _judge(default_cfg, table, "single_approx_both", values, rows=["beta_07"],
                   column_pairs=[["ucf101_single", "ucf101_both"]])
    assert alone["comparisons_tested"] == 1 and alone["verdict"] == "contradicted"


# ------------------------------------------------------------------------------------ calibration gates
def _gate_rows(run, downstream, test_set, values, protocol="finetune"):
    return [{"run": run, "method": run, "role": "method", "seed": s, "protocol": protocol, "downstream": downstream,
             "test_set": test_set, "metric": "top1", "value": v} for s, v in enumerate(values)]


def _order_gates(motion, scene=(0.1, 0.12, 0.08), moco=(0.5, 0.55, 0.6)):
    frame = pd.DataFrame(_gate_rows("motion_learnability", "diving48", "test", motion)
                         + _gate_rows("scene_shortcut", "diving48", "test", scene)
                         + _gate_rows("moco", "diving48", "test", moco))
    return {g["gate"]: g["status"] for g in C.set_gates(frame, "diving48", {"gates": "order", "classes": 12})["gates"]}


@pytest.mark.parametrize("motion, expected", [
    ((0.75, 0.75, 0.75), "pass"),   # the mean exactly at 75%
    ((0.9, 0.9, 0.65), "pass"),     # one seed exactly at 65%, the mean well above
    ((0.74, 0.75, 0.75), "fail"),   # the mean 74.7%
])
def test_the_order_gate_passes_at_75_percent_and_every_seed_at_65(motion, expected):
    """Diving48-like gate (a): mean >= 75% and every seed >= 65% (docs/calibration-study.md), on the passing side
    of each threshold too."""
    assert _order_gates(motion)["a"] == expected


def test_the_scene_gate_is_missing_when_either_test_set_lacks_runs():
    """Gate (b) reads the scene row on the biased and the swapped test: with only one of the two it is "missing",
    never failed (nor passed) on a NaN mean."""
    motion = _gate_rows("motion_learnability", "ucf101", "swapped", [0.9] * 3, "classifier")
    for present in ("biased", "swapped"):
        scene = _gate_rows("scene_shortcut", "ucf101", present, [0.95 if present == "biased" else 0.05] * 3,
                           "classifier")
        gates = C.calibration_gates(pd.DataFrame(motion + scene))
        b = next(g for g in gates["gates"] if g["gate"] == "b")
        assert b["status"] == "missing", present


def test_a_scene_set_with_only_one_generated_copy_has_no_gates():
    """A "scene" set needs both its scene-swapped and its unbiased copy: with only one of them every gate is "not
    available", as with neither (the motion row has no unbiased copy to be fine-tuned on)."""
    frame = pd.DataFrame(_gate_rows("moco", "hmdb51", "swapped", [0.4, 0.45, 0.42])
                         + _gate_rows("motion_learnability", "hmdb51", "swapped", [0.9, 0.9, 0.9]))
    for spec in ({"gates": "scene", "swapped": "hmdb51_swapped"}, {"gates": "scene", "unbiased": "hmdb51_unbiased"}):
        found = C.set_gates(frame, "hmdb51", spec)
        assert {g["status"] for g in found["gates"]} == {"not available"} and found["overall"] == "not available"


# ------------------------------------------------------------------------------- BE Figure 4's correlation
def _class_points(static: list[float], improvement: list[float]) -> pd.DataFrame:
    k = len(static)
    return pd.DataFrame({"row": "correlation", "seed": 0, "class": [f"c{i}" for i in range(k)],
                         "static_top1": static, "moco_top1": 40.0, "method_top1": 40.0,
                         "relative_improvement": improvement})


def test_two_classes_give_no_correlation(default_cfg, tables):
    """Two points always lie on a line (r = ±1, p = 1): r over fewer than three classes is undefined, not −1."""
    points = _class_points([20.0, 80.0], [30.0, 10.0])
    r, p, k = rg.correlation(points)
    assert math.isnan(r) and math.isnan(p) and k == 2
    claims = rg.judge_claims(plan_table(default_cfg, tables["be_figure4"]), pd.DataFrame(columns=rg.VALUE_COLUMNS),
                             points)
    claim = next(c for c in claims if c["claim"] == "negative_static_bias_correlation")
    assert math.isnan(claim["effect"]) and claim["verdict"] == "inconclusive"
    assert "2 class(es) with a MoCo accuracy above 0, fewer than 3" in claim["detail"]


def test_three_classes_give_r_but_no_fisher_interval(default_cfg, tables):
    """Fisher's z interval needs n − 3 > 0: with three classes r is defined (scipy's) but there is no interval
    (scipy would print the vacuous [−1, 1])."""
    static, improvement = [10.0, 20.0, 35.0], [20.0, 10.0, 7.0]
    points = _class_points(static, improvement)
    assert rg.correlation(points)[0] == pytest.approx(stats.pearsonr(static, improvement).statistic)
    low, high = rg.correlation_interval(points)
    assert math.isnan(low) and math.isnan(high)
    claims = rg.judge_claims(plan_table(default_cfg, tables["be_figure4"]), pd.DataFrame(columns=rg.VALUE_COLUMNS),
                             points)
    claim = next(c for c in claims if c["claim"] == "negative_static_bias_correlation")
    assert math.isnan(claim["ci_low"]) and claim["interval_sources"] is None


# ----------------------------------------------------------------------------------------------- claims
def test_a_less_claim_is_absent_within_delta_too(default_cfg, tables):
    """BE Table 4 "Mixup and CutMix below the baseline" (direction less, four comparisons): differences tight around
    0 are bounded within ±3 pp, so the claim is absent at this scale, as a greater claim would be."""
    gaps = {("video_mixup", "ucf101"): [0.2, -0.1, 0.05], ("video_mixup", "hmdb51"): [-0.2, 0.1, 0.0],
            ("video_cutmix", "ucf101"): [0.1, 0.3, -0.1], ("video_cutmix", "hmdb51"): [0.0, -0.3, 0.1]}
    base = {"ucf101": [70.0, 72.0, 71.0], "hmdb51": [40.0, 41.0, 43.0]}
    values = _values({**{("baseline", c): v for c, v in base.items()},
                      **{(r, c): list(np.array(base[c]) + g) for (r, c), g in gaps.items()}})
    signed = sstats.holm([stats.ttest_1samp(np.array(g), 0.0).pvalue for g in gaps.values()])
    tost = sstats.holm([max(stats.ttest_1samp(np.array(g), -3.0, alternative="greater").pvalue,
                            stats.ttest_1samp(np.array(g), 3.0, alternative="less").pvalue) for g in gaps.values()])
    assert min(signed) >= 0.05 and max(tost) < 0.05
    judged = _judge(default_cfg, tables["be_table4"], "mixup_cutmix_below_baseline", values)
    assert judged["direction"] == "less" and judged["comparisons_tested"] == 4
    assert judged["delta"] == 3.0 and judged["verdict"] == ABSENT


def test_videos_of_different_test_sets_are_never_paired(default_cfg, tables):
    """A comparison across two downstream sets (none on UCF101-like vs none on HMDB51-like) has no per-video
    pairing even when both sets have as many test videos: the interval is the seeds' t interval alone."""
    values = _values({("none", "ucf101"): [55.0, 60.0, 52.0], ("none", "hmdb51"): [50.0, 51.0, 50.5]})
    rng = np.random.default_rng(0)
    correct = {(row, col, s, "value"): rng.integers(0, 2, 40).astype(float)
               for row, col in (("none", "ucf101"), ("none", "hmdb51")) for s in range(3)}
    claim = {**next(c for c in tables["fame_table4"]["claims"] if c["id"] == "intra_beats_none"),
             "rows": ["none"], "column_pairs": [["ucf101", "hmdb51"]]}
    judged = rg.judge_claims(plan_table(default_cfg, {**tables["fame_table4"], "claims": [claim]}), values, None,
                             correct)[0]
    d = np.array([5.0, 9.0, 1.5])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert judged["interval_sources"] == "seeds"
    assert (judged["ci_low"], judged["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-9)


def test_a_claims_seed_count_is_its_fewest(default_cfg, tables):
    """n_seeds of a claim whose comparisons have 3 and 2 seeds in common is 2: it is decided only as far as its
    thinnest comparison."""
    values = _values({("none", "ucf101"): [50.0, 52.0, 51.0], ("intra_video", "ucf101"): [55.0, 56.5, 56.0],
                      ("none", "hmdb51"): [30.0, 31.0, 33.0], ("intra_video", "hmdb51"): [35.0, 36.0, np.nan]})
    judged = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", values)
    assert judged["comparisons_tested"] == 2 and judged["n_seeds"] == 2


def _table4(gaps: dict[str, list[float]]) -> pd.DataFrame:
    """FAME Table 4 values: none = base, intra_video = base + gap, per column (NaN: no such seed)."""
    base = {"ucf101": [50.0, 52.0, 51.0], "hmdb51": [30.0, 31.0, 33.0]}
    return _values({**{("none", c): v for c, v in base.items()},
                    **{("intra_video", c): list(np.array(base[c][:len(g)]) + np.array(g)) for c, g in gaps.items()}})


def test_one_contradicted_comparison_contradicts_the_claim_and_is_shown(default_cfg, tables):
    """Intra > none reproduced on UCF101 (p 0.0001) and contradicted on HMDB51 (p 0.003): the claim is
    contradicted, and its numbers are the contradiction's even though the reproduced comparison has the smaller
    p."""
    gaps = {"ucf101": [5.0, 5.1, 4.9], "hmdb51": [-4.0, -4.5, -3.7]}
    p = {c: stats.ttest_1samp(np.array(g), 0.0).pvalue for c, g in gaps.items()}
    assert p["ucf101"] < p["hmdb51"] and 2 * p["hmdb51"] < 0.05
    judged = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", _table4(gaps))
    assert judged["verdict"] == "contradicted"
    assert judged["effect"] == pytest.approx(np.mean(gaps["hmdb51"]))
    assert judged["p_value_uncorrected"] == pytest.approx(p["hmdb51"], rel=1e-9)


def test_an_absent_claim_shows_its_weakest_equivalence_not_its_weakest_signed_test(default_cfg, tables):
    """Two absent comparisons: UCF101 exactly centred (signed p = 1, TOST p tiny) and HMDB51 noisier (signed
    p 0.56, the larger TOST p). The claim shows HMDB51's numbers: its equivalence is what the verdict rests on."""
    gaps = {"ucf101": [0.1, 0.0, -0.1], "hmdb51": [1.0, -0.5, 0.4]}

    def tost(g):
        return max(stats.ttest_1samp(np.array(g), -3.0, alternative="greater").pvalue,
                   stats.ttest_1samp(np.array(g), 3.0, alternative="less").pvalue)

    signed = {c: stats.ttest_1samp(np.array(g), 0.0).pvalue for c, g in gaps.items()}
    assert signed["ucf101"] == pytest.approx(1.0) and signed["hmdb51"] < 1.0
    assert tost(gaps["hmdb51"]) > tost(gaps["ucf101"]) and max(2 * tost(gaps["ucf101"]), tost(gaps["hmdb51"])) < 0.05
    judged = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", _table4(gaps))
    assert judged["verdict"] == ABSENT
    assert judged["effect"] == pytest.approx(np.mean(gaps["hmdb51"]))
    assert judged["p_equivalence_uncorrected"] == pytest.approx(tost(gaps["hmdb51"]), rel=1e-9)


def test_an_untested_comparison_is_the_weakest(default_cfg, tables):
    """UCF101 reproduced over three seeds, HMDB51 with one seed (no test, p NaN): the claim is inconclusive and
    shows the untested comparison, which is what keeps it undecided (its p counts as 1, not 0)."""
    gaps = {"ucf101": [5.0, 5.1, 4.9], "hmdb51": [2.0]}
    values = _table4(gaps)
    values = values[~((values["column"] == "hmdb51") & (values["seed"] > 0))]  # none on HMDB51: one seed too
    judged = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", values)
    assert judged["verdict"] == "inconclusive" and judged["comparisons_tested"] == 1
    assert judged["effect"] == pytest.approx(2.0) and math.isnan(judged["p_value"])


def test_per_video_records_that_do_not_match_leave_the_interval_to_the_seeds(default_cfg, tables):
    """Per-video correctness of different lengths (another split) or empty for the two arms: no bootstrap, no
    error; the interval is the seeds' t interval."""
    gaps = {"ucf101": [2.0, 4.0, 3.5]}
    values = _table4(gaps)
    d = np.array(gaps["ucf101"])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    for n_intra, n_none in ((39, 40), (0, 0)):
        correct = {(row, "ucf101", s, "value"): np.ones(n) for row, n in (("intra_video", n_intra),
                                                                          ("none", n_none)) for s in range(3)}
        claim = {**next(c for c in tables["fame_table4"]["claims"] if c["id"] == "intra_beats_none"),
                 "columns": ["ucf101"]}
        judged = rg.judge_claims(plan_table(default_cfg, {**tables["fame_table4"], "claims": [claim]}), values,
                                 None, correct)[0]
        assert judged["interval_sources"] == "seeds"
        assert (judged["ci_low"], judged["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))


def test_a_claim_is_gated_only_by_the_sets_of_its_reproduced_cells(default_cfg, tables):
    """BE Table 1's ImageNet-supervised row has no stand-in on this preset: a claim on its cells alone reads no
    set's gates (it is not testable), while its cells name the UCF101- and HMDB51-like sets."""
    table = tables["be_table1"]
    plan = plan_table(default_cfg, table)
    cells = {(c.row, c.column): c for c in plan.cells}
    assert {cells[("imagenet_supervised_i3d", c)].downstream for c in ("ucf101", "hmdb51")} == {"ucf101", "hmdb51"}
    assert not any(cells[("imagenet_supervised_i3d", c)].reproduced for c in ("ucf101", "hmdb51"))
    only_external = {"id": "x", "direction": "greater", "rows": ["imagenet_supervised_i3d"],
                     "column_pairs": [["ucf101", "hmdb51"]]}
    assert rg.claim_downstreams(only_external, plan) == []
    mixed = {"id": "y", "direction": "greater", "pairs": [["moco_be_i3d_k400", "imagenet_supervised_i3d"]],
             "columns": ["hmdb51"]}
    assert rg.claim_downstreams(mixed, plan) == ["hmdb51"]


def _row_points(row: str, p: float, classes: int = 10) -> pd.DataFrame:
    """One seed's per-class points of `row` whose Pearson r is negative with two-sided p `p`."""
    t = stats.t.isf(p / 2, classes - 2)
    r = -t / math.sqrt(t * t + classes - 2)
    x = np.linspace(-1.0, 1.0, classes)
    w = np.array([(-1.0) ** k for k in range(classes)])
    w = w - w.mean() - (w @ x) / (x @ x) * x  # orthogonal to x and to the constant
    y = r * x / np.linalg.norm(x) + math.sqrt(1 - r * r) * w / np.linalg.norm(w)
    return pd.DataFrame({"row": row, "seed": 0, "class": [f"c{k}" for k in range(classes)],
                         "static_top1": 50 + 30 * x, "moco_top1": 40.0, "method_top1": 40.0,
                         "relative_improvement": 20 + 10 * y})


def test_a_correlation_claim_over_two_rows_is_holm_corrected(default_cfg, tables):
    """The correlation claim's rows are one family: two rows each with r < 0 at p 0.03 are reproduced alone, but
    Holm makes both 0.06 and the claim over both inconclusive."""
    points = pd.concat([_row_points("a", 0.03), _row_points("b", 0.03)])
    for row in ("a", "b"):
        mine = points[points["row"] == row]
        check = stats.pearsonr(mine["static_top1"], mine["relative_improvement"])
        assert check.statistic < 0 and check.pvalue == pytest.approx(0.03, rel=1e-6)
    table = tables["be_figure4"]
    claim = next(c for c in table["claims"] if c["id"] == "negative_static_bias_correlation")
    empty = pd.DataFrame(columns=rg.VALUE_COLUMNS)

    def judged(rows):
        plan = plan_table(default_cfg, {**table, "claims": [{**claim, "rows": rows}]})
        return rg.judge_claims(plan, empty, points)[0]

    alone, both = judged(["a"]), judged(["a", "b"])
    assert alone["verdict"] == "reproduced" and alone["p_value"] == pytest.approx(0.03, rel=1e-6)
    assert both["verdict"] == "inconclusive" and both["p_value"] == pytest.approx(0.06, rel=1e-6)
    assert both["p_value_uncorrected"] == pytest.approx(0.03, rel=1e-6)
