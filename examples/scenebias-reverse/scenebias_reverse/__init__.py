"""MoCo with a time-reversed key view: the worked example of docs/adding-a-method.md, as an installable plugin.

Playing the key clip backwards keeps every frame (so the scene is unchanged) but reverses the motion: a
representation that matches a clip with its reversal has learned to ignore the direction of motion. It is an
example of the plugin API, not a method of either paper.
"""
from __future__ import annotations

import torch

from scenebias.plugins import register_method
from scenebias.train.moco import MocoObjective


def reverse_time(clips: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> the same clips played backwards."""
    return clips.flip(dims=(2,))


@register_method("moco+reverse", parent="moco", paper="docs/adding-a-method.md (example)",
                 defaults={"reverse_p": 1.0})
class ReverseObjective(MocoObjective):
    """MoCo whose key view is played backwards with probability `reverse_p`."""

    def __init__(self, backbone, num_classes, reverse_p, **moco):
        super().__init__(backbone, num_classes, **moco)
        self.reverse_p = reverse_p

    def make_views(self, batch, generator):
        query, key = super().make_views(batch, generator)
        flip = (torch.rand(key.shape[0], generator=generator) < self.reverse_p).to(key.device)
        return query, torch.where(flip[:, None, None, None, None], reverse_time(key), key)
