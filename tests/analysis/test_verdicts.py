"""The fourth verdict and the numbers beside every verdict: "absent at this scale" against a TOST written here with
scipy (one-sided t-tests against ±δ), δ from the config or a claim's larger stated margin, Holm over a claim's
equivalence p's, the crossed bootstrap over seeds and test videos against hand-made limits (identical arms, one
seed, constant videos, a shared video pattern), the MDE against a noncentral-t power computation, per-video
correctness read by `collect`, and the tallies that count the new verdict."""
from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import brentq

from scenebias.analysis import stats as sstats
from scenebias.report import table_pages
from scenebias.tables import regenerate as rg
from scenebias.tables.plan import all_cells, plan_table

ABSENT = "absent at this scale"
DELTA = 3.0  # the default's analysis.smallest_effect_pp




def _tost(d: np.ndarray, delta: float) -> float:
    """Two one-sided t-tests written with scipy: H1 mean > −δ and H1 mean < +δ; the larger p."""
    return max(stats.ttest_1samp(d, -delta, alternative="greater").pvalue,
               stats.ttest_1samp(d, delta, alternative="less").pvalue)


def _expected(d: np.ndarray, direction: str, delta: float) -> str:
    p = stats.ttest_1samp(d, 0.0).pvalue
    if p < 0.05:
        return "reproduced" if (d.mean() > 0) == (direction == "greater") else "contradicted"
    return ABSENT if _tost(d, delta) < 0.05 else "inconclusive"


# --------------------------------------------------------------------------------- one comparison
@pytest.mark.parametrize("direction, diffs, expected", [
    ("greater", [0.3, -0.2, 0.1], ABSENT),           # tight around 0: bounded within ±3 pp
    ("less", [0.4, -0.5, 0.2, 0.0], ABSENT),
    ("greater", [5.1, 4.9, 5.3], "reproduced"),
    ("greater", [0.5, 5.0, 2.0], "inconclusive"),    # +2.5 pp, near δ: neither signed nor bounded
    ("greater", [2.4, 2.9, 3.3], "reproduced"),      # near δ but tight: the claimed direction holds
    ("greater", [-2.0, -2.5, -1.8], "contradicted"),  # inside ±3 too, but significant the other way comes first
    ("less", [1.0, -2.5, 3.0], "inconclusive"),
])
def test_absent_is_an_equivalence_test_against_the_smallest_effect(direction, diffs, expected):
    d = np.array(diffs)
    out = sstats.paired_comparison(d, direction, 0.0, None, DELTA)
    assert out["p_equivalence"] == pytest.approx(_tost(d, DELTA), rel=1e-9)
    assert out["verdict"] == _expected(d, direction, DELTA) == expected
    assert out["delta"] == DELTA


def test_no_delta_no_equivalence_test():
    out = sstats.paired_comparison(np.array([0.3, -0.2, 0.1]), "greater", 0.0, None)
    assert out["verdict"] == "inconclusive" and math.isnan(out["p_equivalence"])
    # approx_equal keeps its own tolerance: no δ, no fourth verdict
    eq = sstats.paired_comparison(np.array([0.3, -0.2, 0.1]), "approx_equal", 0.0, 1.5, DELTA)
    assert eq["verdict"] == "reproduced" and math.isnan(eq["delta"]) and math.isnan(eq["p_equivalence"])


@pytest.mark.parametrize("p", [0.045, 0.055])
def test_absent_only_below_alpha(p):
    # centred differences with sd 1: both one-sided p's equal t.sf(δ / (1/√3), 2); choose δ so they are p
    delta = stats.t.isf(p, 2) / math.sqrt(3)
    d = np.array([-1.0, 0.0, 1.0])
    out = sstats.paired_comparison(d, "greater", 0.0, None, delta)
    assert out["p_equivalence"] == pytest.approx(p, rel=1e-9)
    assert out["verdict"] == (ABSENT if p < 0.05 else "inconclusive")


def test_mde_is_the_paired_t_tests_at_power_0_8():
    d = np.array([1.0, 3.5, 2.0, 0.2])
    sd, n = d.std(ddof=1), len(d)
    crit = stats.t.ppf(0.975, n - 1)
    power = lambda m: (stats.nct.sf(crit, n - 1, m * math.sqrt(n) / sd)  # noqa: E731
                       + np.nan_to_num(stats.nct.cdf(-crit, n - 1, m * math.sqrt(n) / sd)))
    expected = brentq(lambda m: power(m) - 0.8, 1e-6, 100 * sd)
    out = sstats.paired_comparison(d, "greater", 0.0, None, DELTA)
    assert out["mde"] == pytest.approx(expected, rel=1e-6)
    # no spread: the sign test decides, so a t-based MDE of 0 would be wrong: none
    assert math.isnan(sstats.paired_comparison(np.full(3, 0.7), "greater", 0.0, None, DELTA)["mde"])


