"""Evaluation protocols: metrics, multi-clip testing, feature extraction, linear probe, fine-tune, retrieval.

Datasets here are fakes with the ClipDataset item format (scenebias.data is not imported):
single mode {"clip": (C,T,H,W), "label", "index"}, test mode {"clips": (N,C,T,H,W), "label", "index"}.
"""
from __future__ import annotations

import functools
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
    IMAGENET_MEAN,
    IMAGENET_STD,
    INPUT_STATS,
    KINETICS_MEAN,
    KINETICS_STD,
    average_clip_scores,
    classification_metrics,
    contrasted_accuracy,
    imagenet_normalize,
    kinetics_normalize,
    mean_class_accuracy,
    multi_clip_predict,
    resolve_clip_average,
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


# ------------------------------------------------------------------------------------- clip averaging

# One video, three clips, two classes; clip logits (0, 10), (3, 0), (3, 0).
#   softmax averaged: p0 = (sigmoid(-10) + 2 sigmoid(3)) / 3 = (0.0000454 + 2 * 0.9525741) / 3 = 0.6350646 -> class 0
#   logits averaged: (6/3, 10/3) = (2, 3.3333); softmax -> p1 = sigmoid(4/3) = 0.7913915                 -> class 1
#   log-softmax averaged: the logits' mean minus the clips' mean log-sum-exp, a constant per video: the same
#   softmax as the logits' (why by_backbone's two readings rank alike)
LOGITS = torch.tensor([[[0.0, 10.0], [3.0, 0.0], [3.0, 0.0]]], dtype=torch.float64)


def test_clip_average_softmax_and_logits_disagree_by_hand():
    soft = average_clip_scores(LOGITS, "softmax")
    logits = average_clip_scores(LOGITS, "logits")
    log_soft = average_clip_scores(LOGITS, "log_softmax")
    np.testing.assert_allclose(soft.numpy(), [[0.6350646, 0.3649354]], atol=1e-6)
    np.testing.assert_allclose(logits.numpy(), [[1 - 0.7913915, 0.7913915]], atol=1e-6)
    np.testing.assert_allclose(log_soft.numpy(), logits.numpy(), atol=1e-12)
    assert classification_metrics(soft.numpy(), [1], 2)["top1"] == 0.0
    assert classification_metrics(logits.numpy(), [1], 2)["top1"] == 1.0
    with pytest.raises(ConfigError, match="by_backbone"):
        average_clip_scores(LOGITS, "by_backbone")  # resolved against the backbone before use


def test_by_backbone_is_log_softmax_for_i3d_and_logits_otherwise():
    assert resolve_clip_average("by_backbone", "i3d") == "log_softmax"
    assert resolve_clip_average("by_backbone", "r2plus1d_18") == "logits"
    assert resolve_clip_average("softmax", "i3d") == "softmax"
    with pytest.raises(ConfigError, match="clip_average"):
        resolve_clip_average("median", "i3d")


