"""Fine-tuning: a copy of the backbone + Dropout + Linear, all trained; then the multi-clip test.

Schedules of the papers (docs/methods.md, "Fine-tuning") are available as presets, `FinetuneConfig.preset("fame" | "be")`;
the plain defaults are a short schedule for tiny CPU runs.

Under `torchrun` (scenebias.train.distributed) fine-tuning is data-parallel: `batch_size` stays the global
batch, whose clips and order are the one-process loader's; each rank trains on a contiguous part of it, and
the test videos are split over the ranks and their predictions gathered. Every rank returns the same results.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from ..data.transforms import check_stages, colour_augment
from ..device import pin_memory, to_device
from ..errors import ConfigError
from ..train import distributed as ddp
from ..train import precision as amp
from ..train.step import optimisation_step, prepare
from .protocol import (
    Normalize,
    _worker_init,
    batch_clips,
    check_milestones,
    check_non_negative,
    check_positive,
    check_result_names,
    classification_metrics,
    config_from_dict,
    kinetics_normalize,
    make_loader,
    milestone_epochs,
    multi_clip_predict,
    seed_everything,
    seeded_generator,
    with_loader_workers,
)
from .registry import EvaluationInputs, register_protocol

RESERVED = ("train_top1", "train_loss")

PRESETS: dict[str, dict[str, Any]] = {
    # FAME (UCF101): SGD lr 0.025, wd 1e-4, x0.1 at 60/120 of 150 epochs, dropout 0.7
    "fame": {"epochs": 150, "lr": 0.025, "weight_decay": 1e-4, "milestones": (60 / 150, 120 / 150),
             "gamma": 0.1, "dropout": 0.7},
    # BE: lr 0.001, wd 1e-8, x0.3 at 10/20/25/30/35/40 of 45 epochs, dropout 0.5
    "be": {"epochs": 45, "lr": 0.001, "weight_decay": 1e-8,
           "milestones": tuple(e / 45 for e in (10, 20, 25, 30, 35, 40)), "gamma": 0.3, "dropout": 0.5},
}

# Colour augmentation of the training clips (`FinetuneConfig.colour`), FAME's eval.py (moco/loader.py,
# Augment_GPU_ft): grayscale p 0.2, then ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8, per clip, no blur. Keys a config
# leaves out take these.
FINETUNE_COLOUR: dict[str, Any] = {"jitter": (0.4, 0.4, 0.4, 0.1), "p_jitter": 0.8, "p_gray": 0.2, "p_blur": 0.0,
                                   "stages": ("grayscale", "jitter", "blur")}


@dataclass
class FinetuneConfig:
    epochs: int = 10
    lr: float = 0.01
    weight_decay: float = 1e-4
    momentum: float = 0.9
    milestones: tuple[float, ...] = (0.6, 0.8)  # fractions of `epochs`
    gamma: float = 0.1
    dropout: float = 0.5
    batch_size: int = 8  # training clips per step
    test_batch_size: int = 4  # test videos per forward (each with N clips)
    num_workers: int = 0
    progress: bool = True  # tqdm bar per epoch
    # Mixed precision and memory layout (scenebias.train.precision): "auto" is bf16 autocast + channels_last_3d
    # on CUDA and fp32 + contiguous elsewhere, for the training steps and the test forward passes.
    precision: str = "auto"
    channels_last: bool | str = "auto"
    # Colour augmentation of the training clips before normalisation (colour_augment's jitter, p_jitter, p_gray,
    # p_blur, stages; unset keys: FINETUNE_COLOUR); None: none (the suite's default).
    colour: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        o = "FinetuneConfig"
        check_positive(o, epochs=self.epochs, lr=self.lr, gamma=self.gamma, batch_size=self.batch_size,
                       test_batch_size=self.test_batch_size)
        check_non_negative(o, weight_decay=self.weight_decay, momentum=self.momentum, num_workers=self.num_workers)
        check_milestones(o, self.milestones)
        self.milestones = tuple(float(m) for m in self.milestones)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{o}.dropout must be in [0, 1), got {self.dropout!r}")
        amp.check_options(o, self.precision, self.channels_last)
        if self.colour is not None:
            self.colour = _colour_options(o, self.colour)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "FinetuneConfig":
        return config_from_dict(cls, data)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "FinetuneConfig":
        """The published schedule `name` ("fame" or "be"), with optional overrides."""
        if name not in PRESETS:
            raise ConfigError(f"unknown fine-tune preset {name!r}; expected one of: {', '.join(sorted(PRESETS))}")
        return cls.from_dict({**PRESETS[name], **overrides})


class FinetuneModel(nn.Module):
    """backbone -> Dropout -> Linear."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.backbone(x)))


