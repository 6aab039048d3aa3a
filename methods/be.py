"""MoCo + BE: Background Erasing (Wang et al., CVPR 2021, §3.3, eqs. 3–7; Tables 3–4).

The distracting video adds one static frame of the clip to every frame:
    x_d[t] = (1 − λ)·x[t] + λ·x[k],  k a random frame of the same clip,  λ ~ U(0, γ),  γ = 0.3,
so its temporal difference is (1 − λ)·(x[t+1] − x[t]): the motion survives, scaled, while the static
background is perturbed. The distracted clip and an undistracted clip of the same video are the positive
pair (the distractor is applied to one view, before colour augmentation).

Paper vs. code (docs/methods.md, "moco+be"): `lambda_per="video"` draws λ per video (paper, default); `"batch"` draws one
λ for the whole batch (the authors' code). BE Table 4's other distractors replace the static frame:
`inter_frame` (a frame of another video), `gaussian_noise` (one noise image, the same for every frame),
`mixup` (another video, frame by frame), `cutmix` (a box of another video, the same box on every frame).

Hard negative (§3.3.2, eq. 7; `hard_negative: true`, the setting of BE Table 4, "optimized with Eq. 7"):
one other clip of the same video (a different start time: the loader's "triple" mode, view 2) joins the
negatives of its video's queries, so the task becomes clip-level: same background, other motion. One is
drawn per video and step (the paper: "more hard negatives have a similar result"); it goes through the query
encoder, gets the same colour augmentation as the other views and is not enqueued (docs/methods.md, "moco+be"). The
loss stays MoCo's symmetric one: the hard negative is one extra logit column in both query directions.
View 2's start differs from view 0's (the distracted clip); it may coincide with view 1's. Default off:
eq. 6, the suite's plain MoCo + BE.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from scenebias.plugins import register_method
from scenebias.train.moco import MoCo

from .fame import derangement
from .moco import MOCO_DEFAULTS, MOCO_VARIANTS, MocoObjective

GAMMA = 0.3  # upper bound of the mixing weight λ (BE §4.1)


def mixing_weights(b: int, gamma: float, per: str, generator: torch.Generator) -> torch.Tensor:
    """λ ~ U(0, γ): one per video, or one shared by the batch. Shape (B,)."""
    if per == "batch":
        return torch.rand((), generator=generator).expand(b) * gamma
    return torch.rand(b, generator=generator) * gamma


def blend(clips: torch.Tensor, distractor: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """(1 − λ)·x + λ·d for clips (B, C, T, H, W); `distractor` broadcasts (a static frame: T = 1)."""
    lam = lam.to(clips)[:, None, None, None, None]
    return (1 - lam) * clips + lam * distractor


def intra_frame(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random frame of each clip itself, (B, C, 1, H, W): BE's static distractor."""
    k = torch.randint(0, clips.shape[2], (clips.shape[0],), generator=generator).to(clips.device)
    return clips[torch.arange(clips.shape[0], device=clips.device), :, k].unsqueeze(2)


def cutmix_box(h: int, w: int, area: float, generator: torch.Generator) -> tuple[int, int, int, int]:
    """A box covering `area` of the frame at a random centre, clipped to the frame: (top, left, bottom, right)."""
    side_h, side_w = int(round(h * math.sqrt(area))), int(round(w * math.sqrt(area)))
    cy, cx = int(torch.randint(0, h, (), generator=generator)), int(torch.randint(0, w, (), generator=generator))
    top, left = max(cy - side_h // 2, 0), max(cx - side_w // 2, 0)
    return top, left, min(top + side_h, h), min(left + side_w, w)


def distract(clips: torch.Tensor, distractor: str, gamma: float, lambda_per: str,
             generator: torch.Generator) -> torch.Tensor:
    b = clips.shape[0]
    lam = mixing_weights(b, gamma, lambda_per, generator)
    if distractor == "intra_frame":
        return blend(clips, intra_frame(clips, generator), lam)
    others = clips[derangement(b, generator).to(clips.device)] if b > 1 else clips
    if distractor == "inter_frame":
        return blend(clips, intra_frame(others, generator), lam)
    if distractor == "gaussian_noise":
        noise = torch.rand(b, clips.shape[1], 1, *clips.shape[3:], generator=generator).to(clips)
        return blend(clips, noise, lam)
    if distractor == "mixup":
        return blend(clips, others, lam)
    if distractor == "cutmix":  # one box per batch keeps this loop-free; its area is the batch's mean λ
        top, left, bottom, right = cutmix_box(clips.shape[3], clips.shape[4], float(lam.mean()), generator)
        out = clips.clone()
        out[..., top:bottom, left:right] = others[..., top:bottom, left:right]
        return out
    raise ValueError(f"unknown BE distractor {distractor!r}")


def contrast_with_hard_negative(moco: MoCo, view_a: torch.Tensor, view_b: torch.Tensor, negative: torch.Tensor,
                                video_index: torch.Tensor, generator: torch.Generator | None = None
                                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MoCo's symmetric step (each view once query, once key; one EMA update; both keys enqueued in the MoCo's
    `enqueue` order) with eq. 7's hard negative: `negative` (B, C, T, H, W), another clip of each video, is
    encoded by the query encoder and added as one extra logit column for both query directions. It is not
    enqueued."""
    moco.momentum_update()
    q_a, q_b, n = (F.normalize(moco.encoder_q(x), dim=1) for x in (view_a, view_b, negative))
    k_a, k_b = moco.keys(view_a, generator), moco.keys(view_b, generator)
    loss, stats = moco.symmetric_loss(q_a, q_b, k_a, k_b, video_index, extra_negatives=n[:, None])
    stats["hard_neg_sim"] = ((q_a + q_b) * n).sum(dim=1).mean().detach() / 2
    return loss, stats


@register_method("moco+be", paper="BE §3.3 eqs. 3–7; Tables 3–4",
                 defaults={**MOCO_DEFAULTS, "distractor": "intra_frame", "gamma": GAMMA, "lambda_per": "video",
                           "hard_negative": False},
                 variants={**MOCO_VARIANTS,
                           "distractor": ["intra_frame", "inter_frame", "gaussian_noise", "mixup", "cutmix"],
                           "lambda_per": ["video", "batch"], "hard_negative": [False, True]})
class BackgroundErasingObjective(MocoObjective):
    """MoCo + BE: a clip with a static frame of itself blended in is a positive of the clean clip."""

    def __init__(self, backbone, num_classes, distractor, gamma, lambda_per, hard_negative, **moco):
        super().__init__(backbone, num_classes, **moco)
        self.distractor, self.gamma, self.lambda_per = distractor, gamma, lambda_per
        self.hard_negative = hard_negative
        if hard_negative:
            self.dataset_mode = "triple"  # view 2: another start time of the same video (eq. 7)

    def make_views(self, batch, generator):
        """(distracted view 0, view 1), plus view 2, the hard negative, when `hard_negative` is on."""
        views = batch["views"]
        distracted = distract(views[:, 0], self.distractor, self.gamma, self.lambda_per, generator)
        return (distracted, views[:, 1], views[:, 2]) if self.hard_negative else (distracted, views[:, 1])

    def training_loss(self, batch, augment, generator):
        if not self.hard_negative:
            return super().training_loss(batch, augment, generator)
        view_a, view_b, negative = self.make_views(batch, generator)
        return contrast_with_hard_negative(self.moco, augment(view_a), augment(view_b), augment(negative),
                                           batch["index"], generator)
