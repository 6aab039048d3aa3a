"""Pooled backbone features of a dataset, for the linear probe and retrieval."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..device import pin_memory, to_device
from ..errors import ConfigError, DataError
from .protocol import Normalize, _num_batches, iter_clip_batches, kinetics_normalize

MODES = ("auto", "test", "single", "per_clip")
POOLINGS = ("avg", "max")


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    dataset: Dataset,
    batch_size: int,
    device: torch.device | str,
    mode: str = "auto",
    *,
    normalize: Normalize = kinetics_normalize,
    num_workers: int = 0,
    progress: bool = False,
    pooling: str = "avg",
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of every item, in dataset order: (feats float32, labels int64 (N,)).

    The backbone runs in eval mode under no_grad (BatchNorm statistics are not touched; its previous
    train/eval mode is restored afterwards), moved to `device` (in place), where its inputs go. Inputs are
    normalised with `normalize`.

    mode:
      "test"     test-mode items ("clips" (N, C, T, H, W)): features averaged over each video's N clips -> (N_videos, D)
      "single"   single-mode items ("clip" (C, T, H, W)): one feature per item -> (N_items, D)
      "auto"     whichever of the two the items are
      "per_clip" either kind, without averaging -> (N_items, N_clips, D) (N_clips = 1 for single-mode items)
    `batch_size` counts items (videos).

    pooling: "avg" is the backbone's own output (its global average pool); "max" the global max over (T, H, W) of
    its last feature map (`backbone.feature_map`), the max pooling of BE's retrieval (BE §4.3).
    """
    if mode not in MODES:
        raise ValueError(f"extract_features mode must be one of {MODES}, got {mode!r}")
    device = torch.device(device)
    backbone = to_device(backbone, device)
    pool = _pooled(backbone, pooling)
    was_training = backbone.training
    backbone.eval()
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    try:
        batches = iter_clip_batches(dataset, batch_size, num_workers, pin_memory(device))
        for clips, y, item_mode in tqdm(batches, desc="features", total=_num_batches(dataset, batch_size), leave=False,
                                        disable=not progress):
            if mode in ("test", "single") and item_mode != mode:
                key = "clips" if mode == "test" else "clip"
                raise DataError(f"extract_features(mode={mode!r}) expects {mode}-mode items with a {key!r} entry, "
                                f"got {item_mode}-mode items")
            b, n = clips.shape[:2]
            x = normalize(to_device(clips.flatten(0, 1), device, torch.float32))
            f = pool(x).float().view(b, n, -1)
            feats.append((f if mode == "per_clip" else f.mean(dim=1)).cpu())
            labels.append(y)
    finally:
        backbone.train(was_training)
    if not feats:
        raise DataError("cannot extract features of an empty dataset")
    return torch.cat(feats).numpy().astype(np.float32, copy=False), torch.cat(labels).numpy()


def _pooled(backbone: nn.Module, pooling: str):
    """clips -> pooled features of one clip each, as `pooling` says."""
    if pooling == "avg":
        return backbone
    if pooling != "max":
        raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if not hasattr(backbone, "feature_map"):
        raise ConfigError(f"max pooling needs a backbone with a `feature_map` method; {type(backbone).__name__} "
                          f"has none")
    return lambda x: backbone.feature_map(x).amax(dim=(2, 3, 4))
