"""Pretext-task objectives with BE's consistency term (Wang et al., CVPR 2021, §3.3.1, eqs. 3–5; Table 1).

A pretext task (BE eq. 3) is an M-way classification: a transformation r from a set R of M operations is
applied to the clip and the network names it, L_p = −1/M Σ_{r∈R} L_ce(F(r(x)), r). A method file supplies
the task: `draw_labels` (which r for each clip), `transform` (r(x) as the encoder's inputs: exact and pure),
`head` (their pooled features → M logits) and `assemble` (the inputs laid out as one clip, for the views).
This base owns the rest, so every task gets the same plug-in BE:

    L = L_p + β·L_be,   L_be = ‖ψ(f(x^o)) − ψ(f(x^d))‖²                          (BE eqs. 4–5)

x^d is the BE-distracted copy of the input clip x^o (`scenebias.augment.distractors.distract`, intra-video
frame, λ ~ U(0, γ) per video), f the backbone's feature map, ψ spatial global max pooling (C×T×H×W → C×T), the
norm taken as the mean squared error over elements, β = 1, γ = 0.3 (BE §3.3.1, §4.1).

Order of operations, and why:
1. the pretext labels are drawn first, so a seed gives the same task with and without BE;
2. x^d is made from the raw clip (BE distracts before augmentation, like `moco+be`);
3. colour augmentation runs on x^o and x^d as whole clips; it draws its parameters per clip, so the two
   copies get independent augmentations, BE's a¹ and a² (§3.2). Rotations and permutations of sub-clips
   commute with these per-clip, temporally consistent colour ops (a square blur kernel is symmetric under
   90° rotations), so augmenting before the transform equals augmenting each transformed input — except for
   the spatial puzzle, whose pieces then share one blur across their borders (one augmented video, cut);
4. the same r is applied to x^o and x^d (the label is drawn per video and reused), so ψ(f(·)) compares the
   same transformed content, clean vs. distracted: the term then penalises only what the static frame
   changed, never the pretext transform itself.
L_p is computed on x^o's transforms only (eq. 3 is stated for the input x; BE's code for this part is not
public). Both copies and all pieces go through the backbone in one call (shared BatchNorm statistics).
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from scenebias.augment.distractors import GAMMA, distract  # GAMMA: upper bound of BE's λ (BE §4.1)
from scenebias.plugins import TrainObjective

BETA = 1.0   # weight of the consistency term (BE §3.3.1, eq. 5)


def spatial_max_pool(feature_map: torch.Tensor) -> torch.Tensor:
    """ψ: global max over space, (..., C, T, H, W) -> (..., C, T) (BE eq. 4; robust to the copies' crops)."""
    return feature_map.amax(dim=(-2, -1))


def consistency(map_o: torch.Tensor, map_d: torch.Tensor) -> torch.Tensor:
    """L_be = ‖ψ(f(x^o)) − ψ(f(x^d))‖², as the mean over elements (BE eq. 4)."""
    return F.mse_loss(spatial_max_pool(map_o), spatial_max_pool(map_d))


def classification_head(in_dim: int, num_classes: int, hidden: int = 0, dropout: float = 0.0) -> nn.Sequential:
    """Linear(in, M), or Linear(in, hidden)-ReLU-Dropout-Linear(hidden, M) when `hidden` > 0."""
    if hidden <= 0:
        return nn.Sequential(nn.Linear(in_dim, num_classes))
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


def permutation_table(n: int) -> torch.Tensor:
    """All n! permutations of range(n) in lexicographic order, (n!, n) long: row `label` is an order."""
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long)


