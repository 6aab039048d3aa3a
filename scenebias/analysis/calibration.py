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

The fine-tuning sets beside the primary (config `data.evaluation_sets`: the HMDB51-like and Actor sets, the
Diving48-like set) pass gates of the same form after fine-tuning (`set_gates`), so that each set's claims are
decided on data that can decide them.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

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
# The fine-tuning sets beside the primary (data.evaluation_sets), fixed before any run like (a)-(d):
SET_SCENE_BIASED = 0.60  # a "scene" set spreads its per-class bias (BE Figure 4 needs it): the scene alone wins less
ORDER_MEAN, ORDER_EACH_SEED = 0.75, 0.65  # well above the 50% that both stages without their order allow
STATIC_ABOVE_CHANCE = 0.10

STATUSES = ("pass", "fail", "missing", "not available")


class Cell(NamedTuple):
    """Where a gate reads a run: its protocol, the downstream set (None: the primary one) and the test set."""
    protocol: str
    downstream: str | None
    test_set: str


def _seeds(df: pd.DataFrame, run: str, protocol: str, test_set: str, metric: str = "top1",
           downstream: str | None = None) -> pd.Series:
    """Per-seed values of one cell on `downstream`, or by default on the primary downstream set (the rows whose
    downstream is the most common one of the run's results: the preset's `data.downstream_flavour`)."""
    rows = df[(df["run"] == run) & (df["protocol"] == protocol) & (df["test_set"] == test_set)
              & (df["metric"] == metric)]
    if downstream is not None:
        rows = rows[rows["downstream"] == downstream]
    elif "downstream" in rows and rows["downstream"].nunique() > 1:
        rows = rows[rows["downstream"] == rows["downstream"].mode().iloc[0]]
    return rows.groupby("seed")["value"].mean().sort_index()


def _at(df: pd.DataFrame, run: str, cell: Cell) -> pd.Series:
    return _seeds(df, run, cell.protocol, cell.test_set, downstream=cell.downstream)


def _summary(values: pd.Series) -> dict[str, Any]:
    mean, ci, n = mean_ci(values)
    return {"mean": mean, "ci95": ci, "seeds": n, "per_seed": {int(k): float(v) for k, v in values.items()}}


TOLERANCE = 1e-9  # accuracies are ratios of counts: a mean exactly at a threshold must not fail on round-off


def _at_least(value: float, threshold: float) -> bool:
    return bool(value >= threshold - TOLERANCE)


def _status(ok: bool | None) -> str:
    return "missing" if ok is None else ("pass" if ok else "fail")


def _where(cell: Cell) -> str:
    """'linear swapped top-1', with ' on <downstream>' where the cell names one."""
    return f"{cell.protocol} {cell.test_set} top-1" + (f" on {cell.downstream}" if cell.downstream else "")


def motion_gate(df: pd.DataFrame, cell: Cell = Cell("classifier", None, "swapped"), mean: float = MOTION_MEAN,
                each_seed: float = MOTION_EACH_SEED, gate: str = "a", name: str = "motion is learnable"
                ) -> dict[str, Any]:
    """The motion row reaches `mean` top-1 on `cell`, and every seed `each_seed`."""
    values = _at(df, MOTION_RUN, cell)
    ok = None if values.empty else (_at_least(values.mean(), mean) and _at_least(values.min(), each_seed))
    return {"gate": gate, "name": name, "kind": "threshold", "status": _status(ok), "test_set": cell.test_set,
            "rule": f"{MOTION_RUN} {_where(cell)}: mean >= {mean:.0%}, every seed >= {each_seed:.0%}",
            "swapped": _summary(values)}


def scene_gate(df: pd.DataFrame, protocol: str = "classifier", downstream: str | None = None,
               biased_set: str = "biased", biased_at_least: float = SCENE_BIASED) -> dict[str, Any]:
    biased, swapped = (_seeds(df, SCENE_RUN, protocol, t, downstream=downstream) for t in (biased_set, "swapped"))
    ok = None if biased.empty or swapped.empty else (
        _at_least(biased.mean(), biased_at_least) and _at_least(SCENE_SWAPPED, swapped.mean()))
    where = f"{protocol}" + (f" on {downstream}" if downstream else "")
    return {"gate": "b", "name": "the scene is tempting", "kind": "scene", "status": _status(ok),
            "rule": f"{SCENE_RUN} {where} biased top-1 mean >= {biased_at_least:.0%} and swapped mean <= "
                    f"{SCENE_SWAPPED:.0%}",
            "biased": _summary(biased), "swapped": _summary(swapped)}


