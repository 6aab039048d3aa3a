"""Linear probe: a frozen backbone (eval mode, BN statistics frozen) and a trained linear layer.

Training features (`views`): "cached" (default; fits 2-core CPU budgets) runs the backbone once per augmented
pass: `train_views` passes over the training set (`train_set.set_epoch(v)` before pass v, single-mode items) are
cached as pooled features and the layer is trained on the cache for every epoch; "per_epoch" extracts them again
before every epoch e (`set_epoch(e)`), a new clip and crop per epoch as the authors' probe draws.
FAME's schedule (lr 30, wd 0, 100 epochs, x0.1 at 60 % / 80 %) is the default.
Training and test inputs are normalised identically (FAME's probe forgot to normalise its training inputs).
Test: per-clip features -> linear layer -> scores averaged over each video's clips (`clip_average`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..device import to_device
from ..errors import ConfigError, DataError
from .features import extract_features
from .protocol import (
    Normalize,
    average_clip_scores,
    check_milestones,
    check_non_negative,
    check_positive,
    check_result_names,
    classification_metrics,
    config_from_dict,
    kinetics_normalize,
    milestone_epochs,
    seed_everything,
    seeded_generator,
    with_loader_workers,
)
from .registry import EvaluationInputs, register_protocol

RESERVED = ("train_top1",)
VIEWS = ("cached", "per_epoch")
Features = tuple[torch.Tensor, torch.Tensor]  # (prepared features, labels) on the device


@dataclass
class LinearProbeConfig:
    epochs: int = 100
    lr: float = 30.0
    weight_decay: float = 0.0
    momentum: float = 0.9
    batch_size: int = 256  # of cached training features
    train_views: int = 1  # augmented passes over the training set whose features are cached (views: cached)
    views: str = "cached"  # "cached": train_views passes extracted once; "per_epoch": one new pass every epoch
    milestones: tuple[float, ...] = (0.6, 0.8)  # fractions of `epochs`
    gamma: float = 0.1
    normalize_features: bool = True  # L2-normalise pooled features before the linear layer
    extract_batch_size: int = 8  # videos per backbone forward
    num_workers: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        o = "LinearProbeConfig"
        check_positive(o, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                       train_views=self.train_views, gamma=self.gamma, extract_batch_size=self.extract_batch_size)
        check_non_negative(o, weight_decay=self.weight_decay, momentum=self.momentum, num_workers=self.num_workers)
        check_milestones(o, self.milestones)
        self.milestones = tuple(float(m) for m in self.milestones)
        if self.views not in VIEWS:
            raise ConfigError(f"{o}.views must be one of {', '.join(VIEWS)}; got {self.views!r}")
        if self.views == "per_epoch" and self.train_views != 1:  # one pass per epoch: train_views has no meaning
            raise ConfigError(f"{o}.train_views must be 1 with views: per_epoch; got {self.train_views}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "LinearProbeConfig":
        return config_from_dict(cls, data)


def _prepare(feats: torch.Tensor, normalize_features: bool) -> torch.Tensor:
    return F.normalize(feats, dim=-1) if normalize_features else feats


def linear_probe(
    backbone: nn.Module,
    train_set: Dataset,
    test_sets: Mapping[str, Dataset],
    num_classes: int,
    cfg: LinearProbeConfig | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    *,
    normalize: Normalize = kinetics_normalize,
    clip_average: str = "softmax",
) -> dict[str, Any]:
    """Train a linear classifier on frozen pooled features and test it on every test set.

    Returns {test_name: classification_metrics (top1, mean_class_acc, per_class_acc, n), ...,
    "train_top1": top-1 of the trained layer on the last epoch's training features}.
    `clip_average` combines a test video's clip scores (protocol.average_clip_scores).
    The caller's backbone is left bit-identical (parameters and BN buffers), on `device`; its requires_grad flags
    and train/eval mode are restored afterwards.
    """
    cfg = cfg or LinearProbeConfig()
    check_result_names(list(test_sets), RESERVED)
    device = torch.device(device)
    seed_everything(seed)

    grad_flags = [p.requires_grad for p in backbone.parameters()]
    was_training = backbone.training
    try:
        for p in backbone.parameters():
            p.requires_grad_(False)
        backbone.eval()

        passes = functools.partial(_train_features, backbone, train_set, cfg=cfg, device=device,
                                   normalize=normalize, num_classes=num_classes)
        head, train_x, train_y = _train_head(_epoch_features(cfg, passes), num_classes, cfg, seed, device)

        results: dict[str, Any] = {}
        with torch.no_grad():
            head.eval()
            results["train_top1"] = float((head(train_x).argmax(1) == train_y).double().mean())
            # ---- multi-clip test
            for name, test_set in test_sets.items():
                f, y = extract_features(backbone, test_set, cfg.extract_batch_size, device, "per_clip",
                                        normalize=normalize, num_workers=cfg.num_workers, progress=cfg.progress)
                x = to_device(_prepare(torch.from_numpy(f), cfg.normalize_features), device)  # (V, N, D)
                probs = average_clip_scores(head(x).double(), clip_average)
                results[name] = classification_metrics(probs.cpu().numpy(), y, num_classes)
        return results
    finally:
        for p, flag in zip(backbone.parameters(), grad_flags):
            p.requires_grad_(flag)
        backbone.train(was_training)


def _check_labels(y: torch.Tensor, num_classes: int, what: str) -> None:
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(f"{what} has labels outside [0, {num_classes}): min {int(y.min())}, max {int(y.max())}")


def _train_features(backbone: nn.Module, train_set: Dataset, views: range, cfg: LinearProbeConfig,
                    device: torch.device, normalize: Normalize, num_classes: int) -> Features:
    """Prepared pooled features and labels of the training passes `views` (`set_epoch(v)` before pass v)."""
    views_x, views_y = [], []
    for v in views:
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(v)
        f, y = extract_features(backbone, train_set, cfg.extract_batch_size, device, "single",
                                normalize=normalize, num_workers=cfg.num_workers, progress=cfg.progress)
        views_x.append(torch.from_numpy(f))
        views_y.append(torch.from_numpy(y))
    train_x = to_device(_prepare(torch.cat(views_x), cfg.normalize_features), device)
    train_y = to_device(torch.cat(views_y).long(), device)
    _check_labels(train_y, num_classes, "training set")
    return train_x, train_y


def _epoch_features(cfg: LinearProbeConfig, passes: Callable[[range], Features]) -> Callable[[int], Features]:
    """epoch -> its training features: the cache of passes 0..train_views-1, extracted here once (views: cached),
    or pass `epoch` itself, extracted when asked (views: per_epoch)."""
    if cfg.views == "per_epoch":
        return lambda epoch: passes(range(epoch, epoch + 1))
    cache = passes(range(cfg.train_views))
    return lambda epoch: cache


def _train_head(
    epoch_features: Callable[[int], Features], num_classes: int, cfg: LinearProbeConfig,
    seed: int, device: torch.device
) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """The layer trained for cfg.epochs, epoch e on `epoch_features(e)`; with the last epoch's features."""
    x, y = epoch_features(0)
    torch.manual_seed(seed)
    head = to_device(nn.Linear(x.shape[1], num_classes), device)
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestone_epochs(cfg.milestones, cfg.epochs), cfg.gamma)
    gen = seeded_generator(seed)
    head.train()
    for epoch in range(cfg.epochs):
        if epoch > 0:
            x, y = epoch_features(epoch)
        n = x.shape[0]
        order = to_device(torch.randperm(n, generator=gen), device)
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            loss = F.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return head, x, y


@register_protocol("linear", config=LinearProbeConfig)
def evaluate_linear(e: EvaluationInputs) -> dict[str, Any]:
    """The linear probe on the downstream train split's training views, tested on every test set."""
    cfg = LinearProbeConfig.from_dict(with_loader_workers(e.cfg["evaluate"], "linear"))
    return linear_probe(e.backbone, e.train_clips("single"), e.test_sets, e.num_classes, cfg, e.device, e.seed,
                        clip_average=e.clip_average)
