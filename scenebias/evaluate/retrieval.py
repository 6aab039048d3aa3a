"""Nearest-neighbour video retrieval (no training).

Gallery = training split, queries = test split(s). Each video's feature is the pooled backbone output averaged
over its N uniform clips (`level="video"`); BE instead retrieves clip against clip (`level="clip"`: every clip
is an item carrying its video's label). A query scores a hit at k if any of its k nearest gallery items
(cosine similarity) has the query's class. Recall@k is the fraction of queries with a hit.

Two variants, always named in the output:
  "centred": FAME's code: subtract the gallery mean from the gallery and, separately, the query mean from the
             queries, then L2-normalise;
  "plain":   L2-normalise only (BE).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from .features import extract_features
from .protocol import Normalize, check_positive, config_from_dict, kinetics_normalize

DEFAULT_KS = (1, 5, 10, 20, 50)
VARIANTS = ("centred", "plain")


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def recall_at_k(
    query_feats: Any,
    query_labels: Any,
    gallery_feats: Any,
    gallery_labels: Any,
    ks: Sequence[int] = DEFAULT_KS,
    centred: bool = False,
    *,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """{"R@k": fraction of queries with a same-class item among their k nearest gallery items} for k in ks.

    Similarity is cosine (features L2-normalised; with `centred`, the gallery mean is first subtracted from
    the gallery and the query mean from the queries, each set separately as in FAME's code). Ties in
    similarity are broken by gallery order. A k larger than the gallery is clipped to the gallery size
    (the key keeps the requested k: "R@50" on a 20-item gallery is recall over all 20 items).
    Query and gallery are distinct sets: no self-match is excluded.
    """
    q = np.asarray(torch.as_tensor(query_feats).detach().cpu(), dtype=np.float64)
    g = np.asarray(torch.as_tensor(gallery_feats).detach().cpu(), dtype=np.float64)
    qy = np.asarray(torch.as_tensor(query_labels).cpu()).reshape(-1)
    gy = np.asarray(torch.as_tensor(gallery_labels).cpu()).reshape(-1)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"features must be (N, D) with equal D, got queries {q.shape} and gallery {g.shape}")
    if q.shape[0] != qy.shape[0] or g.shape[0] != gy.shape[0]:
        raise ValueError("one label per feature row is required")
    if g.shape[0] == 0 or q.shape[0] == 0:
        raise DataError("retrieval needs a non-empty gallery and query set")
    ks = tuple(int(k) for k in ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive, got {ks}")
    if centred:
        g = g - g.mean(axis=0, keepdims=True)
        q = q - q.mean(axis=0, keepdims=True)
    q, g = _l2(q), _l2(g)

    # rank (0-based) of the first same-class gallery item for each query; len(gallery) if none
    first_hit = np.empty(q.shape[0], dtype=np.int64)
    for start in range(0, q.shape[0], chunk_size):
        sim = q[start:start + chunk_size] @ g.T
        order = np.argsort(-sim, axis=1, kind="stable")
        match = gy[order] == qy[start:start + chunk_size, None]
        first_hit[start:start + chunk_size] = np.where(match.any(axis=1), match.argmax(axis=1), g.shape[0])
    return {f"R@{k}": float((first_hit < min(k, g.shape[0])).mean()) for k in ks}


def _variants(centred: bool | str) -> tuple[str, ...]:
    if centred is True or centred == "centred":
        return ("centred",)
    if centred is False or centred == "plain":
        return ("plain",)
    if centred == "both":
        return VARIANTS
    raise ConfigError(f"retrieval centred must be True, False, 'centred', 'plain' or 'both', got {centred!r}")


@dataclass
class RetrievalConfig:
    ks: tuple[int, ...] = DEFAULT_KS
    centred: bool | str = "both"  # True/"centred", False/"plain", or "both"
    level: str = "video"  # "video": clip-averaged features; "clip": every clip is an item (BE)
    batch_size: int = 8  # videos per backbone forward
    num_workers: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        self.ks = tuple(int(k) for k in self.ks)
        if not self.ks or any(k < 1 for k in self.ks):
            raise ConfigError(f"RetrievalConfig.ks must be positive integers, got {self.ks!r}")
        _variants(self.centred)
        if self.level not in ("video", "clip"):
            raise ConfigError(f"RetrievalConfig.level must be 'video' or 'clip', got {self.level!r}")
        check_positive("RetrievalConfig", batch_size=self.batch_size)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "RetrievalConfig":
        return config_from_dict(cls, data)


def _features(backbone, dataset, level, batch_size, device, normalize, num_workers, progress):
    if level == "video":
        return extract_features(backbone, dataset, batch_size, device, "test", normalize=normalize,
                                num_workers=num_workers, progress=progress)
    f, y = extract_features(backbone, dataset, batch_size, device, "per_clip", normalize=normalize,
                            num_workers=num_workers, progress=progress)
    return f.reshape(-1, f.shape[-1]), np.repeat(y, f.shape[1])


def retrieval(
    backbone: nn.Module,
    gallery_set: Dataset,
    query_sets: Mapping[str, Dataset],
    ks: Sequence[int] = DEFAULT_KS,
    device: torch.device | str = "cpu",
    centred: bool | str = "both",
    *,
    level: str = "video",
    batch_size: int = 8,
    normalize: Normalize = kinetics_normalize,
    num_workers: int = 0,
    progress: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """Recall@k of every query set against the gallery, for the requested variant(s).

    Datasets are test-mode (N uniform centre-cropped clips per video). Returns
    {variant: {query_name: {"R@1": ..., ...}}} with variant in ("centred", "plain"); `centred="both"` gives both.
    Features are extracted once and shared by the variants.
    """
    variants = _variants(centred)
    if level not in ("video", "clip"):
        raise ConfigError(f"retrieval level must be 'video' or 'clip', got {level!r}")
    g, gy = _features(backbone, gallery_set, level, batch_size, device, normalize, num_workers, progress)
    queries = {name: _features(backbone, ds, level, batch_size, device, normalize, num_workers, progress)
               for name, ds in query_sets.items()}
    return {
        v: {name: recall_at_k(q, qy, g, gy, ks, centred=(v == "centred")) for name, (q, qy) in queries.items()}
        for v in variants
    }
