"""Evaluation protocols: metrics, multi-clip testing, feature extraction, linear probe, fine-tune, retrieval.

Datasets here are fakes with the ClipDataset item format (scenebias.data is not imported):
single mode {"clip": (C,T,H,W), "label", "index"}, test mode {"clips": (N,C,T,H,W), "label", "index"}.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from scenebias.errors import ConfigError
from scenebias.evaluate.features import extract_features
from scenebias.evaluate.finetune import FinetuneConfig, finetune
from scenebias.evaluate.linear import LinearProbeConfig, linear_probe
from scenebias.evaluate.protocol import (
    KINETICS_MEAN,
    KINETICS_STD,
    classification_metrics,
    contrasted_accuracy,
    kinetics_normalize,
    mean_class_accuracy,
    multi_clip_predict,
    top1,
)
from scenebias.evaluate.retrieval import RetrievalConfig, recall_at_k, retrieval
from scenebias.models.backbones import build_backbone


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


class BrightnessClips(Dataset):
    """Clips whose mean brightness encodes the class (linearly separable), plus seeded noise.

    Single mode: the noise depends on (index, epoch) -- a stand-in for random augmentation.
    Test mode: `n_clips` clips per video, each with its own noise.
    """

    def __init__(self, n: int, num_classes: int, mode: str, n_clips: int = 2, seed: int = 0,
                 shape: tuple[int, int, int, int] = (3, 4, 16, 16)) -> None:
        self.n, self.k, self.mode, self.n_clips, self.seed, self.shape = n, num_classes, mode, n_clips, seed, shape
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def _clip(self, label: int, g: torch.Generator) -> torch.Tensor:
        level = 0.15 + 0.7 * label / (self.k - 1)
        return (level + 0.1 * (torch.rand(self.shape, generator=g) - 0.5)).clamp(0, 1)

    def __getitem__(self, index: int) -> dict:
        label = index % self.k
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index * 1009 + self.epoch)
        if self.mode == "single":
            return {"clip": self._clip(label, g), "label": label, "index": index}
        return {"clips": torch.stack([self._clip(label, g) for _ in range(self.n_clips)]), "label": label,
                "index": index}


def tiny_backbone() -> nn.Module:
    torch.manual_seed(0)
    bb = build_backbone("tiny3d", width=8)
    bb.train()
    with torch.no_grad():  # give BN non-default running statistics
        for _ in range(2):
            bb(kinetics_normalize(torch.rand(4, 3, 4, 16, 16)))
    return bb


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_bit_identical(before: dict[str, torch.Tensor], module: nn.Module) -> None:
    after = module.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), f"{k} changed"


# --------------------------------------------------------------------------------------------- metrics


def test_mean_class_accuracy_differs_from_top1_on_imbalanced_example():
    # labels 0,0,0,0,1 ; the model always predicts class 0
    # top1 = 4/5 = 0.8 ; per-class recall: class 0 -> 4/4 = 1.0, class 1 -> 0/1 = 0.0, class 2 absent
    # mean class accuracy = (1.0 + 0.0) / 2 = 0.5 (absent classes do not count)
    probs = np.array([[0.9, 0.1, 0.0]] * 5)
    labels = np.array([0, 0, 0, 0, 1])
    assert top1(probs, labels) == pytest.approx(0.8)
    assert mean_class_accuracy(probs, labels, 3) == pytest.approx(0.5)
    m = classification_metrics(probs, labels, 3)
    assert m["top1"] == pytest.approx(0.8) and m["mean_class_acc"] == pytest.approx(0.5) and m["n"] == 5
    assert m["per_class_acc"] == [1.0, 0.0, None]


def test_contrasted_accuracy_hand_example():
    # correct on swapped clip a:  T T F T
    # correct on static frame  b:  F T F F
    # a AND not b:                 T F F T  -> 2/4
    a = [True, True, False, True]
    b = [False, True, False, False]
    assert contrasted_accuracy(a, b) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        contrasted_accuracy([True], [True, False])


def test_kinetics_normalize_constants():
    x = torch.rand(2, 3, 2, 4, 4)
    y = kinetics_normalize(x)
    for c in range(3):
        assert torch.allclose(y[:, c], (x[:, c] - KINETICS_MEAN[c]) / KINETICS_STD[c])


# ------------------------------------------------------------------------------------- multi-clip test


class ClipIndexModel(nn.Module):
    """Logits depend on the clip: a clip filled with value v gets probabilities TABLE[v]."""

    TABLE = torch.tensor([[0.8, 0.2], [0.2, 0.8]], dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x[:, 0, 0, 0, 0].round().long()
        return self.TABLE[v].log().float()


class ClipValueVideos(Dataset):
    def __init__(self, values: list[list[int]]) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> dict:
        clips = torch.stack([torch.full((3, 2, 2, 2), float(v)) for v in self.values[i]])
        return {"clips": clips, "label": 1, "index": i}


@pytest.mark.parametrize("batch_size", [1, 2])
def test_multi_clip_predict_averages_softmax_over_clips(batch_size):
    # video 0: clips with values 0,1,1 -> softmaxes [.8,.2],[.2,.8],[.2,.8] -> mean [.4,.6]
    # video 1: clips with values 0,0,1 -> mean [.6,.4]
    # (averaging logits instead would give softmax of the geometric mean: [.386, .614] for video 0;
    #  using the first clip only would give [.8, .2])
    ds = ClipValueVideos([[0, 1, 1], [0, 0, 1]])
    probs, labels = multi_clip_predict(ClipIndexModel(), ds, batch_size, "cpu", normalize=identity)
    np.testing.assert_allclose(probs, [[0.4, 0.6], [0.6, 0.4]], atol=1e-6)
    np.testing.assert_array_equal(labels, [1, 1])


# ---------------------------------------------------------------------------------------------- features


class MeanBackbone(nn.Module):
    feature_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4))


def test_extract_features_averages_clips_and_restores_mode():
    ds = BrightnessClips(5, 3, "test", n_clips=3)
    bb = MeanBackbone().train()
    per_clip, y1 = extract_features(bb, ds, 2, "cpu", "per_clip", normalize=identity)
    video, y2 = extract_features(bb, ds, 2, "cpu", "test", normalize=identity)
    assert per_clip.shape == (5, 3, 3) and video.shape == (5, 3) and video.dtype == np.float32
    np.testing.assert_allclose(video, per_clip.mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(y1, [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(y1, y2)
    assert bb.training
    single, _ = extract_features(bb, BrightnessClips(4, 3, "single"), 3, "cpu", "auto", normalize=identity)
    assert single.shape == (4, 3)
    with pytest.raises(Exception, match="test-mode"):
        extract_features(bb, BrightnessClips(4, 3, "single"), 3, "cpu", "test")


# --------------------------------------------------------------------------------------------- retrieval


def test_recall_at_k_hand_example_plain_and_centred():
    # gallery (2-D): g0=(10, 1) y0, g1=(10,-1) y1, g2=(11, 2) y0, g3=(9,-2) y1   (mean (10, 0))
    # queries:        q0=( 5, 2) y0, q1=( 5, 4) y0                               (mean (5, 3))
    #
    # plain (L2-normalise only): every vector points mostly along x; cosines
    #   q0=(.928,.371): g0 .961, g1 .887, g2 .980, g3 .826 -> nearest g2 (y0): hit at 1
    #   q1=(.781,.625): g0 .839, g1 .715, g2 .880, g3 .627 -> nearest g2 (y0): hit at 1
    #   => R@1 = R@2 = R@3 = 1.0
    # centred (gallery minus its mean, queries minus theirs, then L2):
    #   gallery -> (0,1) y0, (0,-1) y1, (1,2)/sqrt5 y0, (-1,-2)/sqrt5 y1 ; queries -> q0 (0,-1), q1 (0,1)
    #   q0 (0,-1): cosines -1, 1, -.894, .894 -> order g1 (y1), g3 (y1), g2 (y0), g0 -> first hit at rank 3
    #   q1 (0, 1): cosines  1,-1,  .894,-.894 -> order g0 (y0) ...                     -> hit at 1
    #   => R@1 = 1/2, R@2 = 1/2, R@3 = 1
    # k = 10 > 4 gallery items is clipped to 4: R@10 = 1 for both.
    g = np.array([[10, 1], [10, -1], [11, 2], [9, -2]], dtype=np.float32)
    gy = np.array([0, 1, 0, 1])
    q = np.array([[5, 2], [5, 4]], dtype=np.float32)
    qy = np.array([0, 0])
    ks = (1, 2, 3, 10)
    plain = recall_at_k(q, qy, g, gy, ks, centred=False)
    centred = recall_at_k(q, qy, g, gy, ks, centred=True)
    assert plain == {"R@1": 1.0, "R@2": 1.0, "R@3": 1.0, "R@10": 1.0}
    assert centred == {"R@1": 0.5, "R@2": 0.5, "R@3": 1.0, "R@10": 1.0}
    # torch inputs are accepted too
    assert recall_at_k(torch.from_numpy(q), torch.from_numpy(qy), torch.from_numpy(g), torch.from_numpy(gy),
                       ks, centred=True) == centred


def test_retrieval_names_variants():
    bb = MeanBackbone()
    gallery = BrightnessClips(9, 3, "test", seed=1)
    queries = {"test": BrightnessClips(6, 3, "test", seed=2)}
    both = retrieval(bb, gallery, queries, ks=(1, 5), centred="both", batch_size=4)
    assert set(both) == {"centred", "plain"} and set(both["plain"]["test"]) == {"R@1", "R@5"}
    assert both["plain"]["test"]["R@1"] == 1.0  # brightness separates the classes
    only = retrieval(bb, gallery, queries, ks=(1,), centred=False, level="clip")
    assert set(only) == {"plain"}
    with pytest.raises(ConfigError):
        retrieval(bb, gallery, queries, centred="sometimes")


# ------------------------------------------------------------------------------------------ linear probe


def test_linear_probe_is_frozen_normalises_train_inputs_and_learns():
    bb = tiny_backbone()
    before = snapshot(bb)
    flags = [p.requires_grad for p in bb.parameters()]
    seen = {"clips": 0}

    def spy(x: torch.Tensor) -> torch.Tensor:
        seen["clips"] += x.shape[0]
        return kinetics_normalize(x)

    train = BrightnessClips(30, 3, "single", seed=1)
    tests = {"test": BrightnessClips(15, 3, "test", n_clips=2, seed=2)}
    cfg = LinearProbeConfig(epochs=40, batch_size=16, train_views=2)
    res = linear_probe(bb, train, tests, 3, cfg, "cpu", seed=0, normalize=spy)

    assert_bit_identical(before, bb)  # parameters and BN running_mean/var/num_batches_tracked
    assert [p.requires_grad for p in bb.parameters()] == flags and bb.training
    assert seen["clips"] == 2 * 30 + 15 * 2  # training AND test inputs went through the normaliser
    assert res["test"]["top1"] > 0.9 and res["test"]["n"] == 15
    assert res["train_top1"] > 0.9
    again = linear_probe(bb, train, tests, 3, cfg, "cpu", seed=0, normalize=spy)
    assert again == res  # seeded and deterministic on CPU


def test_config_from_dict_rejects_unknown_keys():
    cfg = LinearProbeConfig.from_dict({"epochs": 5, "milestones": [0.5]})
    assert cfg.epochs == 5 and cfg.milestones == (0.5,)
    with pytest.raises(ConfigError, match="epoch"):
        LinearProbeConfig.from_dict({"epoch": 5})
    with pytest.raises(ConfigError, match="dropuot"):
        FinetuneConfig.from_dict({"dropuot": 0.5})
    with pytest.raises(ConfigError, match="k"):
        RetrievalConfig.from_dict({"k": [1]})
    with pytest.raises(ConfigError, match="milestones"):
        FinetuneConfig(milestones=(0.8, 0.6))
    be = FinetuneConfig.preset("be")
    assert be.epochs == 45 and be.gamma == 0.3 and math.isclose(be.milestones[0] * 45, 10)


# ----------------------------------------------------------------------------------------------- finetune


def test_finetune_leaves_backbone_untouched_and_beats_chance():
    bb = tiny_backbone()
    before = snapshot(bb)
    train = BrightnessClips(24, 3, "single", seed=1)
    tests = {"test": BrightnessClips(12, 3, "test", n_clips=2, seed=2)}
    cfg = FinetuneConfig(epochs=10, lr=0.05, dropout=0.0, batch_size=8, progress=False)
    res = finetune(bb, train, tests, 3, cfg, "cpu", seed=0)
    assert_bit_identical(before, bb)
    assert bb.training and all(p.grad is None for p in bb.parameters())
    # brightness separates the classes (the linear probe reaches > 0.9 on the same data): fine-tuning must too
    test = res["test"]
    assert test["top1"] > 0.9 and test["n"] == 12 and len(test["correct"]) == 12
    assert test["top1"] == pytest.approx(sum(test["correct"]) / 12)  # top-1 is the share of correct videos
    labels = [i % 3 for i in range(12)]  # BrightnessClips: label = index % classes
    assert test["per_class_acc"] == pytest.approx(
        [sum(c for c, y in zip(test["correct"], labels) if y == k) / 4 for k in range(3)])
    assert res["train_top1"] > 0.9
    assert res["train_loss"] < 0.5 * math.log(3)  # well below the chance cross-entropy ln 3