def shortcut_gate(df: pd.DataFrame, moco_cell: Cell = Cell("linear", None, "swapped"),
                  motion_cell: Cell = Cell("classifier", None, "swapped")) -> dict[str, Any]:
    moco, motion = _at(df, MOCO_RUN, moco_cell), _at(df, MOTION_RUN, motion_cell)
    gap = motion.mean() - moco.mean() if not (moco.empty or motion.empty) else math.nan
    ok = None if math.isnan(gap) else _at_least(gap, SHORTCUT_GAP)
    return {"gate": "c", "name": "MoCo takes the shortcut", "kind": "gap", "status": _status(ok),
            "rule": f"{MOCO_RUN} {_where(moco_cell)} at least {SHORTCUT_GAP * 100:.0f} pp below gate (a)'s mean",
            "moco_swapped": _summary(moco), "gap_pp": gap * 100}


def static_gate(df: pd.DataFrame, cell: Cell, chance: float) -> dict[str, Any]:
    """A static frame carries (almost) no class: the scene row stays within STATIC_ABOVE_CHANCE of chance."""
    values = _at(df, SCENE_RUN, cell)
    ceiling = chance + STATIC_ABOVE_CHANCE
    ok = None if values.empty else _at_least(ceiling, values.mean())
    return {"gate": "b", "name": "a static frame is near chance", "kind": "threshold", "status": _status(ok),
            "test_set": cell.test_set,
            "rule": f"{SCENE_RUN} {_where(cell)}: mean <= chance + {STATIC_ABOVE_CHANCE * 100:.0f} pp "
                    f"({ceiling:.1%})",
            "swapped": _summary(values)}


def paired_gate(df: pd.DataFrame, better: str, worse: str, cell: Cell, gate: str, name: str) -> dict[str, Any]:
    """`better` beats `worse` on `cell` by >= ORACLE_EFFECT: mean paired difference over seeds, paired t-test
    p < ALPHA (two-sided); fewer than two common seeds is "missing"."""
    rule = (f"{better} beats {worse} on {_where(cell)} by >= {ORACLE_EFFECT * 100:.0f} pp "
            f"(mean paired difference over seeds) with paired t-test p < {ALPHA}")
    gate_ = {"gate": gate, "name": name, "kind": "paired", "rule": rule, "better": better, "worse": worse,
             "test_set": cell.test_set}
    high, low = _at(df, better, cell), _at(df, worse, cell)
    common = high.index.intersection(low.index)
    diffs = (high[common] - low[common]).to_numpy(dtype=float) * 100
    if len(diffs) < 2:
        return gate_ | {"status": "missing", "oracle_swapped": _summary(high), "effect_pp": math.nan,
                        "p_value": math.nan, "seeds": len(diffs)}
    effect, p = float(diffs.mean()), two_sided_p(diffs)
    return gate_ | {"status": _status(_at_least(effect, ORACLE_EFFECT * 100) and p < ALPHA),
                    "oracle_swapped": _summary(high), "moco_swapped": _summary(low), "effect_pp": effect,
                    "effect_ci95_pp": mean_ci(diffs)[1], "p_value": p, "seeds": len(diffs)}


def power_gate(df: pd.DataFrame, ground_truth: bool = True, downstream: str | None = None) -> dict[str, Any]:
    cell = Cell("linear", downstream, "swapped")
    if not ground_truth:
        rule = paired_gate(pd.DataFrame(columns=df.columns), ORACLE_RUN, MOCO_RUN, cell, "d", "")["rule"]
        return {"gate": "d", "name": "the benchmark has power", "kind": "paired", "rule": rule,
                "mde_pp": minimum_detectable(df, downstream=downstream) * 100, "status": "not available",
                "detail": "the pretraining data is a real dataset: no ground-truth actor masks, no oracle"}
    return paired_gate(df, ORACLE_RUN, MOCO_RUN, cell, "d", "the benchmark has power") | {
        "mde_pp": minimum_detectable(df, downstream=downstream) * 100}


def minimum_detectable(df: pd.DataFrame, protocol: str = "linear", test_set: str = "swapped",
                       downstream: str | None = None) -> float:
    """MDE (fraction) of a paired test against MoCo at this seed count, from the pooled SD of every other run's
    per-seed difference to MoCo on `protocol`/`test_set` (NaN with fewer than two seeds or no other run)."""
    moco = _seeds(df, MOCO_RUN, protocol, test_set, downstream=downstream)
    runs = df[(df["protocol"] == protocol) & (df["run"] != MOCO_RUN)]["run"].unique()
    variances, weights, sizes = [], [], []
    for run in runs:
        other = _seeds(df, run, protocol, test_set, downstream=downstream)
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