class LogitTableModel(nn.Module):
    """A clip filled with value v gets the logits LOGITS[0, v]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return LOGITS[0][x[:, 0, 0, 0, 0].round().long()].float()


def test_multi_clip_predict_averages_as_asked():
    ds = ClipValueVideos([[0, 1, 2]])  # label 1
    soft, _ = multi_clip_predict(LogitTableModel(), ds, 1, "cpu", normalize=identity)
    logits, _ = multi_clip_predict(LogitTableModel(), ds, 1, "cpu", normalize=identity, clip_average="logits")
    assert soft.argmax() == 0 and logits.argmax() == 1
    np.testing.assert_allclose(logits, [[1 - 0.7913915, 0.7913915]], atol=1e-6)


@pytest.mark.parametrize("protocol", ["linear", "finetune"])
def test_protocols_pass_clip_average_to_the_test(protocol, monkeypatch):
    import scenebias.evaluate.linear as linear_module
    import scenebias.evaluate.protocol as protocol_module

    seen = []
    real = protocol_module.average_clip_scores

    def spy(logits, how="softmax"):
        seen.append(how)
        return real(logits, how)

    monkeypatch.setattr(linear_module, "average_clip_scores", spy)
    monkeypatch.setattr(protocol_module, "average_clip_scores", spy)
    train, tests = BrightnessClips(6, 3, "single"), {"test": BrightnessClips(3, 3, "test")}
    if protocol == "linear":
        linear_probe(MeanBackbone(), train, tests, 3, LinearProbeConfig(epochs=1), "cpu", clip_average="logits")
    else:
        finetune(MeanBackbone(), train, tests, 3, FinetuneConfig(epochs=1, batch_size=3, progress=False), "cpu",
                 clip_average="logits")
    assert seen and set(seen) == {"logits"}


# ------------------------------------------------------------------------- linear probe: training views


class SwapAfterFirstEpoch(BrightnessClips):
    """Single-mode clips whose brightness gives the class at epoch 0 and the other class from epoch 1 on (two
    classes); the epochs set are recorded."""

    def __init__(self, n: int) -> None:
        super().__init__(n, 2, "single", seed=1)
        self.epochs_set: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.epochs_set.append(epoch)

    def _clip(self, label: int, g: torch.Generator) -> torch.Tensor:
        return super()._clip(label if self.epoch == 0 else 1 - label, g)


def test_linear_probe_per_epoch_draws_every_epoch_and_cached_once():
    # cached: the layer sees epoch 0's view for all 4 epochs and classifies the (epoch-0-like) test set;
    # per_epoch: epochs 1..3 show the swapped brightness, so the layer learns the swap and misclassifies it
    bb, tests = MeanBackbone(), {"test": BrightnessClips(8, 2, "test", seed=2)}
    results = {}
    for views in ("cached", "per_epoch"):
        train = SwapAfterFirstEpoch(16)
        # raw features: MeanBackbone's L2-normalised features would all be (1, 1, 1) / sqrt 3; no lr decay
        cfg = LinearProbeConfig(epochs=4, lr=1.0, batch_size=4, views=views, normalize_features=False,
                                milestones=(1.0,))
        results[views] = linear_probe(bb, train, tests, 2, cfg, "cpu", seed=0, normalize=identity)
        assert train.epochs_set == ([0] if views == "cached" else [0, 1, 2, 3])
    assert results["cached"]["test"]["top1"] == 1.0
    assert results["per_epoch"]["test"]["top1"] == 0.0
    assert results["per_epoch"]["train_top1"] == 1.0  # on the last epoch's (swapped) features


def test_linear_probe_views_are_checked():
    with pytest.raises(ConfigError, match="views"):
        LinearProbeConfig(views="sometimes")
    with pytest.raises(ConfigError, match="train_views"):
        LinearProbeConfig(views="per_epoch", train_views=2)


# ------------------------------------------------------------------------- finetune: colour augmentation


class IndexClips(Dataset):
    """Single-mode clips filled per channel with values set by the index (no randomness): the raw clips."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def clip(self, index: int) -> torch.Tensor:
        values = torch.tensor([0.2 + 0.07 * index, 0.5, 0.8 - 0.05 * index])
        return values.view(3, 1, 1, 1).expand(3, 2, 8, 8).clone()

    def __getitem__(self, index: int) -> dict:
        return {"clip": self.clip(index), "label": index % 2, "index": index}


def _finetune_inputs(colour, seed=0):
    """The clips the model is trained on (before normalisation), in order."""
    seen = []

    def spy(x):
        seen.append(x.clone())
        return x

    train = IndexClips(8)
    cfg = FinetuneConfig(epochs=2, batch_size=4, dropout=0.0, progress=False, colour=colour)
    finetune(MeanBackbone(), train, {}, 2, cfg, "cpu", seed=seed, normalize=spy)
    return torch.cat(seen), [train.clip(i) for i in range(len(train))]


def test_finetune_colour_off_trains_on_the_raw_clips_and_on_changes_them():
    off, raw = _finetune_inputs(None)
    assert off.shape[0] == 16 and all(any(torch.equal(c, r) for r in raw) for c in off)
    on, _ = _finetune_inputs({"p_jitter": 0.8, "p_gray": 0.2})
    changed = [not any(torch.equal(c, r) for r in raw) for c in on]
    assert sum(changed) >= 8  # p(a clip untouched) = 0.2 * 0.8 = 0.16
    assert on.min() >= 0 and on.max() <= 1
    again, _ = _finetune_inputs({"p_jitter": 0.8, "p_gray": 0.2})
    assert torch.equal(on, again)  # seeded from (seed, epoch): reproducible
    assert not torch.equal(on, _finetune_inputs({"p_jitter": 0.8, "p_gray": 0.2}, seed=1)[0])


def test_finetune_colour_options_are_checked_and_completed():
    cfg = FinetuneConfig.from_dict({"colour": {"p_gray": 0.5, "jitter": [0.1, 0.2, 0.3, 0.05]}})
    assert cfg.colour == {"jitter": (0.1, 0.2, 0.3, 0.05), "p_jitter": 0.8, "p_gray": 0.5, "p_blur": 0.0,
                          "stages": ("grayscale", "jitter", "blur")}  # FAME's Augment_GPU_ft order
    with pytest.raises(ConfigError, match="stages"):
        FinetuneConfig(colour={"stages": ["jitter", "blur"]})
    with pytest.raises(ConfigError, match="p_grey"):
        FinetuneConfig(colour={"p_grey": 0.2})
    with pytest.raises(ConfigError, match="probabilities"):
        FinetuneConfig(colour={"p_jitter": 1.5})
    assert FinetuneConfig().colour is None


# ------------------------------------------------------------------------------- retrieval options


class VectorVideos(Dataset):
    """Test-mode videos whose clips are given per channel: a clip spec (c0, c1, c2) fills channel k with c_k, a
    number or a list over time (T = 2)."""

    def __init__(self, videos: list[list[tuple]], labels: list[int]) -> None:
        self.videos, self.labels = videos, labels

    def __len__(self) -> int:
        return len(self.videos)

    @staticmethod
    def _clip(spec: tuple) -> torch.Tensor:
        return torch.stack([torch.as_tensor(c, dtype=torch.float32).expand(2).view(2, 1, 1) for c in spec])

    def __getitem__(self, i: int) -> dict:
        return {"clips": torch.stack([self._clip(s) for s in self.videos[i]]), "label": self.labels[i], "index": i}


