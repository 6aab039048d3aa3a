"""BE's distracting videos (Wang et al., CVPR 2021, §3.2, eqs. 1–2; §4.4, Table 4).

The distracting video adds one static frame of the clip to every frame:
    x_d[t] = (1 − λ)·x[t] + λ·x[k],  k a random frame of the same clip,  λ ~ U(0, γ),  γ = 0.3,
so its temporal difference is (1 − λ)·(x[t+1] − x[t]): the motion survives, scaled, while the static
background is perturbed. `moco+be` applies it to one view before colour augmentation; the pretext tasks'
consistency term (scenebias.train.pretext) to the input clip.

Paper vs. code (docs/methods.md, "moco+be"): `lambda_per="video"` draws λ per video (paper); `"batch"` draws one λ
for the whole batch (the authors' code). BE Table 4's other distractors replace the static frame:
`inter_frame` (a frame of another video), `gaussian_noise` (one white Gaussian noise image, the same for every
frame), `mixup` (another video, frame by frame), `cutmix` (a box of another video, the same box on every frame);
the other video is a `derangement` of the batch.
"""
from __future__ import annotations

import math

import torch

from ..data.transforms import KINETICS_MEAN, KINETICS_STD
from .pairing import derangement

GAMMA = 0.3  # upper bound of the mixing weight λ (BE §4.1)
DISTRACTORS = ("intra_frame", "inter_frame", "gaussian_noise", "mixup", "cutmix")  # BE itself, then Table 4's


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


def gaussian_noise(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One white Gaussian noise image per clip, (B, C, 1, H, W): BE Table 4's "Gaussian Noise" ("an identical White
    Gaussian Noise on each frame", BE §4.4). Standard normal per pixel and channel in the network's input space, as
    BE's code draws its noise (`torch.randn`, on normalised clips): N(μ_c, σ_c²) in pixel values, with the input
    normalisation's μ and σ (Kinetics'), so that after normalisation the blend is (1 − λ)·x̂ + λ·z, z ~ N(0, 1).
    Clipped to [0, 1] (about 3 % of the values) so the distracted clip stays an image (docs/methods.md, "moco+be")."""
    b, c, _, h, w = clips.shape
    z = torch.randn(b, c, 1, h, w, generator=generator, dtype=torch.float64)
    mean = torch.tensor(KINETICS_MEAN, dtype=torch.float64).view(1, c, 1, 1, 1)
    std = torch.tensor(KINETICS_STD, dtype=torch.float64).view(1, c, 1, 1, 1)
    return (mean + std * z).clamp_(0.0, 1.0).to(clips)


def cutmix_box(h: int, w: int, area: float, generator: torch.Generator) -> tuple[int, int, int, int]:
    """A box covering `area` of the frame at a random centre, clipped to the frame: (top, left, bottom, right)."""
    side_h, side_w = int(round(h * math.sqrt(area))), int(round(w * math.sqrt(area)))
    cy, cx = int(torch.randint(0, h, (), generator=generator)), int(torch.randint(0, w, (), generator=generator))
    top, left = max(cy - side_h // 2, 0), max(cx - side_w // 2, 0)
    return top, left, min(top + side_h, h), min(left + side_w, w)


def distract(clips: torch.Tensor, distractor: str, gamma: float, lambda_per: str,
             generator: torch.Generator) -> torch.Tensor:
    """The distracted clips (B, C, T, H, W): (1 − λ)·x + λ·d with d one of `DISTRACTORS` (`cutmix` pastes a box
    instead), λ ~ U(0, `gamma`) per video or per batch (`lambda_per`); same shape, dtype and range as `clips`."""
    b = clips.shape[0]
    lam = mixing_weights(b, gamma, lambda_per, generator)
    if distractor == "intra_frame":
        return blend(clips, intra_frame(clips, generator), lam)
    others = clips[derangement(b, generator).to(clips.device)] if b > 1 else clips
    if distractor == "inter_frame":
        return blend(clips, intra_frame(others, generator), lam)
    if distractor == "gaussian_noise":
        return blend(clips, gaussian_noise(clips, generator), lam)
    if distractor == "mixup":
        return blend(clips, others, lam)
    if distractor == "cutmix":  # one box per batch keeps this loop-free; its area is the batch's mean λ
        top, left, bottom, right = cutmix_box(clips.shape[3], clips.shape[4], float(lam.mean()), generator)
        out = clips.clone()
        out[..., top:bottom, left:right] = others[..., top:bottom, left:right]
        return out
    raise ValueError(f"unknown BE distractor {distractor!r}")