def set_gate_evaluations(name: str, spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(run, downstream, protocol) of every evaluation the gates of the set `name` (a data.evaluation_sets entry)
    read: fine-tuning, like the set's own claims. A scene set without its generated copies has none."""
    if spec["gates"] == "scene" and not (spec.get("swapped") and spec.get("unbiased")):
        return []
    if spec["gates"] == "scene":
        return [(MOTION_RUN, spec["unbiased"], "finetune"), (SCENE_RUN, name, "finetune"),
                (MOCO_RUN, name, "finetune"), (ORACLE_RUN, name, "finetune")]
    return [(MOTION_RUN, name, "finetune"), (SCENE_RUN, name, "finetune"), (MOCO_RUN, name, "finetune")]


def set_gates(df: pd.DataFrame, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The gates of one fine-tuning set beside the primary, in the form of (a)-(d).

    "scene" sets (HMDB51-like, Actor): (a) the motion row fine-tuned on the set's unbiased copy reaches the primary's
    (a) thresholds on its scene-swapped copy; (b) the scene row fine-tuned on the set is right on >= SET_SCENE_BIASED
    of biased test videos and <= SCENE_SWAPPED of swapped ones; (c) MoCo fine-tuned on the set is SHORTCUT_GAP below
    (a) on swapped; (d) the oracle beats MoCo after fine-tuning on swapped, as the primary's (d).
    "order" sets (Diving48-like: classes are ordered pairs of stages): (a) the motion row fine-tuned reaches
    ORDER_MEAN (every seed ORDER_EACH_SEED); (b) the static scene row stays near chance; (c) the motion row beats
    MoCo as (d) does. Without the set's generated copies every gate is "not available"."""
    family = spec["gates"]
    if family == "scene" and not (spec.get("swapped") and spec.get("unbiased")):
        gates = [{"gate": g, "name": n, "status": "not available", "detail": NO_GROUND_TRUTH, "rule": ""}
                 for g, n in zip("abcd", ("motion is learnable", "the scene is tempting", "MoCo takes the shortcut",
                                          "the oracle beats MoCo"))]
    elif family == "scene":
        on_unbiased, swapped = Cell("finetune", spec["unbiased"], "swapped"), Cell("finetune", name, "swapped")
        gates = [motion_gate(df, on_unbiased), scene_gate(df, "finetune", name, "test", SET_SCENE_BIASED),
                 shortcut_gate(df, swapped, on_unbiased),
                 paired_gate(df, ORACLE_RUN, MOCO_RUN, swapped, "d", "the oracle beats MoCo")]
    else:
        test = Cell("finetune", name, "test")
        gates = [motion_gate(df, test, ORDER_MEAN, ORDER_EACH_SEED, "a", "the order of the stages is learnable"),
                 static_gate(df, test, 1.0 / spec["classes"]),
                 paired_gate(df, MOTION_RUN, MOCO_RUN, test, "c", "the motion row beats MoCo")]
    return {"family": family, "overall": _overall(gates), "gates": gates}


def _overall(gates: list[dict[str, Any]]) -> str:
    statuses = {g["status"] for g in gates if g["status"] != "not available"}
    return ("not available" if not statuses else
            "pass" if statuses == {"pass"} else ("fail" if "fail" in statuses else "missing"))


def gate_sets(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The planned config's data.evaluation_sets; an order set with its test split's class count (its static
    gate's chance), read from the split files where the data exists (the calibration rule, the report)."""
    from ..resolve import split  # reading datasets is resolve's; the gates themselves are pure

    return {name: {**spec, **({"classes": len(split(cfg, name, "test").class_names)} if spec["gates"] == "order"
                              else {})}
            for name, spec in (cfg["data"].get("evaluation_sets") or {}).items()}


def calibration_gates(df: pd.DataFrame, ground_truth: bool = True, sets: dict[str, dict[str, Any]] | None = None,
                      primary: str | None = None) -> dict[str, Any]:
    """Every gate of the metrics table `df` (scenebias.analysis.aggregate's columns) and an overall verdict:
    "pass" only when every available gate passes. `sets` (gate_sets): the fine-tuning sets beside the primary,
    each judged by its own gates ("sets"), so that a set that fails says its claims cannot be decided. `primary`:
    the primary downstream flavour (default: the most common downstream of each gate's rows)."""
    on_primary = Cell("classifier", primary, "swapped")
    gates = [motion_gate(df, on_primary), scene_gate(df, downstream=primary),
             shortcut_gate(df, Cell("linear", primary, "swapped"), on_primary), power_gate(df, ground_truth, primary)]
    if not ground_truth:  # every gate reads a generated copy (unbiased, scene-swapped) or the actor masks
        gates = [g | {"status": "not available", "detail": NO_GROUND_TRUTH}
                 for g in gates]
    return {"overall": _overall(gates), "gates": gates,
            "sets": {name: set_gates(df, name, spec) for name, spec in (sets or {}).items()},
            "note": "thresholds fixed before any run; a set that fails a gate cannot separate debiasing methods, "
                    "and the verdicts of its claims describe the data, not the methods"}
