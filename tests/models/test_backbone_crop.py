"""`clip.crop_size_by_backbone`: a run whose backbone the preset names there pretrains and is evaluated on clips of
that size (the paper preset: I3D at 224 px, as FAME's scripts), every other run at `clip.crop_size`; presets
that do not set it are left exactly as they were."""
from types import SimpleNamespace

import numpy as np
import pytest

from scenebias import runs, stages
from scenebias.data.formats import VideoRecord
from scenebias.data.video import write_video
from scenebias.errors import ConfigError
from scenebias.models.backbones import build_backbone
from scenebias.plan import load_config

I3D_RUN = "moco@backbone~i3d"  # a paper-table row on FAME's / BE's I3D (tables_backbones: paper)


@pytest.fixture(scope="module")
def paper_cfg():
    # one thread (the preset's 8 would change this process's torch thread count); no frame cache to look for
    return load_config("paper", overrides={"threads": 1, "data": {"frame_cache": False}})


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    """Two 12-frame 32-px videos, standing in for the real datasets the paper preset reads."""
    folder = tmp_path_factory.mktemp("videos")
    frames = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    records = [VideoRecord(write_video(folder / f"v{i}.avi", frames), i, f"v{i}") for i in range(2)]
    return SimpleNamespace(records=records, class_names=["a", "b"])


def test_the_crop_follows_the_runs_backbone_only_where_the_preset_names_it(paper_cfg):
    assert paper_cfg["clip"]["crop_size"] == 112 and paper_cfg["clip"]["crop_size_by_backbone"] == {"i3d": 224}
    assert runs.run_backbone(paper_cfg, I3D_RUN)["name"] == "i3d"
    assert runs.with_backbone_crop(paper_cfg, "i3d")["clip"]["crop_size"] == 224
    for backbone in ("r2plus1d_18", "c3d", "r3d_18"):
        assert runs.with_backbone_crop(paper_cfg, backbone) is paper_cfg
    assert paper_cfg["clip"]["crop_size"] == 112  # the preset's own section is never written
    for preset in ("default", "smoke"):  # no key appears, so no stage hash or provenance record changes
        cfg = load_config(preset)
        assert "crop_size_by_backbone" not in cfg["clip"]
        assert runs.with_backbone_crop(cfg, "i3d") is cfg


def test_a_misspelt_backbone_is_a_config_error():
    with pytest.raises(ConfigError, match="crop_size_by_backbone: unknown backbone 'I3D'"):
        load_config("smoke", overrides={"clip": {"crop_size_by_backbone": {"I3D": 224}}})


class _Built(Exception):
    """Stops a pipeline stage at its first dataset, which it carries."""


def _stop_at_first_dataset(monkeypatch, tiny_split):
    real = stages.clip_dataset

    def first_dataset(*args, **kwargs):
        raise _Built(real(*args, **kwargs))

    monkeypatch.setattr(stages, "clip_dataset", first_dataset)
    monkeypatch.setattr(stages, "split", lambda cfg, flavour, subset: tiny_split)
    # the wiring is under test, not the network: a tiny one stands in for I3D / R(2+1)D-18
    monkeypatch.setattr(stages, "build_backbone", lambda name, **options: build_backbone("tiny3d", width=4))


@pytest.mark.parametrize("run, crop", [(I3D_RUN, 224), ("moco", 112)])
def test_pretraining_clips_have_the_runs_crop(monkeypatch, tmp_path, paper_cfg, tiny_split, run, crop):
    _stop_at_first_dataset(monkeypatch, tiny_split)
    with pytest.raises(_Built) as built:
        stages.pretrain(paper_cfg, run, 0, tmp_path / "model.pt", tmp_path / "work", progress=False)
    dataset = built.value.args[0]
    assert dataset.mode == "pair" and dataset[0]["views"].shape[-2:] == (crop, crop)


@pytest.mark.parametrize("backbone, crop", [("i3d", 224), ("r2plus1d_18", 112)])
def test_evaluation_clips_have_the_trained_backbones_crop(monkeypatch, tmp_path, paper_cfg, tiny_split,
                                                          backbone, crop):
    _stop_at_first_dataset(monkeypatch, tiny_split)
    model = {"backbone_module": build_backbone("tiny3d", width=4), "backbone_name": backbone, "static": False}
    monkeypatch.setattr(stages, "load_model", lambda path: model)
    with pytest.raises(_Built) as built:
        stages.evaluate(paper_cfg, I3D_RUN, 0, "linear", tmp_path / "model.pt", tmp_path / "out.json",
                          progress=False)
    dataset = built.value.args[0]
    assert dataset.mode == "test" and dataset[0]["clips"].shape[-2:] == (crop, crop)
