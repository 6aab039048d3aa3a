"""Clip-level retrieval (BE: every clip is an item carrying its video's label): the labels of a video's N clips are
that video's label N times in a row (np.repeat / repeat_interleave: a a b b), not the video labels tiled (a b a b),
for the gallery and for the queries alike. Checked by hand on two-clip videos whose features are given."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from scenebias.evaluate import retrieval as ret


class GivenClips(Dataset):
    """Test-mode videos; each clip (3, T=2, 1, 1) is constant per channel: its pooled feature is the given vector."""

    def __init__(self, videos: list[list[tuple[float, float, float]]], labels: list[int]) -> None:
        self.videos, self.labels = videos, labels

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict:
        clips = torch.stack([torch.tensor(c, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 2, 1, 1)
                             for c in self.videos[i]])
        return {"clips": clips, "label": self.labels[i], "index": i}


class MeanBackbone(nn.Module):
    feature_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4))


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _recall_by_hand(q, qy, g, gy) -> float:
    q = np.asarray(q, float) / np.linalg.norm(q, axis=1, keepdims=True)
    g = np.asarray(g, float) / np.linalg.norm(g, axis=1, keepdims=True)
    nearest = np.argmax(q @ g.T, axis=1)
    return float(np.mean(np.asarray(gy)[nearest] == np.asarray(qy)))


def test_clip_level_labels_repeat_each_videos_label_per_clip():
    # gallery: video A (label 0) clips a1 (1, .1, 0), a2 (1, -.1, 0); video B (label 1) clips b1 (0, 1, .1), b2 (0, 1, -.1)
    # queries: video P (label 0) clips equal to a2 and a1; video Q (label 1) clips equal to b2 and b1
    # clip items in order: gallery a1 a2 b1 b2, queries p1 p2 q1 q2; each query clip's nearest item is its equal
    # labels repeated (0 0 1 1 for both): every nearest item has the query's class: R@1 = 1
    # labels tiled (0 1 0 1 for both): p1 = a2 (index 1, label 1) with label 0: miss; p2 = a1 (0): label 1 vs 0: miss;
    #   q1 = b2 (3, label 1) with label 0: miss; q2 = b1 (2, label 0) with label 1: miss: R@1 = 0
    a1, a2, b1, b2 = (1.0, 0.1, 0.0), (1.0, -0.1, 0.0), (0.0, 1.0, 0.1), (0.0, 1.0, -0.1)
    gallery = GivenClips([[a1, a2], [b1, b2]], [0, 1])
    queries = {"q": GivenClips([[a2, a1], [b2, b1]], [0, 1])}
    g, q = [a1, a2, b1, b2], [a2, a1, b2, b1]
    assert _recall_by_hand(q, [0, 0, 1, 1], g, [0, 0, 1, 1]) == 1.0
    assert _recall_by_hand(q, [0, 1, 0, 1], g, [0, 1, 0, 1]) == 0.0
    out = ret.retrieval(MeanBackbone(), gallery, queries, ks=(1,), centred="plain", level="clip", normalize=identity)
    assert out["plain"]["q"]["R@1"] == 1.0


def test_clip_level_labels_with_three_clips_and_three_classes():
    # every clip of a video points along its class's axis, with a clip-specific wobble; the query clips equal the
    # gallery clips of the same class in another order, so only labels repeated per clip give R@1 = 1
    rng = np.random.default_rng(0)
    axes = np.eye(3)
    videos, labels = [], []
    for c in range(3):
        videos.append([tuple(axes[c] + 0.05 * rng.standard_normal(3)) for _ in range(3)])
        labels.append(c)
    gallery = GivenClips(videos, labels)
    queries = {"q": GivenClips([v[::-1] for v in videos], labels)}
    g = [c for v in videos for c in v]
    q = [c for v in videos for c in v[::-1]]
    repeated, tiled = np.repeat(labels, 3), np.tile(labels, 3)
    assert _recall_by_hand(q, repeated, g, repeated) == 1.0
    assert _recall_by_hand(q, tiled, g, tiled) < 1.0
    out = ret.retrieval(MeanBackbone(), gallery, queries, ks=(1,), centred="plain", level="clip", normalize=identity)
    assert out["plain"]["q"]["R@1"] == 1.0