def finetune(
    backbone: nn.Module,
    train_set: Dataset,
    test_sets: Mapping[str, Dataset],
    num_classes: int,
    cfg: FinetuneConfig | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    *,
    normalize: Normalize = kinetics_normalize,
    return_model: bool = False,
    clip_average: str = "softmax",
) -> dict[str, Any]:
    """Fine-tune a deep copy of `backbone` (the caller's module is never modified) and test it.

    Trains on single-mode augmented clips (`train_set.set_epoch(e)` before epoch e), BatchNorm in train mode,
    SGD with momentum and step decay; then runs the multi-clip test on every test set. Forward passes run under
    `cfg.precision` and `cfg.channels_last` (scenebias.train.precision; "auto": bf16 + channels_last_3d on CUDA).
    Returns {test_name: classification_metrics, ..., "train_top1", "train_loss"} where the train numbers
    are running averages over the last epoch (augmented clips, dropout on). With `return_model`, the
    fine-tuned model (on `device`, eval mode) is added under "model". With `cfg.colour`, every training clip is
    colour-augmented before normalisation; `clip_average` combines a test video's clip scores.
    """
    cfg = cfg or FinetuneConfig()
    check_result_names(list(test_sets), RESERVED + ("model",))
    device = torch.device(ddp.init_from_env(str(device)))  # under torchrun: joins the process group
    seed_everything(seed)

    feature_dim = getattr(backbone, "feature_dim", None)
    if feature_dim is None:
        raise ConfigError("finetune needs a backbone with a `feature_dim` attribute")
    net = copy.deepcopy(backbone)
    for p in net.parameters():
        p.requires_grad_(True)
    model = to_device(FinetuneModel(net, int(feature_dim), num_classes, cfg.dropout), device)
    precision, channels_last = prepare(model, cfg.precision, cfg.channels_last, device)
    world, rank = ddp.world_size(), ddp.rank()
    step_model = ddp.ddp_module(model, str(device)) if world > 1 else model
    if rank > 0:  # dropout masks differ per rank; rank 0 keeps the one-process stream
        torch.manual_seed(ddp.rank_seed(seed, rank))
    progress = cfg.progress and rank == 0

    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestone_epochs(cfg.milestones, cfg.epochs), cfg.gamma)

    train_top1 = train_loss = float("nan")
    for epoch in range(cfg.epochs):
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        model.train()
        loader_seed = seed * 100_003 + epoch
        if world > 1:
            loader, weights = _rank_loader(train_set, cfg, loader_seed, rank, world, pin_memory(device))
        else:
            loader = make_loader(train_set, cfg.batch_size, shuffle=True, num_workers=cfg.num_workers,
                                 seed=loader_seed, pin=pin_memory(device))
            weights = [1.0] * len(loader)
        n_seen, n_correct, loss_sum = 0, 0, 0.0
        colour = _colour_step(cfg.colour, seed, epoch, rank)
        # the loader itself when the bar is off: a disabled tqdm around a rank's loader changes the two-rank
        # result (tests/train/test_ddp.py, test_finetune_on_two_ranks_matches_one_process)
        bar = (tqdm(loader, desc=f"finetune {epoch + 1}/{cfg.epochs}", total=len(loader), leave=False)
               if progress else loader)
        for batch, weight in zip(bar, weights):
            clips, mode = batch_clips(batch)
            if mode != "single":
                raise ConfigError("finetune trains on single-mode items ('clip'); got test-mode items ('clips')")
            x = normalize(colour(to_device(clips[:, 0], device, torch.float32)))
            if channels_last:
                x = amp.clips_channels_last(x)
            y = to_device(torch.as_tensor(batch["label"]).long().view(-1), device)
            loss, logits = optimisation_step(lambda: _cross_entropy(step_model, x, y), opt, precision, device,
                                             loss_weight=weight)
            n_seen += y.numel()
            n_correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * y.numel()
            if progress and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=loss_sum / n_seen, acc=n_correct / n_seen)
        sched.step()
        n_seen, n_correct, loss_sum = ddp.sum_over_ranks([n_seen, n_correct, loss_sum], device)
        if n_seen:
            train_top1, train_loss = n_correct / n_seen, loss_sum / n_seen

    model.eval()
    ddp.broadcast_buffers_(model)  # every rank tests rank 0's model (BN running statistics are per rank)
    results: dict[str, Any] = {}
    for name, test_set in test_sets.items():
        with amp.autocast(precision, device):  # the test forward passes (the softmax is taken in float64)
            probs, labels = _predict(model, test_set, num_classes, cfg, device, normalize, progress, clip_average)
        results[name] = classification_metrics(probs, labels, num_classes)
    results["train_top1"] = float(train_top1)
    results["train_loss"] = float(train_loss)
    if return_model:
        results["model"] = model
    return results


