"""Per-flavour data stage hashes (scenebias.resolve.data_stage): a job's params carry the data settings of the
flavours it reads and nothing else, so a new root, another flavour's settings or another choice of test sets does
not rerun it (tests/workflow/test_workflow_data_stage.py runs the same through Snakemake)."""
from __future__ import annotations

import copy

import pytest

from scenebias import resolve
from scenebias.plan import load_config, plan
from scenebias.provenance import SPEED_ONLY_KEYS

UCF = {"root": "/data/UCF101", "format": "ucf101"}
HMDB = {"root": "/data/HMDB51", "format": "hmdb51"}


@pytest.fixture(scope="module")
def smoke():
    return load_config("smoke")


@pytest.fixture(scope="module")
def real(smoke):
    """The smoke preset pretraining on a real ucf101 root, fine-tuned on the generated hmdb51 and its copies (a
    generated downstream set keeps its generated test sets, and one the tables read its evaluation set, through
    planning)."""
    return _with(smoke, lambda d: d.update(real={"ucf101": UCF}, substitutes={"hmdb51": "hmdb51"},
                                           downstream_flavour="hmdb51",
                                           test_sets={"biased": "hmdb51", "swapped": "hmdb51_swapped"},
                                           static_counterpart="hmdb51_static"))


def _with(cfg, edit):
    """A planned copy of `cfg` with `edit(data section)` applied."""
    cfg = copy.deepcopy(cfg)
    edit(cfg["data"])
    return plan(cfg, "test")


SPEED_ONLY_VALUES = {"frame_cache": False, "memory_cache_mb": 7, "workers": 5}

# what only says which sets are evaluated where, a root that flavour does not read, speed only
UNRELATED = {
    "test_sets": lambda d: d["test_sets"].update(unbiased="hmdb51_unbiased"),
    "evaluation_sets": lambda d: d["evaluation_sets"].update(
        hmdb51={"gates": "scene", "swapped": "hmdb51_swapped", "unbiased": "hmdb51_unbiased"}),
    "evaluation_sets_removed": lambda d: d.update(evaluation_sets={}),
    "static_counterpart": lambda d: d.update(static_counterpart=None),
    "downstream_flavour": lambda d: d.update(downstream_flavour="diving48"),
    "second_real_root": lambda d: d.setdefault("real", {}).update(diving48={"root": "/data/Diving48",
                                                                            "format": "diving48"}),
    **{f"speed_only:{key}": (lambda d, key=key: d.update({key: SPEED_ONLY_VALUES[key]}))
       for key in SPEED_ONLY_KEYS["data"]},
}


@pytest.mark.parametrize("change", sorted(UNRELATED))
@pytest.mark.parametrize("which", ["generated", "real"])
def test_a_flavours_stage_ignores_what_it_does_not_read(smoke, real, which, change):
    cfg = smoke if which == "generated" else real
    changed = _with(cfg, UNRELATED[change])
    assert changed["data"] != cfg["data"]
    assert resolve.data_stage(changed, ["ucf101"]) == resolve.data_stage(cfg, ["ucf101"])


def test_every_speed_only_key_is_tried(smoke):
    assert set(SPEED_ONLY_KEYS["data"]) == set(SPEED_ONLY_VALUES)
    assert all(smoke["data"][key] != value for key, value in SPEED_ONLY_VALUES.items())


OWN = {
    "root": lambda d: d["real"]["ucf101"].update(root="/elsewhere/UCF101"),
    "split": lambda d: d["real"]["ucf101"].update(split=2),
    "short_side": lambda d: d.update(frames={"short_side": 48}),
    "storage": lambda d: d.update(frames={"storage": "jpeg"}),
    "on_missing": lambda d: d.update(on_missing="skip"),
    "checksum": lambda d: d.update(manifest={"checksum": "size"}),
}


