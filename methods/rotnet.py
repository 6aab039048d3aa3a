"""3-D RotNet (Jing, Yang, Liu & Tian, arXiv:1811.11387, 2018), alone and with BE's consistency term
(Wang et al., CVPR 2021, §3.3.1, eqs. 3–5): BE Table 1 rows "3D RotNet [23]" and "3D RotNet + BE".

The pretext transform set R is the four rotations of the frame plane by r·90°, r ∈ {0, 1, 2, 3}, the same
rotation on every frame (crops are square, so the clip keeps its shape); a linear layer on the pooled
backbone feature names r (M = 4). `rotations`:
  "all"    (default) every clip enters the batch in all four rotations: BE eq. 3's L_p = −1/M Σ_{r∈R}
           exactly, and what image RotNet (Gidaris et al., ICLR 2018) found to train best, the four rotated
           copies of an input in one batch; the backbone sees 4× the clips;
  "random" one uniformly drawn rotation per clip: eq. 3 in expectation, at the cost of a plain step.
With `be_consistency`, L = L_p + β·‖ψ(f(x^o)) − ψ(f(x^d))‖² (`scenebias.train.pretext`), x^d rotated
like x^o.
"""
from __future__ import annotations

import torch
from torch import nn

from scenebias.plugins import register_method
from scenebias.train.pretext import BETA, GAMMA, PretextObjective

ROTATIONS = 4  # M: 0°, 90°, 180°, 270°


def rotate(clips: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Clips (N, C, T, H, W) rotated by k·90° in the (H, W) plane (as torch.rot90), every frame alike:
    k (N, R) gives (N, R, C, T, H, W)."""
    if clips.shape[-1] != clips.shape[-2]:
        raise ValueError(f"rotation needs square frames; got {clips.shape[-2]}x{clips.shape[-1]}")
    rotated = torch.stack([clips.rot90(r, dims=(-2, -1)) for r in range(ROTATIONS)], dim=1)
    return rotated[torch.arange(clips.shape[0], device=clips.device)[:, None], k.to(clips.device)]


@register_method("rotnet", paper="BE §3.3.1 eqs. 3–5, Table 1 rows '3D RotNet [23]' / '3D RotNet + BE'; "
                                 "Jing, Yang, Liu & Tian, arXiv:1811.11387 (2018)",
                 defaults={"rotations": "all", "be_consistency": False, "be_weight": BETA, "gamma": GAMMA},
                 variants={"rotations": ["all", "random"]})
class RotNetObjective(PretextObjective):
    """3-D RotNet: predict which of four 90° rotations a clip went through (+ optional BE consistency)."""

    num_transforms = ROTATIONS

    def __init__(self, backbone, num_classes, rotations, **be):
        super().__init__(backbone, num_classes, **be)
        self.rotations = rotations
        self.rotation_head = nn.Linear(backbone.feature_dim, ROTATIONS)

    def draw_labels(self, b, generator):
        if self.rotations == "all":
            return torch.arange(ROTATIONS).repeat(b, 1)
        return super().draw_labels(b, generator)

    def transform(self, clips, labels):
        return rotate(clips, labels).unsqueeze(2)  # one encoder input per rotated clip: P = 1

    def head(self, features):
        return self.rotation_head(features[:, 0])

    def assemble(self, inputs):
        return inputs[:, 0]