# ------------------------------------------------------------------------------ the crossed bootstrap
def test_identical_arms_give_the_interval_zero():
    per_video = np.zeros((3, 50))
    reps = sstats.crossed_bootstrap(per_video, n_resamples=500)
    assert sstats.bootstrap_interval(reps) == (0.0, 0.0)
    out = sstats.paired_comparison(np.zeros(3), "greater", 0.0, None, DELTA, per_video)
    assert (out["ci_low"], out["ci_high"]) == (0.0, 0.0) and out["interval_sources"] == "seeds and test clips"


def test_one_seed_with_equal_videos_collapses():
    reps = sstats.crossed_bootstrap(np.full((1, 30), 2.5), n_resamples=500)
    assert np.all(reps == pytest.approx(2.5)) and sstats.bootstrap_interval(reps) == pytest.approx((2.5, 2.5))


def test_constant_videos_leave_the_seed_bootstrap_exactly():
    """Every video of a seed equal to that seed's difference: resampling videos changes nothing, and the replicates
    follow the bootstrap of the seed means, whose distribution is enumerated here over all 4⁴ draws."""
    seeds = np.array([-1.0, 0.5, 2.0, 4.0])
    reps = sstats.crossed_bootstrap(np.repeat(seeds[:, None], 25, axis=1), n_resamples=20_000)
    exact = np.array([seeds[list(draw)].mean() for draw in itertools.product(range(4), repeat=4)])
    for x in np.unique(exact):
        assert np.mean(reps <= x + 1e-9) == pytest.approx(np.mean(exact <= x + 1e-9), abs=0.01)


def test_one_seed_is_the_video_bootstrap():
    rng = np.random.default_rng(4)
    d = 100.0 * rng.choice([-1, 0, 0, 0, 1, 1], size=400)
    reps = sstats.crossed_bootstrap(d[None, :], n_resamples=20_000)
    assert reps.mean() == pytest.approx(d.mean(), abs=0.05)
    assert reps.std() == pytest.approx(d.std() / math.sqrt(len(d)), rel=0.03)
    ref = stats.bootstrap((d,), np.mean, method="percentile", n_resamples=20_000, random_state=1).confidence_interval
    assert sstats.bootstrap_interval(reps) == pytest.approx((ref.low, ref.high), abs=0.3)


def test_videos_are_drawn_once_for_every_seed():
    """Seeds tested on the same split share its videos: with the same per-video pattern on every seed the
    replicates vary as one split's video mean (sd/√V), not as S independent splits' (sd/√(S·V))."""
    rng = np.random.default_rng(7)
    pattern = 100.0 * rng.choice([-1, 0, 1], size=300)
    reps = sstats.crossed_bootstrap(np.tile(pattern, (5, 1)), n_resamples=10_000)
    assert reps.std() == pytest.approx(pattern.std() / math.sqrt(300), rel=0.05)


def test_bootstrap_is_deterministic():
    x = np.random.default_rng(0).normal(size=(3, 40))
    assert np.array_equal(sstats.crossed_bootstrap(x), sstats.crossed_bootstrap(x))


def test_bootstrap_equivalence_p_is_the_share_beyond_either_bound():
    reps = np.array([-3.5, -1.0, 0.0, 0.5, 2.0, 3.0, 3.2])
    assert sstats.bootstrap_tost_p(reps, 3.0) == pytest.approx((2 + 1) / 8)  # 3.0 and 3.2 at or above +3
    assert sstats.bootstrap_tost_p(reps, 4.0) == pytest.approx(1 / 8)


