"""Bad input through the real pipeline: a clear error naming the file, and no half-written output."""
import re
import shutil

import pytest

from scenebias.errors import ConfigError, DataError
from scenebias import stages
from scenebias.stages import evaluate, pretrain
from scenebias.plan import load_config


@pytest.fixture()
def workspace(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    cfg = load_config("smoke", overrides={"paths": {"data": str(data), "results": str(tmp_path / "results")},
                                          "evaluate": {"test_clips": 1, "linear": {"epochs": 1}}})
    model = tmp_path / "results/model.pt"
    pretrain(cfg, "random_init", 0, model, tmp_path / "work", progress=False)
    return cfg, data, model, tmp_path


def test_corrupt_test_video_names_file_and_writes_nothing(workspace):
    cfg, data, model, tmp = workspace
    victim = sorted((data / "ucf101_swapped" / "UCF101").rglob("*.avi"))[0]
    victim.write_bytes(b"\x00garbage, not an H.264 stream" * 10)
    out = tmp / "results/eval/linear.json"
    with pytest.raises(DataError, match=victim.name):
        evaluate(cfg, "random_init", 0, "linear", model, out, progress=False)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary leftovers either


def test_split_file_naming_missing_video(workspace):
    cfg, data, model, tmp = workspace
    victim = sorted((data / "ucf101" / "UCF101").rglob("*.avi"))[-1]
    victim.unlink()
    with pytest.raises(DataError, match=rf"trainlist01\.txt:\d+: video .*{victim.name} not found"):
        pretrain(cfg, "moco", 0, tmp / "results/moco.pt", tmp / "work_moco", progress=False)
    assert not (tmp / "results/moco.pt").exists()


def test_unknown_run_and_protocol(workspace):
    cfg, data, model, tmp = workspace
    with pytest.raises(ConfigError, match="no_such_run"):
        pretrain(cfg, "no_such_run", 0, tmp / "x.pt", tmp / "w", progress=False)
    with pytest.raises(ConfigError, match="telepathy"):
        evaluate(cfg, "random_init", 0, "telepathy", model, tmp / "x.json", progress=False)


def test_classifier_protocol_needs_a_head(workspace):
    cfg, data, model, tmp = workspace
    with pytest.raises(ConfigError, match="classifier head"):
        evaluate(cfg, "random_init", 0, "classifier", model, tmp / "x.json", progress=False)


@pytest.mark.parametrize("overrides, run, where", [
    ({"pretrain": {"precision": "bf16"}}, "moco", "pretrain.precision"),
    ({"runs": {"moco": {"pretrain": {"precision": "bf16"}}}}, "moco", "runs.moco.pretrain.precision"),
])
def test_bf16_on_a_cpu_is_refused_before_training_naming_the_key(workspace, overrides, run, where, monkeypatch):
    """PyTorch's CPU bf16 conv3d gets weight gradients wrong for 2-frame inputs: the config asking for it on a
    CPU is bad input, refused before any step, and nothing is written."""
    cfg, data, model, tmp = workspace
    bad = load_config("smoke", overrides={"paths": cfg["paths"], "device": "auto", **overrides})
    monkeypatch.setattr(stages, "resolve_device", lambda cfg: "cpu")  # "auto" on a machine without a GPU
    out = tmp / "results/bf16.pt"
    with pytest.raises(ConfigError, match="^" + re.escape(f"{where}: 'bf16' on a CPU")):
        pretrain(bad, run, 0, out, tmp / "work_bf16", progress=False)
    assert not out.exists() and not (tmp / "work_bf16").exists()


def test_bf16_finetuning_on_a_cpu_is_refused_naming_the_key(workspace, monkeypatch):
    cfg, data, model, tmp = workspace
    monkeypatch.setattr(stages, "resolve_device", lambda cfg: "cpu")
    bad = load_config("smoke", overrides={"paths": cfg["paths"], "device": "auto",
                                          "evaluate": {"finetune": {"precision": "bf16"}}})
    out = tmp / "results/eval/finetune.json"
    with pytest.raises(ConfigError, match=r"^evaluate\.finetune\.precision: 'bf16' on a CPU"):
        evaluate(bad, "random_init", 0, "finetune", model, out, progress=False)
    assert not out.exists()
    # the other protocols do not read the setting
    evaluate(bad, "random_init", 0, "linear", model, tmp / "results/eval/linear.json", progress=False)


@pytest.mark.parametrize("overrides, where", [
    ({"pretrain": {"precision": "bf16"}}, "pretrain.precision"),
    ({"evaluate": {"finetune": {"precision": "bf16"}}}, "evaluate.finetune.precision"),
    ({"runs": {"moco": {"pretrain": {"precision": "bf16"}}}}, "runs.moco.pretrain.precision"),
])
def test_bf16_with_device_cpu_is_refused_when_the_config_is_loaded(overrides, where):
    """`device: cpu` is known before any job: the workflow refuses the config at its start, naming the key."""
    with pytest.raises(ConfigError, match=re.escape(f"{where}: 'bf16' on a CPU")):
        load_config("smoke", overrides={"device": "cpu", **overrides})
    # with device auto the machine that runs the job decides: the stages refuse it there (tests above)
    assert load_config("smoke", overrides={"device": "auto", **overrides})["device"] == "auto"
