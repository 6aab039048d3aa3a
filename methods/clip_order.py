"""Clip Order Prediction, VCOP (Xu et al., CVPR 2019, §3), alone and with BE's consistency term
(Wang et al., CVPR 2021, §3.3.1, eqs. 3–5): BE Table 1 rows "Clip Order [57]" and "Clip Order + BE".

The loader hands a clip of 3·clip_len frames (`clip_len_factor = 3`); it is cut into N_CLIPS = 3 consecutive
sub-clips of clip_len frames (VCOP samples them with gaps; the suite's sampler gives one contiguous span),
which are shuffled by one of the 3! = 6 permutations. The shared backbone encodes every sub-clip; VCOP's
order-prediction head concatenates the features of every pair (i < j) in shuffled order, maps each pair
through a shared Linear(2D, 512)-ReLU, concatenates the 3 pair features, applies dropout 0.5 and a
Linear(3·512, 6) names the permutation. With `be_consistency`, L = L_p + β·‖ψ(f(x^o)) − ψ(f(x^d))‖²
(`scenebias.train.pretext`) over the sub-clips, x^d shuffled like x^o.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from scenebias.plugins import register_method
from scenebias.train.pretext import BETA, GAMMA, PretextObjective, permutation_table, permute_pieces

N_CLIPS = 3          # sub-clips per tuple (VCOP's tuple length)
PAIR_HIDDEN = 512    # VCOP's pairwise fc7 width
DROPOUT = 0.5        # VCOP, before the final fc8


def split_subclips(clips: torch.Tensor, n: int = N_CLIPS) -> torch.Tensor:
    """(N, C, n·L, H, W) -> (N, n, C, L, H, W): n consecutive sub-clips of L frames (a remainder of fewer
    than n frames — only in hand-built batches; the loader gives exactly n·clip_len — is dropped)."""
    length = clips.shape[2] // n
    if length == 0:
        raise ValueError(f"clip order needs at least {n} frames; got {clips.shape[2]}")
    return clips[:, :, : n * length].unflatten(2, (n, length)).movedim(2, 1)


def concat_subclips(subclips: torch.Tensor) -> torch.Tensor:
    """(N, n, C, L, H, W) -> (N, C, n·L, H, W): the sub-clips played one after another."""
    return subclips.movedim(1, 2).flatten(2, 3)


class PairwiseOrderHead(nn.Module):
    """VCOP's head: Linear(2D, 512)-ReLU on every ordered pair (i < j) of sub-clip features, concatenated,
    dropout, Linear(pairs·512, n!)."""

    def __init__(self, feature_dim: int, n: int = N_CLIPS) -> None:
        super().__init__()
        self.register_buffer("pairs", torch.tensor(list(itertools.combinations(range(n), 2))), persistent=False)
        self.pair = nn.Linear(2 * feature_dim, PAIR_HIDDEN)
        self.dropout = nn.Dropout(DROPOUT)
        self.order = nn.Linear(len(self.pairs) * PAIR_HIDDEN, len(permutation_table(n)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (N, n, D) in shuffled order -> (N, n!) logits."""
        pairs = features[:, self.pairs].flatten(2)            # (N, pairs, 2D): [f_i, f_j]
        return self.order(self.dropout(F.relu(self.pair(pairs)).flatten(1)))


@register_method("clip_order", paper="BE §3.3.1 eqs. 3–5, Table 1 rows 'Clip Order [57]' / 'Clip Order + BE'; "
                                     "Xu et al., CVPR 2019 (VCOP)",
                 defaults={"be_consistency": False, "be_weight": BETA, "gamma": GAMMA})
class ClipOrderObjective(PretextObjective):
    """VCOP: predict the permutation of 3 shuffled consecutive sub-clips (+ optional BE consistency)."""

    clip_len_factor = N_CLIPS

    def __init__(self, backbone, num_classes, **be):
        super().__init__(backbone, num_classes, **be)
        self.register_buffer("permutations", permutation_table(N_CLIPS), persistent=False)
        self.num_transforms = len(self.permutations)  # 3! = 6
        self.order_head = PairwiseOrderHead(backbone.feature_dim)

    def transform(self, clips, labels):
        return permute_pieces(split_subclips(clips), labels, self.permutations)

    def head(self, features):
        return self.order_head(features)

    def assemble(self, inputs):
        return concat_subclips(inputs)
