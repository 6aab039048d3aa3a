"""Tidy aggregation of metrics files, seed statistics, and the report tables."""
import json
import math

import pandas as pd
import pytest

from scenebias.analysis.aggregate import aggregate
from scenebias.analysis.stats import mean_ci
from scenebias.report.build import accuracy_table, retrieval_table


def _write(path, protocol, seed, results):
    path.write_text(json.dumps({"run": "moco", "method": "moco", "role": "method", "seed": seed,
                                "protocol": protocol, "test_sets": {"biased": "ucf101", "swapped": "ucf101_swapped"},
                                "results": results, "provenance": {"wall_time_s": 1.0}}))
    return path


def test_mean_ci_hand_computed():
    mean, half, n = mean_ci([1.0, 2.0, 3.0])
    # t(0.975, df=2) = 4.302653; sd = 1; half = 4.302653 / sqrt(3)
    assert (mean, n) == (2.0, 3)
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert math.isnan(mean_ci([0.5])[1])


def test_aggregate_names_test_sets_and_metrics(tmp_path):
    files = []
    for seed, (b, s) in enumerate([(0.9, 0.1), (0.8, 0.2), (0.85, 0.05)]):
        files.append(_write(tmp_path / f"lin{seed}.json", "linear", seed, {
            "biased": {"top1": b, "mean_class_acc": b, "correct": [1, 0]},
            "swapped": {"top1": s, "mean_class_acc": s}, "train_top1": 1.0}))
    files.append(_write(tmp_path / "ret.json", "retrieval", 0, {
        "centred": {"biased": {"R@1": 0.7}, "swapped": {"R@1": 0.2}},
        "plain": {"biased": {"R@1": 0.6}, "swapped": {"R@1": 0.1}}}))
    frame = aggregate(files, tmp_path / "metrics.csv")
    assert (tmp_path / "metrics.csv").exists()
    ret = frame[frame["protocol"] == "retrieval"].set_index(["test_set", "metric"])["value"]
    assert ret[("swapped", "centred/R@1")] == 0.2 and ret[("biased", "plain/R@1")] == 0.6
    shown, raw = accuracy_table(pd.read_csv(tmp_path / "metrics.csv"))
    row = raw[raw["protocol"] == "linear"].iloc[0]
    assert row["biased_mean"] == pytest.approx(0.85)
    assert row["gap_mean"] == pytest.approx(((0.8) + (0.6) + (0.8)) / 3)  # paired per seed
    assert row["seeds"] == 3
    wide = retrieval_table(pd.read_csv(tmp_path / "metrics.csv"))
    assert list(wide.columns) == ["run", "variant", "queries", "R@1"]
    assert wide.set_index(["variant", "queries"]).loc[("centred", "swapped"), "R@1"] == "20.0"