def permute_pieces(pieces: torch.Tensor, labels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Shuffle each sample's pieces (N, P, ...) by permutation labels (N, R): out[n, r, i] = pieces[n, o[i]]
    with o = table[labels[n, r]], i.e. position i shows piece o[i]. Returns (N, R, P, ...)."""
    order = table.to(pieces.device)[labels.to(pieces.device)]                       # (N, R, P)
    return pieces[torch.arange(pieces.shape[0], device=pieces.device)[:, None, None], order]


class PretextObjective(TrainObjective):
    """Base of the pretext-task methods: M-way classification of a transform, plus BE's consistency term.

    Subclasses set `num_transforms` (M) and implement
    `transform(clips (N, C, T, H, W), labels (N, R)) -> (N, R, P, C, t, h, w)`: r(x) for each of a clip's R
    labels, as P encoder inputs (a rotated clip: P = 1; shuffled sub-clips or puzzle pieces: P = 3 or 4), and
    `head(features (N, P, D)) -> (N, M)` logits, and `assemble(inputs (N, P, C, t, h, w)) -> (N, C, T, H, W)`,
    which lays the P inputs out as one clip (the views: a shuffled puzzle shows as one video). `draw_labels`
    draws R = 1 transform per clip uniformly; RotNet overrides it with all M (eq. 3's full sum).
    """

    dataset_mode = "single"
    num_transforms: int = 0

    def __init__(self, backbone: nn.Module, num_classes: int, be_consistency: bool, be_weight: float,
                 gamma: float) -> None:
        super().__init__(backbone, num_classes)
        self.be_consistency, self.be_weight, self.gamma = be_consistency, be_weight, gamma

    # ---------------------------------------------------------------------------------- the task (subclass)
    def draw_labels(self, b: int, generator: torch.Generator) -> torch.Tensor:
        """One transform per clip, uniformly: (B, 1) long on the CPU."""
        return torch.randint(0, self.num_transforms, (b, 1), generator=generator)

    def transform(self, clips: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def assemble(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -------------------------------------------------------------------------------------------- shared
    def _copies(self, clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(V, B, C, T, H, W): x^o, and x^d when the consistency term is on."""
        if not self.be_consistency:
            return clips[None]
        return torch.stack([clips, distract(clips, "intra_frame", self.gamma, "video", generator)])

    def _transformed(self, copies: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Apply each clip's transforms (B, R) to both of its copies: (V, B, ...) -> (V, B, R, P, C, t, h, w)."""
        v, b = copies.shape[:2]
        return self.transform(copies.flatten(0, 1), labels.repeat(v, 1)).unflatten(0, (v, b))

    def make_views(self, batch, generator):
        """The transformed clips before colour augmentation, each (B, C, T, H, W) with its pieces laid out in
        shuffled order: x^o's R transforms, then x^d's (when the consistency term is on)."""
        labels = self.draw_labels(batch["clip"].shape[0], generator)
        inputs = self._transformed(self._copies(batch["clip"], generator), labels)   # (V, B, R, P, ...)
        return tuple(self.assemble(pieces) for pieces in inputs.movedim(1, 2).flatten(0, 1))

    def training_loss(self, batch, augment, generator):
        clips = batch["clip"]
        b = clips.shape[0]
        labels = self.draw_labels(b, generator)
        copies = self._copies(clips, generator)
        copies = augment(copies.flatten(0, 1)).unflatten(0, copies.shape[:2])
        inputs = self._transformed(copies, labels)                     # (V, B, R, P, C, t, h, w)
        v, _, r, p = inputs.shape[:4]
        maps = self.backbone.feature_map(inputs.flatten(0, 3))        # one pass: shared BN statistics
        maps = maps.unflatten(0, (v, b * r, p))                        # (V, N, P, D, T', H', W')
        logits = self.head(maps[0].mean(dim=(-3, -2, -1)))             # global average pool = backbone(x)
        targets = labels.to(logits.device).flatten()
        loss_p = F.cross_entropy(logits, targets)
        stats = {"pretext_loss": loss_p.detach(),
                 "pretext_acc": (logits.argmax(dim=1) == targets).float().mean()}
        if not self.be_consistency:
            return loss_p, stats
        loss_be = consistency(maps[0], maps[1])
        stats["consistency"] = loss_be.detach()
        return loss_p + self.be_weight * loss_be, stats


__all__ = ["BETA", "GAMMA", "PretextObjective", "classification_head", "consistency", "permute_pieces",
           "permutation_table", "spatial_max_pool"]
