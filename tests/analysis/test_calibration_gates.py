"""The calibration gates (scenebias.analysis.calibration): each gate's threshold on both sides, the per-seed rule of
(a), (d)'s paired test against scipy, missing runs never pass, real data has no oracle, the MDE against a
simulation, and the report's first screen."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenebias.analysis import calibration as C
from scenebias.analysis.stats import minimum_detectable_effect


def _rows(run, protocol, test_set, values, role="method"):
    return [{"run": run, "method": run, "role": role, "seed": s, "protocol": protocol, "downstream": "ucf101",
             "test_set": test_set, "metric": "top1", "value": v} for s, v in enumerate(values)]


def _frame(motion=(0.9, 0.85, 0.88), scene=((0.95, 0.9, 0.93), (0.1, 0.05, 0.08)),
           moco=(0.05, 0.06, 0.04), oracle=(0.25, 0.22, 0.30)):
    rows = _rows("motion_learnability", "classifier", "swapped", motion, "calibration")
    rows += _rows("scene_shortcut", "classifier", "biased", scene[0], "calibration")
    rows += _rows("scene_shortcut", "classifier", "swapped", scene[1], "calibration")
    rows += _rows("moco", "linear", "swapped", moco)
    if oracle is not None:
        rows += _rows("moco+oracle_mask", "linear", "swapped", oracle, "reference")
    return pd.DataFrame(rows)


def _status(gates, letter):
    return next(g for g in gates["gates"] if g["gate"] == letter)["status"]


def test_a_preset_that_meets_every_threshold_passes():
    gates = C.calibration_gates(_frame())
    assert [g["status"] for g in gates["gates"]] == ["pass"] * 4 and gates["overall"] == "pass"


@pytest.mark.parametrize("motion, expected", [
    ((0.80, 0.80, 0.80), "pass"),      # exactly at the mean threshold
    ((0.79, 0.79, 0.79), "fail"),      # just below it
    ((0.95, 0.95, 0.65), "fail"),      # mean 85% but one seed below 70%
    ((0.85, 0.85, 0.70), "pass"),      # that seed exactly at 70%
])
def test_gate_a_needs_the_mean_and_every_seed(motion, expected):
    gates = C.calibration_gates(_frame(motion=motion))
    assert _status(gates, "a") == expected
    assert gates["overall"] == ("pass" if expected == "pass" else "fail")


@pytest.mark.parametrize("biased, swapped, expected", [
    ((0.85,) * 3, (0.25,) * 3, "pass"), ((0.84,) * 3, (0.1,) * 3, "fail"), ((0.95,) * 3, (0.26,) * 3, "fail")])
def test_gate_b_needs_a_high_biased_and_a_low_swapped_score(biased, swapped, expected):
    assert _status(C.calibration_gates(_frame(scene=(biased, swapped))), "b") == expected


def test_gate_c_compares_moco_with_the_motion_ceiling():
    motion = (0.8, 0.8, 0.8)
    assert _status(C.calibration_gates(_frame(motion=motion, moco=(0.5, 0.5, 0.5))), "c") == "pass"  # 30 pp
    gates = C.calibration_gates(_frame(motion=motion, moco=(0.51, 0.51, 0.51)))
    assert _status(gates, "c") == "fail"
    assert next(g for g in gates["gates"] if g["gate"] == "c")["gap_pp"] == pytest.approx(29.0)


def test_gate_d_is_the_paired_t_test_with_a_10_pp_effect():
    moco, oracle = (0.05, 0.07, 0.04), (0.20, 0.26, 0.17)
    gate = next(g for g in C.calibration_gates(_frame(moco=moco, oracle=oracle))["gates"] if g["gate"] == "d")
    diffs = 100 * (np.array(oracle) - np.array(moco))
    assert gate["effect_pp"] == pytest.approx(diffs.mean())
    assert gate["p_value"] == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)
    assert gate["status"] == "pass" and gate["seeds"] == 3
    # a large mean that is not significant fails; a significant effect below 10 pp fails
    noisy = next(g for g in C.calibration_gates(_frame(oracle=(0.60, 0.05, 0.05)))["gates"] if g["gate"] == "d")
    assert noisy["effect_pp"] > 10 and noisy["p_value"] > 0.05 and noisy["status"] == "fail"
    small = next(g for g in C.calibration_gates(_frame(moco=(0.05, 0.06, 0.04), oracle=(0.12, 0.14, 0.11)))["gates"]
                 if g["gate"] == "d")
    assert small["p_value"] < 0.05 and small["effect_pp"] < 10 and small["status"] == "fail"


def test_missing_runs_never_pass_and_real_data_has_no_gates():
    gates = C.calibration_gates(_frame(oracle=None))
    assert _status(gates, "d") == "missing" and gates["overall"] == "missing"
    # on real data every gate reads a copy the data lacks: not available, never passed or failed
    gates = C.calibration_gates(_frame(oracle=None), ground_truth=False)
    assert {g["status"] for g in gates["gates"]} == {"not available"} and gates["overall"] == "not available"
    empty = C.calibration_gates(pd.DataFrame(columns=_frame().columns))
    assert {g["status"] for g in empty["gates"]} == {"missing"} and empty["overall"] == "missing"
    assert C.calibration_gates(_frame(motion=(0.1, 0.1, 0.1), oracle=None))["overall"] == "fail"


def test_minimum_detectable_effect_has_the_stated_power():
    # large n: the normal approximation (z_0.975 + z_0.8) * sd / sqrt(n)
    assert minimum_detectable_effect(2.0, 400) == pytest.approx((1.959964 + 0.841621) * 2.0 / 20, rel=0.01)
    # three seeds: a simulated paired t-test at that effect rejects 80% of the time
    mde = minimum_detectable_effect(1.0, 3)
    rng = np.random.default_rng(0)
    x = rng.normal(mde, 1.0, size=(40_000, 3))
    p = stats.ttest_1samp(x, 0.0, axis=1).pvalue
    assert abs((p < 0.05).mean() - 0.8) < 0.01
    assert math.isnan(minimum_detectable_effect(1.0, 1))


def test_the_mde_pools_every_runs_spread_against_moco():
    frame = pd.concat([_frame(), pd.DataFrame(_rows("moco+be", "linear", "swapped", (0.07, 0.06, 0.08)))])
    d1 = 100 * (np.array([0.25, 0.22, 0.30]) - np.array([0.05, 0.06, 0.04]))
    d2 = 100 * (np.array([0.07, 0.06, 0.08]) - np.array([0.05, 0.06, 0.04]))
    pooled = math.sqrt((d1.var(ddof=1) + d2.var(ddof=1)) / 2)
    gate = next(g for g in C.calibration_gates(frame)["gates"] if g["gate"] == "d")
    assert gate["mde_pp"] == pytest.approx(minimum_detectable_effect(pooled, 3))


def test_the_first_screen_shows_the_gates_and_a_red_banner_only_on_failure():
    from scenebias.report.build import calibration_section, leaderboard

    passing = calibration_section(C.calibration_gates(_frame()))
    failing = calibration_section(C.calibration_gates(_frame(motion=(0.1, 0.1, 0.1))))
    assert "fails a calibration gate" in failing and "fails a calibration gate" not in passing
    assert failing.index("fails a calibration gate") < failing.index("<h2>Calibration gates")
    assert "(a) motion is learnable" in passing and "10.0 ± 0.0" in failing
    raw = pd.DataFrame({"run": ["moco", "moco+oracle_mask", "moco+fame", "scene_shortcut"],
                        "role": ["method", "reference", "method", "calibration"],
                        "protocol": ["linear", "linear", "linear", "classifier"],
                        "swapped_mean": [0.05, 0.3, 0.1, 0.02], "swapped_ci95": [0.01] * 4,
                        "biased_mean": [0.9] * 4, "biased_ci95": [0.01] * 4,
                        "contrasted_mean": [0.01] * 4, "contrasted_ci95": [0.0] * 4, "seeds": [3] * 4})
    board = leaderboard(raw)
    assert list(board["run"]) == ["moco+oracle_mask (positive control)", "moco+fame", "moco (baseline)"]
    assert list(board["rank"]) == [1, 2, 3]
