"""Nearest-neighbour video retrieval (no training).

Gallery = training split, queries = test split(s). Each video's feature is the pooled backbone output averaged
over its N uniform clips (`level="video"`); BE instead retrieves clip against clip (`level="clip"`: every clip
is an item carrying its video's label). A query scores a hit at k if any of its k nearest gallery items
(cosine similarity) has the query's class. Recall@k is the fraction of queries with a hit.

Two variants, always named in the output:
  "centred": FAME's code: subtract the gallery mean from the gallery and, separately, the query mean from the
             queries, then L2-normalise;
  "plain":   L2-normalise only (BE).

`retrieval_levels` runs the levels a `RetrievalConfig` asks for on one job: the video level's results keep the
variant names, the clip level's are named `clip_<variant>` (`result_key`). Options of the authors' scripts:
`clip_normalize` (FAME: each clip's feature L2-normalised before a video's clips are averaged),
`clip_level_pooling: max` (BE: max-pooled clip features), `input_stats: imagenet` (FAME's and BE's input statistics).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from .features import POOLINGS, extract_features
from .protocol import (INPUT_STATS, Normalize, check_positive, config_from_dict, kinetics_normalize,
                       with_loader_workers)
from .registry import EvaluationInputs, register_protocol

DEFAULT_KS = (1, 5, 10, 20, 50)
VARIANTS = ("centred", "plain")
LEVELS = ("video", "clip")


def result_key(variant: str, level: str = "video") -> str:
    """Where a retrieval record keeps one variant's results of one level: the video level under the variant's own
    name (what every reader of results[variant][query] expects), the clip level under `clip_<variant>`."""
    return variant if level == "video" else f"clip_{variant}"


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
    levels: tuple[str, ...] = ("video",)  # "video": clip-averaged features; "clip": every clip is an item (BE)
    clip_normalize: bool = False  # video level: L2-normalise each clip's feature before averaging (FAME's script)
    clip_level_pooling: str = "avg"  # clip level: "avg" (the backbone's pool) or "max" (BE §4.3)
    input_stats: str = "kinetics"  # input normalisation: "kinetics" or "imagenet" (FAME's and BE's scripts)
    batch_size: int = 8  # videos per backbone forward
    num_workers: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        o = "RetrievalConfig"
        self.ks = tuple(int(k) for k in self.ks)
        if not self.ks or any(k < 1 for k in self.ks):
            raise ConfigError(f"{o}.ks must be positive integers, got {self.ks!r}")
        _variants(self.centred)
        self.levels = tuple(self.levels)
        if not self.levels or not set(self.levels) <= set(LEVELS) or len(set(self.levels)) < len(self.levels):
            raise ConfigError(f"{o}.levels must be distinct levels among {', '.join(LEVELS)}, got {self.levels!r}")
        for name, value, allowed in (("clip_level_pooling", self.clip_level_pooling, POOLINGS),
                                     ("input_stats", self.input_stats, tuple(INPUT_STATS))):
            if value not in allowed:
                raise ConfigError(f"{o}.{name} must be one of {', '.join(allowed)}, got {value!r}")
        check_positive(o, batch_size=self.batch_size)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "RetrievalConfig":
        return config_from_dict(cls, data)


def _features(backbone, dataset, level, batch_size, device, normalize, num_workers, progress, clip_normalize,
              pooling):
    options = dict(normalize=normalize, num_workers=num_workers, progress=progress, pooling=pooling)
    if level == "video" and not clip_normalize:
        return extract_features(backbone, dataset, batch_size, device, "test", **options)
    f, y = extract_features(backbone, dataset, batch_size, device, "per_clip", **options)  # (V, N, D)
    if level == "video":
        return _l2(f.reshape(-1, f.shape[-1])).reshape(f.shape).mean(axis=1), y
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
    clip_normalize: bool = False,
    pooling: str = "avg",
) -> dict[str, dict[str, dict[str, float]]]:
    """Recall@k of every query set against the gallery, for the requested variant(s).

    Datasets are test-mode (N uniform centre-cropped clips per video). Returns
    {variant: {query_name: {"R@1": ..., ...}}} with variant in ("centred", "plain"); `centred="both"` gives both.
    Features are extracted once and shared by the variants. `clip_normalize` L2-normalises each clip's feature
    before a video's clips are averaged (video level; FAME's script); `pooling` is extract_features's.
    """
    variants = _variants(centred)
    if level not in LEVELS:
        raise ConfigError(f"retrieval level must be 'video' or 'clip', got {level!r}")
    extract = functools.partial(_features, backbone, level=level, batch_size=batch_size, device=device,
                                normalize=normalize, num_workers=num_workers, progress=progress,
                                clip_normalize=clip_normalize, pooling=pooling)
    g, gy = extract(gallery_set)
    queries = {name: extract(ds) for name, ds in query_sets.items()}
    return {
        v: {name: recall_at_k(q, qy, g, gy, ks, centred=(v == "centred")) for name, (q, qy) in queries.items()}
        for v in variants
    }


def retrieval_levels(
    backbone: nn.Module,
    gallery_set: Dataset,
    query_sets: Mapping[str, Dataset],
    cfg: RetrievalConfig,
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, dict[str, float]]]:
    """`retrieval` at every level of `cfg.levels`, merged into one record keyed by `result_key(variant, level)`:
    {"plain": {query: {"R@1": ...}}, ..., "clip_plain": {...}}. `clip_level_pooling` applies to the clip level only
    (the video level is FAME's protocol, average-pooled)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for level in cfg.levels:
        results = retrieval(backbone, gallery_set, query_sets, ks=cfg.ks, device=device, centred=cfg.centred,
                            level=level, batch_size=cfg.batch_size, normalize=INPUT_STATS[cfg.input_stats],
                            num_workers=cfg.num_workers, progress=cfg.progress, clip_normalize=cfg.clip_normalize,
                            pooling=cfg.clip_level_pooling if level == "clip" else "avg")
        out.update({result_key(variant, level): r for variant, r in results.items()})
    return out


@register_protocol("retrieval", config=RetrievalConfig)
def evaluate_retrieval(e: EvaluationInputs) -> dict[str, Any]:
    """Retrieval: the downstream train split (multi-clip) is the gallery, every test set's videos the queries."""
    ecfg = e.cfg["evaluate"]
    cfg = RetrievalConfig.from_dict({**with_loader_workers(ecfg, "retrieval"), "batch_size": ecfg["batch_size"]})
    return retrieval_levels(e.backbone, e.train_clips("test"), e.test_sets, cfg, e.device)