def test_both_sources_must_bound_the_effect():
    """Seeds that agree closely bound the effect within ±3 pp on their own; with 40 test videos on which the arms
    differ a lot, the bootstrap over videos does not: not absent. The interval spans both."""
    d = np.array([0.2, -0.1, 0.05])
    assert _tost(d, DELTA) < 0.05 and stats.ttest_1samp(d, 0.0).pvalue > 0.05
    rng = np.random.default_rng(1)
    per_video = np.stack([100.0 * rng.permutation(np.r_[np.ones(10), -np.ones(10), np.zeros(20)]) for _ in d])
    per_video[:, 0] += 40 * d  # each seed's mean is its difference
    assert per_video.mean(axis=1) == pytest.approx(d)
    with_clips = sstats.paired_comparison(d, "greater", 0.0, None, DELTA, per_video)
    seeds_only = sstats.paired_comparison(d, "greater", 0.0, None, DELTA)
    assert seeds_only["verdict"] == ABSENT and with_clips["verdict"] == "inconclusive"
    reps = sstats.crossed_bootstrap(per_video)
    assert with_clips["p_equivalence"] == pytest.approx(max(_tost(d, DELTA), sstats.bootstrap_tost_p(reps, DELTA)))
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    b_low, b_high = sstats.bootstrap_interval(reps)
    assert with_clips["ci_low"] == pytest.approx(min(d.mean() - half, b_low))
    assert with_clips["ci_high"] == pytest.approx(max(d.mean() + half, b_high))
    assert (seeds_only["ci_low"], seeds_only["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert seeds_only["interval_sources"] == "seeds"


# ----------------------------------------------------------------------------------------- claims
def _values(pairs: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [{"row": r, "column": c, "seed": s, "value": v, "swapped": np.nan} for (r, c), vals in pairs.items()
            for s, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["row", "column", "seed", "value", "swapped"])


def _intra_vs_none(gaps: dict[str, list[float]]) -> pd.DataFrame:
    """FAME Table 4's intra-video row = none + gap, per column."""
    base = {"ucf101": [50.0, 52.0, 51.0], "hmdb51": [30.0, 31.0, 33.0]}
    return _values({**{("none", c): v for c, v in base.items()},
                    **{("intra_video", c): list(np.array(base[c]) + gaps[c]) for c in base}})


def _judge(cfg, table, claim_id, values, correct=None, **change):
    claim = {**next(c for c in table["claims"] if c["id"] == claim_id), **change}
    return rg.judge_claims(plan_table(cfg, {**table, "claims": [claim]}), values, None, correct)[0]


def _holm_max(ps: list[float]) -> float:
    """Holm over the family, the largest adjusted p (the one deciding whether all reject)."""
    ordered = sorted(ps)
    return max(min(1.0, (len(ps) - k) * p) for k, p in enumerate(ordered))


@pytest.mark.parametrize("gaps, expected", [
    ({"ucf101": [0.3, -0.2, 0.1], "hmdb51": [-0.4, 0.5, 0.0]}, ABSENT),
    ({"ucf101": [5.1, 4.9, 5.3], "hmdb51": [4.0, 4.6, 4.4]}, "reproduced"),
    ({"ucf101": [0.5, 5.0, 2.0], "hmdb51": [-0.4, 0.5, 0.0]}, "inconclusive"),  # UCF101 near δ, HMDB51 absent
    ({"ucf101": [5.1, 4.9, 5.3], "hmdb51": [-0.4, 0.5, 0.0]}, "inconclusive"),  # reproduced + absent: mixed
])
def test_a_claim_is_absent_only_when_every_comparison_is(default_cfg, tables, gaps, expected):
    judged = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", _intra_vs_none(gaps))
    d = {c: np.array(g) for c, g in gaps.items()}
    signed = [stats.ttest_1samp(x, 0.0).pvalue for x in d.values()]
    equivalent = [_tost(x, DELTA) for x in d.values()]
    if _holm_max(signed) < 0.05 and all(x.mean() > 0 for x in d.values()):
        assert expected == "reproduced"
    elif _holm_max(equivalent) < 0.05 and all(p >= 0.05 for p in sstats.holm(signed)):
        assert expected == ABSENT
    else:
        assert expected == "inconclusive"
    assert judged["verdict"] == expected
    assert judged["delta"] == DELTA
    assert "equivalence bound ±3 pp (the smallest effect declared meaningful)" in judged["detail"]
    if expected == ABSENT:  # the numbers shown are the weakest equivalence's
        worst = max(d, key=lambda c: _tost(d[c], DELTA))
        assert judged["effect"] == pytest.approx(d[worst].mean())
        assert judged["p_equivalence"] == pytest.approx(_holm_max(equivalent))
        assert judged["p_equivalence_uncorrected"] == pytest.approx(_tost(d[worst], DELTA))


def test_equivalence_p_values_are_holm_corrected_within_the_claim(default_cfg, tables):
    """Two comparisons, each with a raw equivalence p of 0.03: each alone is absent, together Holm makes both 0.06."""
    sd = DELTA * math.sqrt(3) / stats.t.isf(0.03, 2)
    gap = list(sd * np.array([-1.0, 0.0, 1.0]))
    assert _tost(np.array(gap), DELTA) == pytest.approx(0.03)
    values = _intra_vs_none({"ucf101": gap, "hmdb51": gap})
    both = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", values)
    assert both["verdict"] == "inconclusive" and both["p_equivalence"] == pytest.approx(0.06)
    alone = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", values, columns=["ucf101"])
    assert alone["verdict"] == ABSENT and alone["p_equivalence"] == pytest.approx(0.03)


def test_delta_is_the_config_key_or_the_claims_larger_margin(default_cfg, tables):
    small = copy.deepcopy(default_cfg)
    small["analysis"]["smallest_effect_pp"] = 1.0
    # FAME Table 6's "over 2%" (margin 2): with δ = 1 from the config, the margin bounds the equivalence
    table = tables["fame_table6"]
    fame = {"ucf101": [60.0, 61.0, 62.0], "hmdb51": [40.0, 41.0, 42.0]}
    gaps = {"ucf101": [0.1, -0.2, 0.15], "hmdb51": [0.0, 0.2, -0.1]}  # fame − grid
    values = _values({**{("fame_k400", c): v for c, v in fame.items()},
                      **{("grid_k400", c): list(np.array(fame[c]) - gaps[c]) for c in fame}})
    judged = _judge(small, table, "fame_beats_grid_k400", values)
    assert judged["delta"] == 2.0 and "±2 pp (the claim's stated margin)" in judged["detail"]
    # bounded within ±2 pp, but also significantly below the stated 2 pp: the claim as stated is contradicted,
    # which comes first; its numbers are the strongest contradiction's
    below = {c: stats.ttest_1samp(np.array(g), 2.0).pvalue for c, g in gaps.items()}
    assert judged["verdict"] == "contradicted"
    strongest = min(below, key=below.get)
    assert judged["p_equivalence_uncorrected"] == pytest.approx(_tost(np.array(gaps[strongest]), 2.0), rel=1e-9)
    # on the default the config's 3 pp is the larger
    assert _judge(default_cfg, table, "fame_beats_grid_k400", values)["delta"] == DELTA
    # without a margin the config's δ: the same numbers are absent within ±3 pp, not within ±1
    near_zero = {"ucf101": [0.5, -0.6, 0.4], "hmdb51": [-0.3, 0.6, 0.1]}
    assert _holm_max([_tost(np.array(g), 3.0) for g in near_zero.values()]) < 0.05
    assert _holm_max([_tost(np.array(g), 1.0) for g in near_zero.values()]) >= 0.05
    at_three = _judge(default_cfg, tables["fame_table4"], "intra_beats_none", _intra_vs_none(near_zero))
    assert at_three["verdict"] == ABSENT
    at_one = _judge(small, tables["fame_table4"], "intra_beats_none", _intra_vs_none(near_zero))
    assert at_one["verdict"] == "inconclusive" and at_one["delta"] == 1.0


# ------------------------------------------------------------------ per-video correctness, end to end
def _records(cfg, table, results, n_videos=40):
    """One record per cell and seed with per-video correctness whose mean is the cell's top-1: every row right on
    the same first videos, the intra-video row on 1 video more than none per 40 (2.5 pp)."""
    right = {"none": 20, "intra_video": 21, "inter_video": 20}
    for cell in all_cells(cfg, table):
        if not cell.reproduced:
            continue
        for seed in cfg["seeds"]:
            k = right[cell.row] + (seed % 2)
            correct = [1] * k + [0] * (n_videos - k)
            test = {"top1": k / n_videos, "per_class_acc": [k / n_videos] * 6, "correct": correct}
            metrics = {"test": test}
            if cell.downstream == cfg["data"]["downstream_flavour"]:
                metrics["swapped"] = {"top1": 0.5, "correct": [1, 0] * (n_videos // 2)}
            path = rg.eval_path_in(results)(cell.run, seed, cell.downstream, cell.protocol)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"run": cell.run, "seed": seed, "protocol": cell.protocol,
                                        "downstream": cell.downstream, "test_sets": {"test": cell.downstream},
                                        "results": metrics}))


def test_collect_keeps_each_seeds_per_video_correctness(default_cfg, tables, tmp_path):
    table = tables["fame_table4"]
    _records(default_cfg, table, tmp_path)
    plan = plan_table(default_cfg, table)
    collected = rg.collect(plan, rg.eval_path_in(tmp_path))
    for (row, column, seed, which), flags in collected.correct.items():
        mine = collected.values.set_index(["row", "column", "seed"]).loc[(row, column, seed)]
        assert 100 * flags.mean() == pytest.approx(mine["value" if which == "value" else "swapped"])
    assert {k[3] for k in collected.correct} == {"value", "swapped"}
    judged = {c["claim"]: c for c in rg.judge_claims(plan, collected.values, None, collected.correct)}
    claim = judged["intra_beats_none"]
    assert claim["interval_sources"] == claim["swapped_interval_sources"] == "seeds and test clips"
    # intra − none is +2.5 pp on every seed and one video: no spread, and the bootstrap over 40 videos gives
    # replicates of 2.5 · (times video 21 drawn): the interval is wide although the seeds agree
    assert claim["effect"] == pytest.approx(2.5) and claim["ci_high"] >= 5.0 and claim["ci_low"] == pytest.approx(0.0)
    assert claim["swapped_ci_low"] == claim["swapped_ci_high"] == 0.0  # identical swapped arms: [0, 0]


def test_the_table_shows_interval_mde_and_equivalence(default_cfg, tables, tmp_path):
    from scenebias.tables.render import build_table

    _records(default_cfg, tables["fame_table4"], tmp_path / "results")
    record = build_table(default_cfg, "fame_table4", tmp_path / "results", tmp_path / "out")
    md = (tmp_path / "out" / "fame_table4.md").read_text()
    assert "| 95% interval | MDE (pp, or r) | MDE down to δ at | p | p within ±δ pp |" in md
    claim = next(c for c in record["claims"] if c["claim"] == "intra_beats_none")
    assert f"[{claim['ci_low']:+.1f}, {claim['ci_high']:+.1f}]" in md and "(±3)" in md
    # every seed differs by the same video here: no spread, so no t-test MDE and no seed count ("–")
    assert math.isnan(claim["mde"]) and math.isnan(claim["seeds_needed"])
    row = next(line for line in md.splitlines() if line.startswith("| intra_beats_none |")).split(" | ")
    assert row[4:6] == ["–", "–"]  # the MDE and the seeds beside it
    page = table_pages.claims_table([record])
    assert "MDE (pp, or r)" in page and "p within ±δ pp (Holm)" in page and "MDE down to δ at" in page


# ------------------------------------------------------------------------------------------- tallies
def _record(verdicts: list[str], swapped: list[str]) -> dict:
    claims = [{"claim": f"c{i}", "text": "t", "verdict": v, "swapped_verdict": s, "effect": 0.1, "ci_low": -1.0,
               "ci_high": 1.0, "mde": 2.0, "p_value": 0.5, "p_value_uncorrected": 0.5, "delta": 3.0,
               "p_equivalence": 0.01, "n_seeds": 3, "holds_on_published": True, "detail": "d",
               "swapped_delta": 3.0, "swapped_p_equivalence": 0.02, "swapped_effect": 0.2,
               "swapped_ci_low": -1.0, "swapped_ci_high": 1.0}
              for i, (v, s) in enumerate(zip(verdicts, swapped))]
    return {"table": "t1", "label": "T 1", "claims": claims}


def test_every_tally_counts_absent_at_this_scale():
    record = _record([ABSENT, ABSENT, "reproduced", "contradicted", "inconclusive", "not testable"],
                     [ABSENT, "inconclusive", "not testable", "not testable", "not testable", "not testable"])
    assert table_pages.tally([record]) == {ABSENT: 2, "reproduced": 1, "contradicted": 1, "inconclusive": 1,
                                           "not testable": 1}
    assert table_pages.tally([record], "swapped_verdict")[ABSENT] == 1
    assert ABSENT in rg.VERDICTS and ABSENT in table_pages.VERDICT_COLOURS
    page = table_pages.overview_section([record])
    assert f"2 {ABSENT}</span>" in page and f"1 {ABSENT}</span>" in page  # the biased and the swapped tally
    assert f"1 reproduced, 1 contradicted, 2 {ABSENT}, 1 inconclusive, 1 not testable" in page  # the table's line
    assert "absent at this scale, +0.2 [-1.0, +1.0], p within ±3 pp 0.02" in page  # the swapped column
