"""The training loop resumes exactly: a run killed like `kill -9` and restarted ends with the same weights."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from torch.utils.data import Dataset
    from scenebias.models.backbones import build_backbone
    from scenebias.plugins import get_method
    from scenebias.train.loop import TrainConfig, train

    class Pairs(Dataset):
        def __init__(self): self.epoch = 0
        def set_epoch(self, e): self.epoch = e
        def __len__(self): return 24
        def __getitem__(self, i):
            g = torch.Generator().manual_seed(1000 * self.epoch + i)
            views = torch.rand(2, 3, 4, 16, 16, generator=g)
            return {"views": views, "clip": views[0], "label": i % 3, "index": i}

    torch.manual_seed(0)
    torch.set_num_threads(1)
    backbone = build_backbone("tiny3d", width=4)
    method, options = sys.argv[3], {"moco": {"queue_size": 16}, "supervised": {"dropout": 0.5}}[sys.argv[3]]
    fault = int(sys.argv[4])  # the test's fault injection: die like `kill -9` once this many steps are done
    after_step = (lambda step: os._exit(137) if step >= fault else None) if fault else None
    objective = get_method(method).build(backbone, 3, options)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=0.05, checkpoint_every=1)
    train(objective, Pairs(), cfg, sys.argv[1], seed=0, progress=False,
          augment_factory=lambda g: (lambda x: x + 0.01 * torch.randn(x.shape, generator=g)), after_step=after_step)
    torch.save(objective.state_dict(), sys.argv[2])
""")


def _run(tmp: Path, work: str, out: str, fault: int | None, method: str = "moco"):
    script = tmp / "train_script.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), str(tmp / work), str(tmp / out), method, str(fault or 0)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("method", ["moco", "supervised"])  # supervised: dropout draws from the global RNG
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, method):
    straight = _run(tmp_path, "work_a", "a.pt", None, method)
    assert straight.returncode == 0, straight.stderr
    # 3 steps per epoch: die at step 5 (mid epoch 2), after the epoch-1 checkpoint and before epoch 2's
    killed = _run(tmp_path, "work_b", "b.pt", 5, method)
    assert killed.returncode == 137
    assert (tmp_path / "work_b" / "checkpoint.pt").exists() and not (tmp_path / "b.pt").exists()
    resumed = _run(tmp_path, "work_b", "b.pt", None, method)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout + resumed.stderr
    a = torch.load(tmp_path / "a.pt")
    b = torch.load(tmp_path / "b.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log_a = (tmp_path / "work_a" / "train_log.jsonl").read_text().splitlines()
    log_b = (tmp_path / "work_b" / "train_log.jsonl").read_text().splitlines()
    assert len(log_a) == len(log_b) == 3


def test_checkpoint_of_another_setting_is_refused_not_resumed(tmp_path):
    """A checkpoint left by another training setting (here another lr) must not be resumed silently."""
    from scenebias.errors import ConfigError
    from scenebias.models.backbones import build_backbone
    from scenebias.plugins import get_method
    from scenebias.train.loop import TrainConfig, train

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            views = torch.rand(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(i))
            return {"views": views, "clip": views[0], "label": i % 3, "index": i}

    def run(lr):
        torch.manual_seed(0)
        objective = get_method("moco").build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16})
        train(objective, Pairs(), TrainConfig(epochs=1, batch_size=4, lr=lr), tmp_path / "work", seed=0,
              progress=False, augment_factory=lambda g: (lambda x: x))

    run(0.05)
    checkpoint = tmp_path / "work" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    with pytest.raises(ConfigError, match=r"checkpoint\.pt: this checkpoint belongs to another training setting.*lr"):
        run(0.1)
    assert checkpoint.read_bytes() == before  # untouched
    run(0.05)  # the same setting still resumes (already finished: nothing to do)
