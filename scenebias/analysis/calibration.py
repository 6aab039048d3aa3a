"""Calibration gates: does this preset's benchmark have the power to measure a debiasing method?

Four gates, computed from the tidy metrics table of every preset (scene-swapped top-1 is "swapped"):

(a) motion is learnable   `motion_learnability` (supervised on the unbiased copy, its own classifier):
                          swapped top-1 mean >= 80% and every seed >= 70%;
(b) the scene is tempting `scene_shortcut` (static-frame classifier): biased top-1 mean >= 85% and swapped
                          mean <= 25%;
(c) MoCo takes the shortcut  MoCo's linear-probe swapped top-1 mean at least 30 pp below (a)'s mean;
(d) the benchmark has power  the positive control `moco+oracle_mask` (FAME's merge with the ground-truth actor
                          mask) beats MoCo on swapped linear-probe top-1 by >= 10 pp: mean paired difference over
                          seeds >= 10 pp and the paired t-test against no difference p < 0.05 (two-sided, the
                          claims' test). Real datasets have no ground truth: (d) is "not available" there.

Beside (d): the minimum detectable effect (MDE) of the paired test at this seed count (α 0.05 two-sided, power
0.8), from the pooled spread of every method's per-seed difference to MoCo on the same cell. A gate that lacks
its runs or seeds is "missing", never passed. The thresholds were fixed before any run (docs/calibration-study.md).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..data.sources import NO_GROUND_TRUTH
from .stats import mean_ci, minimum_detectable_effect, two_sided_p

MOTION_RUN, SCENE_RUN, MOCO_RUN, ORACLE_RUN = "motion_learnability", "scene_shortcut", "moco", "moco+oracle_mask"
GATE_EVALUATIONS = ((MOTION_RUN, "classifier"), (SCENE_RUN, "classifier"), (MOCO_RUN, "linear"),
                    (ORACLE_RUN, "linear"))  # (run, protocol) each gate reads, on the primary downstream set
MOTION_MEAN, MOTION_EACH_SEED = 0.80, 0.70
SCENE_BIASED, SCENE_SWAPPED = 0.85, 0.25
SHORTCUT_GAP = 0.30
ORACLE_EFFECT, ALPHA, POWER = 0.10, 0.05, 0.8

STATUSES = ("pass", "fail", "missing", "not available")


def _seeds(df: pd.DataFrame, run: str, protocol: str, test_set: str, metric: str = "top1") -> pd.Series:
    """Per-seed values of one cell on the primary downstream set (the rows whose downstream is the most common
    one of the run's classifier/linear results: the preset's `data.downstream_flavour`)."""
    rows = df[(df["run"] == run) & (df["protocol"] == protocol) & (df["test_set"] == test_set)
              & (df["metric"] == metric)]
    if "downstream" in rows and rows["downstream"].nunique() > 1:
        rows = rows[rows["downstream"] == rows["downstream"].mode().iloc[0]]
    return rows.groupby("seed")["value"].mean().sort_index()


def _summary(values: pd.Series) -> dict[str, Any]:
    mean, ci, n = mean_ci(values)
    return {"mean": mean, "ci95": ci, "seeds": n, "per_seed": {int(k): float(v) for k, v in values.items()}}


TOLERANCE = 1e-9  # accuracies are ratios of counts: a mean exactly at a threshold must not fail on round-off


def _at_least(value: float, threshold: float) -> bool:
    return bool(value >= threshold - TOLERANCE)


def _status(ok: bool | None) -> str:
    return "missing" if ok is None else ("pass" if ok else "fail")


def motion_gate(df: pd.DataFrame) -> dict[str, Any]:
    swapped = _seeds(df, MOTION_RUN, "classifier", "swapped")
    ok = None if swapped.empty else (_at_least(swapped.mean(), MOTION_MEAN) and _at_least(swapped.min(), MOTION_EACH_SEED))
    return {"gate": "a", "name": "motion is learnable", "status": _status(ok),
            "rule": f"{MOTION_RUN} swapped top-1 mean >= {MOTION_MEAN:.0%}, every seed >= {MOTION_EACH_SEED:.0%}",
            "swapped": _summary(swapped)}


def scene_gate(df: pd.DataFrame) -> dict[str, Any]:
    biased, swapped = (_seeds(df, SCENE_RUN, "classifier", t) for t in ("biased", "swapped"))
    ok = None if biased.empty or swapped.empty else (
        _at_least(biased.mean(), SCENE_BIASED) and _at_least(SCENE_SWAPPED, swapped.mean()))
    return {"gate": "b", "name": "the scene is tempting", "status": _status(ok),
            "rule": f"{SCENE_RUN} biased top-1 mean >= {SCENE_BIASED:.0%} and swapped mean <= {SCENE_SWAPPED:.0%}",
            "biased": _summary(biased), "swapped": _summary(swapped)}


def shortcut_gate(df: pd.DataFrame) -> dict[str, Any]:
    moco, motion = _seeds(df, MOCO_RUN, "linear", "swapped"), _seeds(df, MOTION_RUN, "classifier", "swapped")
    gap = motion.mean() - moco.mean() if not (moco.empty or motion.empty) else math.nan
    ok = None if math.isnan(gap) else _at_least(gap, SHORTCUT_GAP)
    return {"gate": "c", "name": "MoCo takes the shortcut", "status": _status(ok),
            "rule": f"{MOCO_RUN} linear swapped top-1 at least {SHORTCUT_GAP * 100:.0f} pp below gate (a)'s mean",
            "moco_swapped": _summary(moco), "gap_pp": gap * 100}


def power_gate(df: pd.DataFrame, ground_truth: bool = True) -> dict[str, Any]:
    rule = (f"{ORACLE_RUN} beats {MOCO_RUN} on linear swapped top-1 by >= {ORACLE_EFFECT * 100:.0f} pp "
            f"(mean paired difference over seeds) with paired t-test p < {ALPHA}")
    gate = {"gate": "d", "name": "the benchmark has power", "rule": rule, "mde_pp": minimum_detectable(df) * 100}
    if not ground_truth:
        return gate | {"status": "not available",
                       "detail": "the pretraining data is a real dataset: no ground-truth actor masks, no oracle"}
    oracle, moco = _seeds(df, ORACLE_RUN, "linear", "swapped"), _seeds(df, MOCO_RUN, "linear", "swapped")
    common = oracle.index.intersection(moco.index)
    diffs = (oracle[common] - moco[common]).to_numpy(dtype=float) * 100
    if len(diffs) < 2:
        return gate | {"status": "missing", "oracle_swapped": _summary(oracle), "effect_pp": math.nan,
                       "p_value": math.nan, "seeds": len(diffs)}
    effect, p = float(diffs.mean()), two_sided_p(diffs)
    return gate | {"status": _status(_at_least(effect, ORACLE_EFFECT * 100) and p < ALPHA),
                   "oracle_swapped": _summary(oracle), "moco_swapped": _summary(moco), "effect_pp": effect,
                   "effect_ci95_pp": mean_ci(diffs)[1], "p_value": p, "seeds": len(diffs)}


def minimum_detectable(df: pd.DataFrame, protocol: str = "linear", test_set: str = "swapped") -> float:
    """MDE (fraction) of a paired test against MoCo at this seed count, from the pooled SD of every other run's
    per-seed difference to MoCo on `protocol`/`test_set` (NaN with fewer than two seeds or no other run)."""
    moco = _seeds(df, MOCO_RUN, protocol, test_set)
    runs = df[(df["protocol"] == protocol) & (df["run"] != MOCO_RUN)]["run"].unique()
    variances, weights, sizes = [], [], []
    for run in runs:
        other = _seeds(df, run, protocol, test_set)
        common = other.index.intersection(moco.index)
        if len(common) >= 2:
            d = (other[common] - moco[common]).to_numpy(dtype=float)
            variances.append(d.var(ddof=1))
            weights.append(len(d) - 1)
            sizes.append(len(d))
    if not variances:
        return math.nan
    pooled_sd = math.sqrt(float(np.average(variances, weights=weights)))
    return minimum_detectable_effect(pooled_sd, int(np.median(sizes)), ALPHA, POWER)


def calibration_gates(df: pd.DataFrame, ground_truth: bool = True) -> dict[str, Any]:
    """Every gate of the metrics table `df` (scenebias.analysis.aggregate's columns) and an overall verdict:
    "pass" only when every available gate passes."""
    gates = [motion_gate(df), scene_gate(df), shortcut_gate(df), power_gate(df, ground_truth)]
    if not ground_truth:  # every gate reads a generated copy (unbiased, scene-swapped) or the actor masks
        gates = [g | {"status": "not available", "detail": NO_GROUND_TRUTH}
                 for g in gates]
    statuses = {g["status"] for g in gates if g["status"] != "not available"}
    overall = ("not available" if not statuses else
               "pass" if statuses == {"pass"} else ("fail" if "fail" in statuses else "missing"))
    return {"overall": overall, "gates": gates,
            "note": "thresholds fixed before any run; a preset that fails a gate cannot separate "
                    "debiasing methods, and its claim verdicts describe the data, not the methods"}