class MapBackbone(MeanBackbone):
    """The clip itself is the feature map: average pooling is the per-channel mean, max pooling the maximum."""

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_retrieval_clip_normalize_by_hand():
    # gallery: A (label 0) clips (10, 0, 0), (0, 1, 0); B (label 1) clips (1, 0, 0) twice; query (label 0): (1, .2, 0)
    # raw mean:        A (5, .5, 0):  cos(q, A) = 5.1 / (1.0198 * 5.0249) = .9952 > cos(q, B) = 1 / 1.0198 = .9806
    #                  -> A first, hit
    # clips L2 first:  A (.5, .5, 0): cos(q, A) = .6 / (1.0198 * .7071) = .8321 < .9806 -> B first, hit at rank 2
    gallery = VectorVideos([[(10, 0, 0), (0, 1, 0)], [(1, 0, 0), (1, 0, 0)]], [0, 1])
    queries = {"q": VectorVideos([[(1, 0.2, 0)]], [0])}
    run = functools.partial(retrieval, MeanBackbone(), gallery, queries, ks=(1, 2), centred="plain", normalize=identity)
    assert run()["plain"]["q"] == {"R@1": 1.0, "R@2": 1.0}
    assert run(clip_normalize=True)["plain"]["q"] == {"R@1": 0.0, "R@2": 1.0}


def test_retrieval_clip_level_max_pooling_by_hand():
    # one clip per video; features over T = 2 frames: average (mean) or max pooling
    # gallery A (label 0): c0 [1, 0]              -> avg (.5, 0, 0),  max (1, 0, 0)
    # gallery B (label 1): c0 1, c1 .5, c2 [1, -1] -> avg (1, .5, 0),  max (1, .5, 1)
    # query (label 0):     c0 1, c1 .5             -> (1, .5, 0) both ways
    # avg: cos(q, B) = 1 > cos(q, A) = .894 -> B first: miss at 1
    # max: cos(q, B) = 1.25 / 1.677 = .745 < cos(q, A) = .894 -> A first: hit
    gallery = VectorVideos([[([1, 0], 0, 0)], [(1, 0.5, [1, -1])]], [0, 1])
    queries = {"q": VectorVideos([[(1, 0.5, 0)]], [0])}
    run = functools.partial(retrieval, MapBackbone(), gallery, queries, ks=(1,), centred="plain", level="clip",
                            normalize=identity)
    assert run()["plain"]["q"]["R@1"] == 0.0
    assert run(pooling="max")["plain"]["q"]["R@1"] == 1.0
    with pytest.raises(ConfigError, match="feature_map"):
        retrieval(MeanBackbone(), gallery, queries, level="clip", pooling="max", normalize=identity)


def test_retrieval_levels_keeps_video_keys_and_adds_clip_keys(monkeypatch):
    # query video (label 0) with clips (1, 0, 0) and (0, 1, 0); gallery A (label 0) (1, 0, 0), B (label 1) (0, 1, 0)
    # video level: the query's mean (.5, .5, 0) is as close to A as to B; the tie goes to gallery order: A, hit
    # clip level: clip 1 -> A (hit), clip 2 -> B (miss): R@1 = 1/2
    import scenebias.evaluate.retrieval as retrieval_module

    gallery = VectorVideos([[(1, 0, 0)], [(0, 1, 0)]], [0, 1])
    queries = {"q": VectorVideos([[(1, 0, 0), (0, 1, 0)]], [0])}
    monkeypatch.setitem(retrieval_module.INPUT_STATS, "kinetics", identity)
    out = retrieval_module.retrieval_levels(MapBackbone(), gallery, queries,
                                            RetrievalConfig(ks=(1,), levels=("video", "clip")))
    assert list(out) == ["centred", "plain", "clip_centred", "clip_plain"]
    assert out["plain"]["q"]["R@1"] == 1.0 and out["clip_plain"]["q"]["R@1"] == 0.5
    default = retrieval_module.retrieval_levels(MapBackbone(), gallery, queries, RetrievalConfig(ks=(1,)))
    assert default == retrieval(MapBackbone(), gallery, queries, ks=(1,), normalize=identity)


def test_retrieval_input_stats():
    x = torch.rand(2, 3, 2, 4, 4)
    for c in range(3):
        assert torch.allclose(imagenet_normalize(x)[:, c], (x[:, c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)
    assert INPUT_STATS["imagenet"] is imagenet_normalize and INPUT_STATS["kinetics"] is kinetics_normalize
    with pytest.raises(ConfigError, match="input_stats"):
        RetrievalConfig(input_stats="coco")
    with pytest.raises(ConfigError, match="clip_level_pooling"):
        RetrievalConfig(clip_level_pooling="median")
    with pytest.raises(ConfigError, match="levels"):
        RetrievalConfig(levels=("video", "video"))