def _cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits) of one fine-tuning batch."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


def _colour_options(owner: str, colour: Mapping[str, Any]) -> dict[str, Any]:
    """`colour` checked and completed with FINETUNE_COLOUR's values."""
    unknown = sorted(set(colour) - set(FINETUNE_COLOUR))
    if unknown:
        raise ConfigError(f"{owner}.colour: unknown key(s) {', '.join(unknown)}; "
                          f"expected: {', '.join(FINETUNE_COLOUR)}")
    out = {**FINETUNE_COLOUR, **colour}
    out["jitter"], out["stages"] = tuple(out["jitter"]), tuple(out["stages"])
    try:
        check_stages(out["stages"])
    except ValueError as exc:
        raise ConfigError(f"{owner}.colour.stages: {exc}") from None
    probabilities = [out["p_jitter"], out["p_gray"], out["p_blur"]]
    numbers = [*out["jitter"], *probabilities]
    bad_number = any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in numbers)
    if len(out["jitter"]) != 4 or bad_number or max(probabilities) > 1:
        raise ConfigError(f"{owner}.colour: jitter must be 4 non-negative numbers [brightness, contrast, saturation, "
                          f"hue] and p_jitter, p_gray, p_blur probabilities in [0, 1]; got {dict(colour)!r}")
    return out


def _colour_step(colour: Mapping[str, Any] | None, seed: int, epoch: int, rank: int
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """One epoch's colour augmentation of a (B, C, T, H, W) batch in [0, 1]; the identity when `colour` is None.

    Its generator is seeded from (seed, epoch, rank) by a SeedSequence: a stream apart from the loader's shuffling
    (seeded from seed and epoch too), reproducible per epoch, one per rank (rank 0's seed is one process's)."""
    if colour is None:
        return lambda x: x
    state = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])
    generator = seeded_generator(state)
    return lambda x: colour_augment(x, generator, **colour)


def _rank_loader(train_set: Dataset, cfg: FinetuneConfig, seed: int, rank: int, world: int, pin: bool = False
                 ) -> tuple[DataLoader, list[float]]:
    """This rank's loader over its contiguous part of every global batch, and each step's loss weight.

    The global batches are those the one-process loader would give (the same `make_loader`, iterated over
    indices). A last batch smaller than `world` is dropped (every rank must take part in every step). The
    weight len(part) · world / len(batch) makes DDP's average of per-rank mean losses the mean over the
    global batch when the parts differ in size."""
    batches = [b.tolist() for b in make_loader(range(len(train_set)), cfg.batch_size, shuffle=True, seed=seed)]
    batches = [b for b in batches if len(b) >= world]
    parts = [ddp.split_batch(b, rank, world) for b in batches]
    weights = [len(part) * world / len(b) for part, b in zip(parts, batches)]
    loader = DataLoader(train_set, batch_sampler=parts, num_workers=cfg.num_workers, pin_memory=pin,
                        worker_init_fn=_worker_init if cfg.num_workers > 0 else None)
    return loader, weights


def _predict(model: nn.Module, test_set: Dataset, num_classes: int, cfg: FinetuneConfig, device: torch.device,
             normalize: Normalize, progress: bool, clip_average: str) -> tuple[Any, Any]:
    """`multi_clip_predict` over the whole test set; under DDP each rank predicts a contiguous part of the
    videos and the parts are gathered in order, so every rank gets the one-model predictions."""
    if not ddp.is_distributed():
        return multi_clip_predict(model, test_set, cfg.test_batch_size, device, cfg.num_workers,
                                  normalize=normalize, progress=progress, clip_average=clip_average)
    mine = ddp.split_batch(range(len(test_set)), ddp.rank(), ddp.world_size())
    part = (multi_clip_predict(model, Subset(test_set, mine), cfg.test_batch_size, device, cfg.num_workers,
                               normalize=normalize, progress=progress, clip_average=clip_average)
            if mine else (np.zeros((0, num_classes)), np.zeros(0, dtype=np.int64)))
    gathered = ddp.all_gather_objects(part)
    return np.concatenate([p for p, _ in gathered]), np.concatenate([y for _, y in gathered])


@register_protocol("finetune", config=FinetuneConfig)
def evaluate_finetune(e: EvaluationInputs) -> dict[str, Any]:
    """Fine-tuning on the downstream train split's training views, tested on every test set."""
    cfg = FinetuneConfig.from_dict(with_loader_workers(e.cfg["evaluate"], "finetune"))
    return finetune(e.backbone, e.train_clips("single"), e.test_sets, e.num_classes, cfg, e.device, e.seed,
                    clip_average=e.clip_average)
