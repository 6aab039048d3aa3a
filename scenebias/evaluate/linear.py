"""Linear probe: a frozen backbone (eval mode, BN statistics frozen) and a trained linear layer.

To fit 2-core CPU budgets the backbone runs once per augmented pass: `train_views` passes over the training
set (`train_set.set_epoch(v)` before pass v, single-mode items) are cached as pooled features, and the linear
layer is trained on the cache. FAME's schedule (lr 30, wd 0, 100 epochs, x0.1 at 60 % / 80 %) is the default.
Training and test inputs are normalised identically (FAME's probe forgot to normalise its training inputs).
Test: per-clip features -> linear layer -> softmax, averaged over each video's clips.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..errors import DataError
from .features import extract_features
from .protocol import (
    Normalize,
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
)

RESERVED = ("train_top1",)


@dataclass
class LinearProbeConfig:
    epochs: int = 100
    lr: float = 30.0
    weight_decay: float = 0.0
    momentum: float = 0.9
    batch_size: int = 256  # of cached training features
    train_views: int = 1  # augmented passes over the training set whose features are cached
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
) -> dict[str, Any]:
    """Train a linear classifier on frozen pooled features and test it on every test set.

    Returns {test_name: classification_metrics (top1, mean_class_acc, per_class_acc, n), ...,
    "train_top1": top-1 of the trained layer on the cached training features}.
    The caller's backbone is left bit-identical (parameters and BN buffers); its requires_grad flags and
    train/eval mode are restored afterwards.
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

        # ---- cache training features, one pass per augmented view
        views_x, views_y = [], []
        for v in range(cfg.train_views):
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(v)
            f, y = extract_features(backbone, train_set, cfg.extract_batch_size, device, "single",
                                    normalize=normalize, num_workers=cfg.num_workers, progress=cfg.progress)
            views_x.append(torch.from_numpy(f))
            views_y.append(torch.from_numpy(y))
        train_x = _prepare(torch.cat(views_x), cfg.normalize_features).to(device)
        train_y = torch.cat(views_y).long().to(device)
        _check_labels(train_y, num_classes, "training set")

        # ---- train the linear layer on the cache
        head = _train_head(train_x, train_y, num_classes, cfg, seed, device)

        results: dict[str, Any] = {}
        with torch.no_grad():
            head.eval()
            results["train_top1"] = float((head(train_x).argmax(1) == train_y).double().mean())
            # ---- multi-clip test
            for name, test_set in test_sets.items():
                f, y = extract_features(backbone, test_set, cfg.extract_batch_size, device, "per_clip",
                                        normalize=normalize, num_workers=cfg.num_workers, progress=cfg.progress)
                x = _prepare(torch.from_numpy(f), cfg.normalize_features).to(device)  # (V, N, D)
                probs = torch.softmax(head(x).double(), dim=-1).mean(dim=1)
                results[name] = classification_metrics(probs.cpu().numpy(), y, num_classes)
        return results
    finally:
        for p, flag in zip(backbone.parameters(), grad_flags):
            p.requires_grad_(flag)
        backbone.train(was_training)


def _check_labels(y: torch.Tensor, num_classes: int, what: str) -> None:
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(f"{what} has labels outside [0, {num_classes}): min {int(y.min())}, max {int(y.max())}")


def _train_head(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, cfg: LinearProbeConfig, seed: int, device: torch.device
) -> nn.Linear:
    torch.manual_seed(seed)
    head = nn.Linear(x.shape[1], num_classes).to(device)
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestone_epochs(cfg.milestones, cfg.epochs), cfg.gamma)
    gen = seeded_generator(seed)
    n = x.shape[0]
    head.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            loss = F.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return head
