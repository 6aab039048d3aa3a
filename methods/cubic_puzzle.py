"""Space-time cubic puzzles (Kim, Cho & Kweon, AAAI 2019), alone and with BE's consistency term
(Wang et al., CVPR 2021, §3.3.1, eqs. 3–5): BE Table 1 rows "ST Puzzles [26]" and "ST Puzzles + BE".

The clip is cut into N_PIECES = 4 cuboids that tile it — `axis="spatial"`: a 2×2 grid of the frame plane,
every piece spanning all frames; `axis="temporal"`: 4 consecutive chunks of full frames — which are shuffled
by one of the 4! = 24 permutations. The shared backbone encodes each piece (a Siamese network: one set of
weights for the four towers), the four features are concatenated in shuffled order and an MLP,
Linear(4D, 512)-ReLU-Dropout(0.5)-Linear(512, 24), names the permutation (the suite's head; the paper's fc
sizes are not reproduced). The pieces tile the clip exactly: no gaps or jitter between them, which
jigsaw-style tasks add against low-level shortcuts (edge continuity). With `be_consistency`, L = L_p + β·‖ψ(f(x^o)) − ψ(f(x^d))‖² (`scenebias.train.pretext`) over
the pieces, x^d cut and shuffled like x^o.
"""
from __future__ import annotations

import torch

from scenebias.plugins import register_method
from scenebias.train.pretext import (BETA, GAMMA, PretextObjective, classification_head, permutation_table,
                                     permute_pieces)

N_PIECES = 4       # 2×2 spatial grid or 4 temporal chunks
HIDDEN = 512       # width of the permutation classifier's hidden layer
DROPOUT = 0.5


def cut_pieces(clips: torch.Tensor, axis: str) -> torch.Tensor:
    """(N, C, T, H, W) -> (N, 4, C, t, h, w): the 2×2 spatial grid in row-major order (top-left, top-right,
    bottom-left, bottom-right) or 4 temporal chunks in time order. Sizes not divisible by the grid drop
    their remainder (the suite's crops and clip lengths are divisible)."""
    t, h, w = clips.shape[2:]
    if axis == "spatial":
        hh, hw = h // 2, w // 2
        grid = clips[..., : 2 * hh, : 2 * hw].unflatten(3, (2, hh)).unflatten(5, (2, hw))  # N C T 2 h 2 w
        pieces = grid.permute(0, 3, 5, 1, 2, 4, 6).flatten(1, 2)
    elif axis == "temporal":
        chunk = t // N_PIECES
        pieces = clips[:, :, : N_PIECES * chunk].unflatten(2, (N_PIECES, chunk)).movedim(2, 1)
    else:
        raise ValueError(f"unknown puzzle axis {axis!r}")
    if 0 in pieces.shape[3:]:
        raise ValueError(f"a clip of T×H×W = {t}×{h}×{w} is too small for a {axis} puzzle")
    return pieces


def join_pieces(pieces: torch.Tensor, axis: str) -> torch.Tensor:
    """(N, 4, C, t, h, w) -> (N, C, T, H, W): pieces put back in grid order (the inverse of `cut_pieces`)."""
    if axis == "spatial":
        grid = pieces.unflatten(1, (2, 2))                                       # N 2 2 C t h w
        return grid.permute(0, 3, 4, 1, 5, 2, 6).flatten(5, 6).flatten(3, 4)   # N C t 2h 2w
    return pieces.movedim(1, 2).flatten(2, 3)


@register_method("cubic_puzzle", paper="BE §3.3.1 eqs. 3–5, Table 1 rows 'ST Puzzles [26]' / 'ST Puzzles + BE'; "
                                       "Kim, Cho & Kweon, AAAI 2019",
                 defaults={"axis": "spatial", "be_consistency": False, "be_weight": BETA, "gamma": GAMMA},
                 variants={"axis": ["spatial", "temporal"]})
class CubicPuzzleObjective(PretextObjective):
    """Space-time cubic puzzle: predict the permutation of 4 shuffled pieces (+ optional BE consistency)."""

    def __init__(self, backbone, num_classes, axis, **be):
        super().__init__(backbone, num_classes, **be)
        self.axis = axis
        self.register_buffer("permutations", permutation_table(N_PIECES), persistent=False)
        self.num_transforms = len(self.permutations)  # 4! = 24
        self.puzzle_head = classification_head(N_PIECES * backbone.feature_dim, self.num_transforms,
                                               hidden=HIDDEN, dropout=DROPOUT)

    def transform(self, clips, labels):
        return permute_pieces(cut_pieces(clips, self.axis), labels, self.permutations)

    def head(self, features):
        return self.puzzle_head(features.flatten(1))  # concatenated in shuffled order

    def assemble(self, inputs):
        return join_pieces(inputs, self.axis)
