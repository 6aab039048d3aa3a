"""scenebias.data.sources and the planning built on it: on real roots, what needs generated ground truth is
skipped with its reason, generated copies are not tested beside a real set, and no dataset is substituted
unless the user names the stand-in (`data.substitutes`)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from scenebias.analysis.calibration import calibration_gates
from scenebias.data.sources import is_generated, primary_ground_truth
from scenebias.errors import ConfigError
from scenebias.plan import load_config, plan
from scenebias.resolve import dataset_manifests
from scenebias.tables.plan import table_cells
from scenebias.tables.published import load_paper_tables
from scenebias.tables.render import caption_of
from scenebias.tables.plan import plan_table

ROOTS = {"ucf101": {"root": "/data/UCF101", "format": "ucf101"},
         "hmdb51": {"root": "/data/HMDB51", "format": "hmdb51"},
         "diving48": {"root": "/data/Diving48", "format": "diving48"}}


def _paper(**data):
    return load_config("paper", overrides={"data": {"real": ROOTS, **data}})


def test_generated_presets_keep_every_run_and_the_gates():
    cfg = load_config("smoke")
    assert cfg["skipped_runs"] == {}
    assert {"moco+oracle_mask", "motion_learnability", "scene_shortcut"} <= set(cfg["runs"])
    assert primary_ground_truth(cfg) and is_generated(cfg, "ucf101_swapped")


def test_real_roots_skip_the_runs_that_need_ground_truth_with_a_reason():
    cfg = _paper()
    assert not primary_ground_truth(cfg) and not is_generated(cfg, "ucf101")
    assert set(cfg["skipped_runs"]) == {"moco+oracle_mask", "motion_learnability", "scene_shortcut"}
    assert "actor masks" in cfg["skipped_runs"]["moco+oracle_mask"]
    assert "calibration" in cfg["skipped_runs"]["motion_learnability"]
    assert not set(cfg["skipped_runs"]) & set(cfg["runs"])
    assert {"moco", "moco+be", "moco+fame", "supervised"} <= set(cfg["runs"])


def test_planning_a_planned_real_config_again_keeps_the_skipped_runs():
    cfg = _paper()
    again = plan(cfg, "test")
    assert again["skipped_runs"] == cfg["skipped_runs"] and list(again["runs"]) == list(cfg["runs"])


def test_no_generated_copy_is_tested_beside_a_real_downstream_set():
    # config.yaml's test_sets has `swapped: ucf101_swapped`, and presets merge key by key
    cfg = load_config("default", overrides={"data": {"real": ROOTS}})
    assert cfg["data"]["test_sets"] == {"biased": "ucf101"}
    assert cfg["data"]["static_counterpart"] is None
    assert all(not is_generated(cfg, f) for f in dataset_manifests(cfg)), dataset_manifests(cfg)


def test_a_real_root_without_ground_truth_needs_keeps_generated_flavours_generated():
    """A real root that is not the primary set (here Diving48 only) leaves the generated gates in place."""
    cfg = load_config("smoke", overrides={"data": {"real": {"diving48": ROOTS["diving48"]}}})
    assert cfg["skipped_runs"] == {} and primary_ground_truth(cfg)
    assert cfg["data"]["test_sets"]["swapped"] == "ucf101_swapped"


def _kinetics_cells(cfg, table="be_figure4"):
    return [c for c in table_cells(cfg, load_paper_tables()[table])]


def test_a_dataset_without_a_root_is_not_substituted_behind_the_users_back():
    cells = _kinetics_cells(_paper())
    assert cells and all(c.run is None for c in cells)
    assert all("no kinetics400 root" in c.reason and "data.substitutes" in c.reason for c in cells)
    caption = caption_of(plan_table(_paper(), load_paper_tables()["be_figure4"]))
    assert "kinetics400 → not reproduced (no kinetics400 root" in caption


def test_a_named_substitute_is_used_and_the_caption_says_so():
    cfg = _paper(substitutes={"kinetics400": "ucf101"})
    cells = _kinetics_cells(cfg)
    assert all(c.run is not None and c.pretrain_flavour == "ucf101" for c in cells)
    caption = caption_of(plan_table(cfg, load_paper_tables()["be_figure4"]))
    assert "kinetics400 → stand-in real root ucf101 (data.substitutes)" in caption


def test_generated_presets_still_use_the_tables_stand_ins():
    cfg = load_config("smoke")
    cells = _kinetics_cells(cfg)
    assert all(c.run is not None and c.pretrain_flavour == "ucf101" for c in cells)
    assert "kinetics400 → generated ucf101" in caption_of(plan_table(cfg, load_paper_tables()["be_figure4"]))


def test_a_substitute_that_names_nothing_known_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"data\.substitutes\.kinetics400: 'k400_copy'"):
        _paper(substitutes={"kinetics400": "k400_copy"})


@pytest.mark.parametrize("sets, key", [
    ({"hmdb51": {"gates": "scene", "swapped": "hmdb51_swaped"}}, r"evaluation_sets\.hmdb51\.swapped: 'hmdb51_swaped'"),
    ({"hmdb_51": {"gates": "scene"}}, r"evaluation_sets\.hmdb_51: 'hmdb_51'"),
])
def test_an_evaluation_set_that_names_nothing_known_is_an_error_naming_the_key(sets, key):
    with pytest.raises(ConfigError, match=key):
        load_config("smoke", overrides={"data": {"evaluation_sets": sets}})


def test_without_ground_truth_every_gate_is_not_available_not_failed():
    empty = pd.DataFrame(columns=["run", "seed", "protocol", "test_set", "metric", "value", "downstream"])
    gates = calibration_gates(empty, ground_truth=False)
    assert gates["overall"] == "not available"
    assert [g["status"] for g in gates["gates"]] == ["not available"] * 4
    assert all("real datasets carry no ground truth" in g["detail"] for g in gates["gates"])
    generated = calibration_gates(empty, ground_truth=True)  # the same table on generated data: runs missing
    assert generated["overall"] == "missing" and math.isnan(generated["gates"][3]["mde_pp"])
