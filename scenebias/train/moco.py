"""MoCo (He et al., CVPR 2020) as used by FAME and BE: query encoder, EMA key encoder, queue, symmetric InfoNCE.

Constants follow docs/methods.md, "moco": m = 0.999, τ = 0.1 (FAME code; BE uses 0.07), projection
Linear(D, D)-ReLU-Linear(D, 128), L2-normalised. Both symmetric passes enqueue their keys; the EMA update
happens once per step. `enqueue` sets when the keys join the queue: `after_step` (default) scores both passes
against the queue of before the step; `between_passes` is the FAME code's order (its MoCo, the official one,
enqueues at the end of each pass), so pass 2 meets pass 1's keys. Shuffle-BN (DDP in the papers) is emulated
on one device by running the key encoder on `shuffle_bn_splits` disjoint shuffled sub-batches, so a query
cannot find its key through shared batch statistics.

Under DDP (`torchrun`, scenebias.train.distributed) the papers' version runs: the key clips of the global
batch are gathered, shuffled with one permutation for all ranks, each rank encodes its block of the shuffled
batch (in `shuffle_bn_splits // world_size` groups, at least one), and the keys go back to their owners. Keys
are gathered from every rank before they are enqueued, so the queue is the same on every rank, and with the
same global batch it is the one-process queue.

The queue also remembers which video each key came from, so the log can show how often a "negative" is in
fact another clip of the query's own video (a false negative that grows when the queue approaches the
dataset size).

`MocoObjective` is the training objective built on it (the `moco` method and the base class of moco+be, moco+fame,
dsm); `contrast_with_hard_negative` is the symmetric step with one extra negative per video (BE eq. 7, DSM).
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..plugins import TrainObjective
from . import distributed as ddp

ENQUEUE_ORDERS = ("after_step", "between_passes")  # when the symmetric loss's keys join the queue

# The options of every MoCo-based method (`moco`, and through `register_method(..., parent="moco")` moco+be and its
# presets, moco+fame, dsm); `enqueue`: docs/methods.md, "moco" (after_step: the suite's order; between_passes: the
# authors' code's). Defaults are the FAME code's (τ = 0.1, 128-d, m = 0.999); the queue is sized per preset.
MOCO_DEFAULTS = {"queue_size": 2048, "momentum": 0.999, "temperature": 0.1, "dim": 128, "shuffle_bn_splits": 2,
                 "enqueue": "after_step"}
MOCO_VARIANTS = {"enqueue": list(ENQUEUE_ORDERS)}


def projection_head(in_dim: int, out_dim: int = 128) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


def info_nce_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, tau: float) -> torch.Tensor:
    """Logits [q·k⁺, q·queue] / τ for L2-normalised q, k (B, d) and queue (K, d); the positive is column 0."""
    positive = (q * k).sum(dim=1, keepdim=True)
    negatives = q @ queue.T
    return torch.cat([positive, negatives], dim=1) / tau


class MoCo(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, dim: int = 128, queue_size: int = 2048,
                 momentum: float = 0.999, temperature: float = 0.1, shuffle_bn_splits: int = 2,
                 enqueue: str = "after_step") -> None:
        super().__init__()
        if enqueue not in ENQUEUE_ORDERS:
            raise ValueError(f"MoCo enqueue {enqueue!r}: expected one of {ENQUEUE_ORDERS}")
        self.enqueue_order = enqueue
        self.m = momentum
        self.tau = temperature
        self.shuffle_bn_splits = shuffle_bn_splits
        self.encoder_q = nn.Sequential(backbone, projection_head(feature_dim, dim))
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_video", torch.full((queue_size,), -1, dtype=torch.long))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @property
    def backbone(self) -> nn.Module:
        return self.encoder_q[0]

    @torch.no_grad()
    def momentum_update(self) -> None:
        for p_q, p_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            p_k.mul_(self.m).add_(p_q.detach(), alpha=1.0 - self.m)
        for b_q, b_k in zip(self.encoder_q.buffers(), self.encoder_k.buffers()):
            b_k.copy_(b_q)

    @torch.no_grad()
    def keys(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Key features with shuffle-BN emulation: BN statistics come from disjoint shuffled sub-batches."""
        if ddp.is_distributed():
            return self._keys_across_ranks(x, generator)
        splits = max(1, min(self.shuffle_bn_splits, x.shape[0] // 2))
        order = torch.randperm(x.shape[0], generator=generator, device="cpu").to(x.device)
        chunks = [self.encoder_k(chunk) for chunk in x[order].chunk(splits)]
        k = torch.empty_like(torch.cat(chunks))
        k[order] = torch.cat(chunks)
        return F.normalize(k, dim=1)

    @torch.no_grad()
    def _keys_across_ranks(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Shuffle-BN over ranks (MoCo's batch_shuffle_ddp / batch_unshuffle_ddp): BN groups mix clips of all
        ranks in an order no query knows. Rank 0 draws the permutation of the global batch, as one process would
        (same size, same generator), so with `shuffle_bn_splits` = world size the groups are the one-process ones."""
        world, me, n = ddp.world_size(), ddp.rank(), x.shape[0]
        x_all = ddp.concat_all_gather(x)
        order = ddp.broadcast_(torch.randperm(x_all.shape[0], generator=generator, device="cpu").to(x.device))
        groups = max(1, min(self.shuffle_bn_splits // world, n // 2))
        mine = x_all[order.view(world, n)[me]]
        k_shuffled = ddp.concat_all_gather(torch.cat([self.encoder_k(chunk) for chunk in mine.chunk(groups)]))
        k = torch.empty_like(k_shuffled)
        k[order] = k_shuffled
        return F.normalize(k[me * n: (me + 1) * n], dim=1)

    @torch.no_grad()
    def enqueue(self, k: torch.Tensor, video_index: torch.Tensor) -> None:
        """Add keys (B, d) and their videos to the FIFO queue; under DDP every rank's, gathered in rank order."""
        self._write_queue(ddp.concat_all_gather(k), ddp.concat_all_gather(video_index))

    @torch.no_grad()
    def enqueue_passes(self, keys: Sequence[torch.Tensor], video_index: torch.Tensor) -> None:
        """Keys of several passes over one batch (the symmetric loss's two), gathered pass by pass, so that under
        DDP the queue holds [pass 1 of the global batch, pass 2, ...] in the one-process order. On one process
        this is `enqueue(torch.cat(keys), video_index repeated)`."""
        self._write_queue(torch.cat([ddp.concat_all_gather(k) for k in keys]),
                          ddp.concat_all_gather(video_index).repeat(len(keys)))

    @torch.no_grad()
    def _write_queue(self, k: torch.Tensor, video_index: torch.Tensor) -> None:
        size = self.queue.shape[0]
        slots = (self.queue_ptr + torch.arange(k.shape[0], device=k.device)) % size
        self.queue[slots] = k.to(self.queue.dtype)  # keys may be bf16 under autocast; the queue stays fp32
        self.queue_video[slots] = video_index
        self.queue_ptr.copy_((self.queue_ptr + k.shape[0]) % size)

    def contrast(self, q: torch.Tensor, k: torch.Tensor, video_index: torch.Tensor,
                 extra_negatives: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """InfoNCE of queries q against keys k and the current queue (optionally plus per-query extra negatives)."""
        queue = self.queue.clone().detach()
        logits = info_nce_logits(q, k, queue, self.tau)
        if extra_negatives is not None:  # (B, E, d): e.g. BE's hard negatives from the same video
            logits = torch.cat([logits, torch.einsum("bd,bed->be", q, extra_negatives) / self.tau], dim=1)
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, target)
        with torch.no_grad():
            same_video = (self.queue_video[None, :] == video_index[:, None]).float().mean()
            stats = {
                "instance_acc": (logits.argmax(dim=1) == 0).float().mean(),
                "pos_sim": logits[:, 0].mean() * self.tau,
                "neg_sim": logits[:, 1: 1 + queue.shape[0]].mean() * self.tau,
                "queue_same_video": same_video,
            }
        return loss, stats

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor, video_index: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Symmetric loss: each view is once the query and once the key; mean of the two InfoNCE terms."""
        self.momentum_update()
        q_a = F.normalize(self.encoder_q(view_a), dim=1)
        q_b = F.normalize(self.encoder_q(view_b), dim=1)
        k_a = self.keys(view_a, generator)
        k_b = self.keys(view_b, generator)
        return self.symmetric_loss(q_a, q_b, k_a, k_b, video_index)

    def symmetric_loss(self, q_a: torch.Tensor, q_b: torch.Tensor, k_a: torch.Tensor, k_b: torch.Tensor,
                       video_index: torch.Tensor, extra_negatives: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Pass 1 scores q_a against k_b, pass 2 q_b against k_a; the loss and statistics are the passes' means.

        `enqueue_order` sets which queue pass 2 sees. `after_step`: the queue of before the step, like pass 1;
        [k_a, k_b] are enqueued afterwards. `between_passes` (the authors' code): pass 1's keys k_b are enqueued
        first, so each q_b meets k_b, the key of its own clip, among its negatives; then k_a. Each enqueue
        gathers over DDP ranks, so the queue stays the one-process queue either way."""
        between = self.enqueue_order == "between_passes"
        loss_ab, stats_ab = self.contrast(q_a, k_b, video_index, extra_negatives)
        if between:
            self.enqueue(k_b, video_index)
        loss_ba, stats_ba = self.contrast(q_b, k_a, video_index, extra_negatives)
        self.enqueue_passes([k_a] if between else [k_a, k_b], video_index)
        stats = {key: (stats_ab[key] + stats_ba[key]) / 2 for key in stats_ab}
        return (loss_ab + loss_ba) / 2, stats


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


class MocoObjective(TrainObjective):
    """MoCo: InfoNCE between two clips of one video, EMA key encoder, queue of negatives.

    The `moco` method (methods/moco.py registers it) and the base of every MoCo-based method: a subclass takes its
    own options, passes `**moco` on, overrides `make_views` (and `training_loss` for extra negatives, see
    `contrast_with_hard_negative`) and registers with `register_method(..., parent="moco")`, which gives it
    `MOCO_DEFAULTS` and `MOCO_VARIANTS`."""

    dataset_mode = "pair"

    def __init__(self, backbone, num_classes, queue_size, momentum, temperature, dim, shuffle_bn_splits, enqueue):
        super().__init__(backbone, num_classes)
        del self.backbone  # owned by the MoCo query encoder; exposed through the property below
        self.moco = MoCo(backbone, backbone.feature_dim, dim=dim, queue_size=queue_size, momentum=momentum,
                         temperature=temperature, shuffle_bn_splits=shuffle_bn_splits, enqueue=enqueue)

    @property
    def backbone(self):
        return self.moco.backbone

    def make_views(self, batch, generator):
        """The query and key views (B, C, T, H, W) in [0, 1], before colour augmentation. Variants override this."""
        return batch["views"][:, 0], batch["views"][:, 1]

    def training_loss(self, batch, augment, generator):
        view_a, view_b = self.make_views(batch, generator)[:2]
        return self.moco(augment(view_a), augment(view_b), batch["index"], generator)