@pytest.mark.parametrize("change", sorted(OWN))
def test_a_real_flavours_stage_follows_its_own_settings(real, change):
    assert resolve.data_stage(_with(real, OWN[change]), ["ucf101"]) != resolve.data_stage(real, ["ucf101"])


def test_a_real_flavours_stage_ignores_the_generator(real):
    changed = _with(real, lambda d: d["generator"].update(scene_families=6))
    assert resolve.data_stage(changed, ["ucf101"]) == resolve.data_stage(real, ["ucf101"])
    # and another root's settings
    both = _with(real, lambda d: d["real"].update(hmdb51=HMDB))
    moved = _with(both, lambda d: d["real"]["hmdb51"].update(root="/elsewhere/HMDB51"))
    assert resolve.data_stage(moved, ["ucf101"]) == resolve.data_stage(both, ["ucf101"])
    assert resolve.data_stage(moved, ["hmdb51"]) != resolve.data_stage(both, ["hmdb51"])


@pytest.mark.parametrize("change", ["generator", "short_side"])
def test_a_generated_flavours_stage_follows_the_generator_and_the_frames(smoke, change):
    edit = {"generator": lambda d: d["generator"].update(scene_families=6),
            "short_side": lambda d: d.update(frames={"short_side": 48})}[change]
    assert resolve.data_stage(_with(smoke, edit), ["ucf101"]) != resolve.data_stage(smoke, ["ucf101"])


def test_a_generated_flavours_stage_ignores_the_real_roots_policy(smoke):
    """`on_missing` and the manifest options concern real roots only."""
    changed = _with(smoke, lambda d: d.update(on_missing="skip", manifest={"checksum": "size"}))
    assert resolve.data_stage(changed, ["ucf101"]) == resolve.data_stage(smoke, ["ucf101"])


def test_the_stage_names_its_flavours(smoke):
    """Two generated flavours share their settings: the hash still tells which ones a job reads."""
    assert resolve.data_stage(smoke, ["ucf101"]) != resolve.data_stage(smoke, ["hmdb51"])
    assert resolve.data_stage(smoke, ["ucf101", "hmdb51"]) == resolve.data_stage(smoke, ["hmdb51", "ucf101", "ucf101"])


def test_generation_and_a_roots_manifest_depend_on_their_own_settings_only(real):
    frames = _with(real, lambda d: d.update(frames={"short_side": 48}, on_missing="skip"))
    assert resolve.generator_stage(frames) == resolve.generator_stage(real)  # generation ignores the frames
    assert resolve.real_manifest_stage(frames, "ucf101") == resolve.real_manifest_stage(real, "ucf101")
    other = _with(real, lambda d: d["real"].update(hmdb51=HMDB))
    assert resolve.real_manifest_stage(other, "ucf101") == resolve.real_manifest_stage(real, "ucf101")
    assert resolve.generator_stage(_with(real, lambda d: d["generator"].update(scene_families=6))) != \
        resolve.generator_stage(real)
    assert resolve.real_manifest_stage(_with(real, OWN["checksum"]), "ucf101") != \
        resolve.real_manifest_stage(real, "ucf101")


def test_the_actor_roots_stage_follows_the_crops_settings(smoke, tmp_path):
    out = str(tmp_path / "actor")
    cfg = _with(smoke, lambda d: d.update(real={"hmdb51": HMDB, "actor_hmdb51": {"root": out, "format": "hmdb51"}},
                                          actor={"boxes": "/data/boxes.csv", "out": out}))
    smoothed = _with(cfg, lambda d: d["actor"].update(smooth=1))
    assert resolve.data_stage(smoothed, ["actor_hmdb51"]) != resolve.data_stage(cfg, ["actor_hmdb51"])
    assert resolve.real_manifest_stage(smoothed, "actor_hmdb51") != resolve.real_manifest_stage(cfg, "actor_hmdb51")
    assert resolve.data_stage(smoothed, ["hmdb51"]) == resolve.data_stage(cfg, ["hmdb51"])  # the source root
