"""docs/extending.md's examples, run as printed: a protocol registered where it is defined runs on the inputs
`stages.evaluate` prepares, and a split format registered where it is defined is read by `read_split` (and its
missing videos are errors naming the split file and line)."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import Dataset

from scenebias.data import formats
from scenebias.data.formats import common as formats_common
from scenebias.errors import DataError
from scenebias.evaluate import registry
from scenebias.models.backbones import build_backbone

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def _example(first_line: str) -> str:
    """The doc's Python code block that starts with `first_line`."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return next(b for b in blocks if b.startswith(first_line))


class Videos(Dataset):
    """Test-mode items of 3 classes told apart by brightness, each video a little different."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        clips = (0.1 + 0.35 * (i % 3) + 0.2 * torch.rand(2, 3, 4, 16, 16, generator=g)).clamp(0, 1)
        return {"clips": clips, "label": i % 3, "index": i}


def test_the_protocol_example_registers_itself_and_runs(monkeypatch):
    built_in = registry.protocols()  # every built-in protocol registered first, then the example into a copy
    monkeypatch.setattr(built_in, "_entries", dict(built_in._entries))
    namespace: dict = {}
    exec(compile(_example('"""k-nearest-neighbour'), "docs/extending.md", "exec"), namespace)
    assert "knn" in registry.protocols() and registry.protocols().get("knn").config is namespace["KnnConfig"]
    videos = Videos(12)
    monkeypatch.setattr(registry, "clip_dataset", lambda cfg, records, mode, *a, **k: videos)
    torch.manual_seed(0)
    model = {"backbone_module": build_backbone("tiny3d", width=4), "static": False}
    split = SimpleNamespace(class_names=["a", "b", "c"], records=[])
    inputs = registry.EvaluationInputs({"evaluate": {"batch_size": 4, "knn": {"k": 1}}}, "moco", {}, 0, model,
                                       "cpu", "ucf101", split, {"test": videos}, "softmax")
    results = registry.protocols().get("knn").evaluate(inputs)
    # the gallery is the test set itself: with k = 1 every video's nearest neighbour is itself
    assert results["test"]["top1"] == 1.0 and results["test"]["n"] == 12


def test_the_format_example_registers_itself_and_reads_a_root(monkeypatch, tmp_path):
    monkeypatch.setattr(formats_common.SPLIT_FORMATS, "_entries", dict(formats_common.SPLIT_FORMATS._entries))
    exec(compile(_example('"""A CSV split format'), "docs/extending.md", "exec"), {})
    (tmp_path / "videos" / "jump").mkdir(parents=True)
    for name in ("jump/a.mp4", "jump/b.mp4"):
        (tmp_path / "videos" / name).write_bytes(b"")
    (tmp_path / "train.csv").write_text("jump/a.mp4,jump\njump/b.mp4,jump\n", encoding="utf-8")
    (tmp_path / "test.csv").write_text("jump/a.mp4,jump\nrun/c.mp4,run\n", encoding="utf-8")
    index = formats.read_split("csv_list", tmp_path, "train")
    assert [r.video_id for r in index.records] == ["a", "b"] and index.class_names == ["jump"]
    with pytest.raises(DataError, match=r"test\.csv:2: .*run/c\.mp4 not found"):
        formats.read_split("csv_list", tmp_path, "test")
    kept = formats.read_split("csv_list", tmp_path, "test", on_missing="skip")
    assert len(kept.records) == 1 and kept.skipped[0].line == 2 and kept.class_names == ["jump", "run"]
    with pytest.raises(DataError, match="CSV list layout"):
        formats.check_layout("csv_list", tmp_path / "absent", "train")
