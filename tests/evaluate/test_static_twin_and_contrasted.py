"""The static twin of the scene-swapped test set and the contrasted accuracy, from the evaluation to the report's
table: `stages.evaluate` adds a `swapped_static` test set (the `data.static_counterpart` flavour, static clips) when
the config names one, the contrasted accuracy counts videos right on the swapped clip AND wrong on its static twin
(not the other way round), the aggregation reads `swapped_static` as a test set, and the accuracy table's static-twin
and contrasted columns are the mean ± 95% CI over seeds of those numbers.

The evaluation's heavy parts (model file, videos, the probe) are replaced by fakes: the fakes record which datasets
the evaluation built and answer with fixed per-video correctness, so every number here is computed by hand."""
from __future__ import annotations

import copy
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenebias import stages
from scenebias.evaluate.registry import protocols
from scenebias.analysis.aggregate import aggregate, rows_of
from scenebias.plan import load_config
from scenebias.report.build import accuracy_table

# per-video correctness the fake probe returns, by (flavour, static clips?)
SWAPPED = [1, 1, 0, 1, 0, 1, 1, 0]
TWIN = [0, 1, 0, 0, 1, 1, 0, 0]
BIASED = [1, 1, 1, 1, 1, 0, 1, 1]


def _contrasted_by_hand(on_clip, on_twin) -> float:
    return sum(1 for a, b in zip(on_clip, on_twin) if a and not b) / len(on_clip)


@pytest.fixture(scope="module")
def smoke_cfg():
    return load_config("smoke")


@pytest.fixture
def fake_evaluation(monkeypatch):
    """stages.evaluate with the model, the splits, the clip datasets and the linear probe faked; returns the list
    of test-set dicts each evaluation built."""
    built: list[dict] = []

    def fake_split(cfg, flavour, subset):
        return SimpleNamespace(records=[f"{flavour}:{subset}"], class_names=["a", "b", "c"])

    def fake_clip_dataset(cfg, records, mode, seed, static=False, clip_len_factor=1, flavour=None, actor_masks=False):
        return {"flavour": flavour, "static": static, "mode": mode, "records": records}

    def fake_probe(e):
        built.append(dict(e.test_sets))
        answers = {("ucf101", False): BIASED, ("ucf101_swapped", False): SWAPPED, ("ucf101_static", True): TWIN}
        out = {}
        for name, ds in e.test_sets.items():
            correct = answers[(ds["flavour"], ds["static"])]  # KeyError: a set built from the wrong data
            out[name] = {"top1": sum(correct) / len(correct), "correct": list(correct)}
        return out

    monkeypatch.setattr(stages, "load_model", lambda path: {"backbone_name": "tiny3d", "static": False,
                                                            "meta": {"provenance": {}}, "backbone_module": None})
    monkeypatch.setattr(stages, "split", fake_split)
    monkeypatch.setattr(stages, "clip_dataset", fake_clip_dataset)
    monkeypatch.setattr(stages, "provenance", lambda **kw: {"wall_time_s": 1.0})
    monkeypatch.setattr(protocols().get("linear"), "evaluate", fake_probe)
    return built


def _evaluate(cfg, tmp_path, seed=0):
    out = tmp_path / f"metrics_{seed}.json"
    stages.evaluate(cfg, "moco", seed, "linear", tmp_path / "model.pt", out, progress=False)
    return out


def test_evaluate_adds_the_static_twin_of_the_swapped_set(smoke_cfg, fake_evaluation, tmp_path):
    cfg = copy.deepcopy(smoke_cfg)
    assert cfg["data"]["static_counterpart"] == "ucf101_static"
    out = _evaluate(cfg, tmp_path)
    sets = fake_evaluation[-1]
    assert set(sets) == {"biased", "swapped", "swapped_static"}
    twin = sets["swapped_static"]
    assert twin["flavour"] == "ucf101_static" and twin["static"] is True and twin["mode"] == "test"
    assert twin["records"] == ["ucf101_static:test"]
    assert sets["swapped"]["flavour"] == "ucf101_swapped" and sets["swapped"]["static"] is False
    record = json.loads(out.read_text())
    assert record["results"]["swapped_static"]["top1"] == pytest.approx(sum(TWIN) / len(TWIN))
    # without a static counterpart there is no twin and no contrasted accuracy
    cfg["data"]["static_counterpart"] = None
    record = json.loads(_evaluate(cfg, tmp_path, seed=1).read_text())
    assert set(fake_evaluation[-1]) == {"biased", "swapped"}
    assert "contrasted_acc" not in record["results"]["swapped"]


def test_contrasted_accuracy_is_right_on_the_swapped_clip_and_wrong_on_its_twin(smoke_cfg, fake_evaluation, tmp_path):
    record = json.loads(_evaluate(copy.deepcopy(smoke_cfg), tmp_path).read_text())
    expected = _contrasted_by_hand(SWAPPED, TWIN)
    # videos 0, 3, 6 are right on the swapped clip and wrong on the twin; only video 4 is the other way round
    assert expected == pytest.approx(3 / 8)
    assert _contrasted_by_hand(TWIN, SWAPPED) == pytest.approx(1 / 8)
    assert record["results"]["swapped"]["contrasted_acc"] == pytest.approx(expected)
    assert "contrasted_acc" not in record["results"]["biased"]


def test_aggregation_reads_the_static_twin_as_a_test_set(smoke_cfg, fake_evaluation, tmp_path):
    path = _evaluate(copy.deepcopy(smoke_cfg), tmp_path)
    record = json.loads(path.read_text())
    assert "swapped_static" not in record["test_sets"]  # the record's test sets are the configured ones
    rows = pd.DataFrame(rows_of(path)).set_index(["test_set", "metric"])["value"]
    assert rows[("swapped_static", "top1")] == pytest.approx(sum(TWIN) / len(TWIN))
    assert rows[("swapped", "contrasted_acc")] == pytest.approx(_contrasted_by_hand(SWAPPED, TWIN))
    assert rows[("swapped", "top1")] == pytest.approx(sum(SWAPPED) / len(SWAPPED))
    assert not any(str(metric).startswith("swapped_static") for _, metric in rows.index)


def _ci_text(values) -> str:
    x = 100 * np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return f"{x.mean():.1f} ± {half:.1f}"


def test_accuracy_table_shows_the_static_twin_and_contrasted_columns_over_seeds(tmp_path):
    twin, contrasted, swapped = [0.30, 0.45, 0.35], [0.20, 0.10, 0.25], [0.50, 0.55, 0.40]
    files = []
    for seed in range(3):
        path = tmp_path / f"m{seed}.json"
        path.write_text(json.dumps({
            "run": "moco", "method": "moco", "role": "method", "seed": seed, "protocol": "linear",
            "test_sets": {"biased": "ucf101", "swapped": "ucf101_swapped"},
            "results": {"biased": {"top1": 0.9}, "swapped": {"top1": swapped[seed], "contrasted_acc": contrasted[seed]},
                        "swapped_static": {"top1": twin[seed]}}}))
        files.append(path)
    shown, raw = accuracy_table(aggregate(files, tmp_path / "metrics.csv"))
    row = shown.iloc[0]
    assert row["static twin top-1 %"] == _ci_text(twin)
    assert row["contrasted %"] == _ci_text(contrasted)
    assert row["swapped top-1 %"] == _ci_text(swapped)
    assert raw.iloc[0]["static_twin_mean"] == pytest.approx(np.mean(twin))
    assert raw.iloc[0]["contrasted_mean"] == pytest.approx(np.mean(contrasted))
