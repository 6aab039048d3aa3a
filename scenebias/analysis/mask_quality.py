"""How well do FAME's foreground masks find the actor? IoU with the generated set's ground-truth actor masks.

FAME (Ding et al., CVPR 2022, §3.2, eqs. 2–5; Table 6) keeps the top ⌊β·H·W⌋ pixels of a colour-statistics
foreground posterior as one binary mask per clip; Table 6 compares it with the seed map alone (`seed`), a centred
Gaussian (`gauss`) and a 4×4 grid (`grid`) only through downstream accuracy. Real videos have no actor masks, so
no paper could measure the masks themselves; the generated set has one per frame (`<flavour>/annotations/*.npz`).

What is measured (one clip per video of the pretraining flavour's train split):
- clip: the test-mode window (ClipDataset "test" with one clip: the middle window; cfg["clip"] clip_len and
  stride; short side resized to crop_size, centre crop), in [0, 1], before colour augmentation, which is where
  FAME computes its mask. The random resized crop of pretraining is left out so that masks stay aligned.
- truth: the sidecar actor masks of the same frames through the same resize + centre crop (nearest neighbour).
  FAME's mask is constant over time, so the main truth is the actor's union over the clip's frames: `iou`,
  `precision` (share of mask pixels on the actor) and `recall` (share of actor pixels in the mask).
  `iou_frames` is the IoU with each frame's own actor mask, averaged over the clip's frames.
- variants: `fame` with colour_mode `paper` and `official-code`, `seed`, `gauss`, `grid`, each at every β of
  BETAS. `grid` ignores β (always 8 of 16 cells); its rows repeat the same numbers at every β.
- ceilings: a mask of exactly N = ⌊β·H·W⌋ pixels reaches at most IoU min(A, N) / max(A, N) and precision
  min(1, A / N) against an actor (union) of A pixels; `iou_ceiling` / `precision_ceiling` average these, so a β
  above the actor's area fraction (`actor_area`) visibly caps what any mask could score. For `grid` (half the
  frame whatever β) the ceilings are those of its own size.
Every metric: mean and 95% Student-t CI over videos (scenebias.analysis.stats.mean_ci).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torchvision.transforms.v2.functional as TF

from ..augment.foreground import foreground_mask
from ..config import data_dir
from ..data import transforms as T
from ..data.datasets import ClipDataset, uniform_clip_starts
from ..data.formats import VideoRecord
from ..data.synthetic import load_annotation
from ..data.synthetic.annotations import annotation_path  # noqa: F401 - re-exported for the CAM code
from ..errors import DataError
from ..io import atomic_path
from ..resolve import split
from .stats import mean_ci

BETAS = (0.3, 0.5, 0.7)
"""β values measured (FAME's default is 0.5); config key analysis.mask_quality.betas overrides them."""
MAX_VIDEOS = 300
"""At most this many train videos (evenly spaced over the class-sorted split list, so every class is in);
config key analysis.mask_quality.max_videos overrides it. 300 clips take seconds on one core."""
BATCH = 64
"""Clips per batch of mask computations (bounds memory at large crops)."""
VARIANTS: tuple[tuple[str, str], ...] = (
    ("fame", "paper"), ("fame", "official-code"), ("seed", "paper"), ("gauss", "paper"), ("grid", "paper"))
"""(mask, colour_mode); colour_mode only changes `fame`."""
METRICS = ("iou", "iou_frames", "precision", "recall")
COLUMNS = ["variant", "mask", "colour_mode", "beta", "videos",
           *[f"{m}_{s}" for m in METRICS for s in ("mean", "ci95")],
           "mask_area", "actor_area", "actor_frame_area", "iou_ceiling", "precision_ceiling",
           "flavour", "clip_len", "stride", "crop_size"]


def variant_name(mask: str, colour_mode: str) -> str:
    return f"fame[{colour_mode}]" if mask == "fame" else mask


# ----------------------------------------------------------------------------------------- metrics
def overlap_scores(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """IoU, precision and recall of binary masks over their last two dims (batched, broadcast).

    IoU of two empty masks is 1; precision of an empty prediction and recall of an empty truth are NaN
    (undefined; dropped from the means)."""
    pred, truth = pred.bool(), truth.bool()
    inter = (pred & truth).flatten(-2).sum(-1).float()
    p, t = pred.flatten(-2).sum(-1).float(), truth.flatten(-2).sum(-1).float()
    union = p + t - inter
    nan = torch.tensor(math.nan)
    return {"iou": torch.where(union > 0, inter / union.clamp(min=1), torch.tensor(1.0)),
            "precision": torch.where(p > 0, inter / p.clamp(min=1), nan),
            "recall": torch.where(t > 0, inter / t.clamp(min=1), nan)}


def size_ceilings(actor_pixels: torch.Tensor, mask_pixels: int) -> dict[str, torch.Tensor]:
    """Best IoU and precision any mask of exactly `mask_pixels` pixels can reach against actors of the given sizes."""
    a, n = actor_pixels.float(), float(mask_pixels)
    return {"iou_ceiling": torch.minimum(a, torch.tensor(n)) / torch.maximum(a, torch.tensor(n)).clamp(min=1),
            "precision_ceiling": (a / n).clamp(max=1.0) if n > 0 else torch.full_like(a, math.nan)}


# ----------------------------------------------------------------------------------------- geometry
def resize_center_crop_masks(masks: torch.Tensor, size: int) -> torch.Tensor:
    """(T, H, W) bool -> (T, size, size) bool: the geometry of `transforms.resize_center_crop` (short side to
    `size`, centre crop), nearest neighbour so the mask stays binary."""
    m = masks[:, None].to(torch.uint8)
    if min(m.shape[-2:]) != size:
        m = TF.resize(m, [size], interpolation=TF.InterpolationMode.NEAREST)
    return TF.center_crop(m, [size, size])[:, 0].bool()


def _middle_window(dataset: ClipDataset, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the video's frames as the dataset sees them, the frame indices of its test-mode middle clip)."""
    video = dataset.frames(index)  # restricted to start_frame..end_frame, as the dataset sees it
    n = video.shape[0]
    start = uniform_clip_starts(n, dataset.span, 1)[0]
    return video, (start + torch.arange(dataset.clip_len) * dataset.stride) % n  # looped like ClipDataset


def _clip(video: torch.Tensor, idx: torch.Tensor, size: int) -> torch.Tensor:
    clip = T.resize_center_crop(video[idx].permute(0, 3, 1, 2).float().div_(255.0), size)
    return clip.permute(1, 0, 2, 3).contiguous()


def test_clip(dataset: ClipDataset, index: int) -> torch.Tensor:
    """The test-mode clip (C, T, S, S) of video `index` (one clip: the middle window) in [0, 1]."""
    return _clip(*_middle_window(dataset, index), dataset.crop_size)


def clip_and_truth(dataset: ClipDataset, index: int, annotation: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """`test_clip` of video `index` and the actor masks of the same frames through the same crop (T, S, S) bool."""
    rec = dataset.records[index]
    video, idx = _middle_window(dataset, index)
    n = video.shape[0]
    masks = torch.from_numpy(load_annotation(annotation)["masks"])
    lo = rec.start_frame
    if masks.ndim != 3 or masks.shape[0] < lo + n or tuple(masks.shape[1:]) != tuple(video.shape[1:3]):
        raise DataError(f"{annotation}: actor masks of shape {tuple(masks.shape)} do not match the video "
                        f"{rec.path} ({lo + n} frames of {video.shape[1]}x{video.shape[2]} px)")
    truth = resize_center_crop_masks(masks[lo:lo + n][idx], dataset.crop_size)
    return _clip(video, idx, dataset.crop_size), truth


# ----------------------------------------------------------------------------------------- measuring
def score_batch(clips: torch.Tensor, truth: torch.Tensor, betas: Sequence[float],
                variants: Sequence[tuple[str, str]] = VARIANTS) -> pd.DataFrame:
    """Per clip × variant × β: overlap with the union truth and per frame, areas and size ceilings.

    clips (B, C, T, H, W) in [0, 1]; truth (B, T, H, W) bool. Returns a long frame with one row per clip,
    variant and β (columns clip, variant, mask, colour_mode, beta, the METRICS, mask_area, actor_area, ...)."""
    b, _, _, h, w = clips.shape
    union = truth.any(dim=1)
    actor_px = union.flatten(1).sum(1)
    base = {"clip": np.arange(b), "actor_area": (actor_px.float() / (h * w)).numpy(),
            "actor_frame_area": truth.flatten(2).float().mean(2).mean(1).numpy()}
    parts = []
    for mask, colour_mode in variants:
        for beta in betas:
            pred = foreground_mask(clips, mask, beta, colour_mode).bool()
            scores = overlap_scores(pred, union)
            scores["iou_frames"] = overlap_scores(pred[:, None], truth)["iou"].mean(dim=1)
            scores["mask_area"] = pred.flatten(1).float().mean(1)
            # grid's mask does not have ⌊βHW⌋ pixels; its ceiling is for its own size
            scores.update(size_ceilings(actor_px, int(math.floor(beta * h * w)) if mask != "grid"
                                        else int(pred[0].sum())))
            parts.append(pd.DataFrame({**base, "variant": variant_name(mask, colour_mode), "mask": mask,
                                       "colour_mode": colour_mode if mask == "fame" else "-",
                                       "beta": float(beta), **{k: v.numpy() for k, v in scores.items()}}))
    return pd.concat(parts, ignore_index=True)


def summarise(per_clip: pd.DataFrame) -> pd.DataFrame:
    """One row per variant × β: mean ± 95% CI over videos of every metric, mean areas and ceilings."""
    rows = []
    for (variant, mask, colour_mode, beta), g in per_clip.groupby(["variant", "mask", "colour_mode", "beta"],
                                                                  sort=False):
        row: dict[str, Any] = {"variant": variant, "mask": mask, "colour_mode": colour_mode, "beta": beta,
                               "videos": len(g)}
        for m in METRICS:
            row[f"{m}_mean"], row[f"{m}_ci95"], _ = mean_ci(g[m])
        for col in ("mask_area", "actor_area", "actor_frame_area", "iou_ceiling", "precision_ceiling"):
            row[col] = float(g[col].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def select_videos(n: int, limit: int) -> list[int]:
    """All indices if n <= limit, else `limit` evenly spaced ones (deterministic)."""
    if n <= limit:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, limit)})


def settings(cfg: dict[str, Any]) -> tuple[tuple[float, ...], int]:
    """(betas, max_videos): BETAS / MAX_VIDEOS unless the optional config section analysis.mask_quality sets them."""
    s = (cfg.get("analysis") or {}).get("mask_quality") or {}
    return tuple(float(b) for b in s.get("betas", BETAS)), int(s.get("max_videos", MAX_VIDEOS))


def mask_quality(cfg: dict[str, Any], out: str | Path | None = None) -> pd.DataFrame:
    """Measure every variant × β on the pretraining flavour's train split; write the summary CSV atomically
    to `out` (if given) only once every clip has been scored, and return it."""
    torch.set_num_threads(int(cfg.get("threads", 1)))
    betas, limit = settings(cfg)
    flavour = cfg["data"]["pretrain_flavour"]
    root = data_dir(cfg) / flavour
    records = split(cfg, flavour, "train").records
    chosen = [records[i] for i in select_videos(len(records), limit)]
    if not chosen:
        raise DataError(f"{root}: the train split of {flavour!r} lists no videos")
    c = cfg["clip"]
    dataset = ClipDataset(chosen, clip_len=c["clip_len"], stride=c["stride"], mode="test", num_test_clips=1,
                          crop_size=c["crop_size"], cache=False)
    annotations = [annotation_path(root, r) for r in chosen]
    parts = []
    with torch.no_grad():
        for lo in range(0, len(chosen), BATCH):
            pairs = [clip_and_truth(dataset, i, annotations[i]) for i in range(lo, min(lo + BATCH, len(chosen)))]
            scored = score_batch(torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]), betas)
            parts.append(scored.assign(clip=scored["clip"] + lo))
    table = summarise(pd.concat(parts, ignore_index=True)).assign(
        flavour=flavour, clip_len=c["clip_len"], stride=c["stride"], crop_size=c["crop_size"])[COLUMNS]
    if out is not None:
        with atomic_path(out) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
    return table
