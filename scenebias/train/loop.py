"""The one training loop every method goes through: SGD, cosine schedule with warm-up, checkpoints, resume.

Resuming is exact: batch order and augmentation randomness are pure functions of (seed, epoch, step), and
the checkpoint holds model, optimiser, schedule and the epoch's running statistics. A checkpoint is written
every `checkpoint_every` epochs and when the process is asked to stop (SIGTERM/SIGINT); a killed run
(SIGKILL) restarts from the last periodic checkpoint and reaches the same final weights.

Under `torchrun` the same loop runs data-parallel (scenebias.train.distributed): `batch_size` stays the
global batch, each rank trains on its block of every global batch, DDP averages gradients, the logged
numbers are means over ranks, and rank 0 alone writes the checkpoint and the log.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..device import pin_memory, to_device
from ..errors import ConfigError
from ..io import atomic_path
from ..plugins import TrainObjective
from ..provenance import SPEED_ONLY_KEYS, stable_hash
from . import distributed as ddp
from . import precision as amp
from .step import optimisation_step, prepare



@dataclass
class TrainConfig:
    epochs: int = 25
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    checkpoint_every: int = 1
    num_workers: int = 0
    # Linear lr scaling (Goyal et al. 2017): the peak lr is lr * batch_size / lr_scaling_base_batch, for a
    # schedule tuned at another global batch. None (default) uses lr as given.
    lr_scaling_base_batch: int | None = None
    # Mixed precision and memory layout (scenebias.train.precision): "auto" is bf16 autocast + channels_last_3d
    # on CUDA and fp32 + contiguous elsewhere; "fp32"/"bf16" and true/false force one.
    precision: str = "auto"
    channels_last: bool | str = "auto"
    # The contrastive colour augmentation's parameters (scenebias.data.transforms.colour_augment keywords); empty:
    # MoCo v2 / FAME's. Used by the stage that builds the augmentation; part of the fingerprint (it changes numbers).
    colour: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "pretrain") -> "TrainConfig":
        known = {f.name: f.type for f in fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"{where}.{key}: unknown key; expected one of: {', '.join(known)}")
        cfg = cls(**d)
        for key in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(cfg, key) < (0 if key == "epochs" else 1):
                raise ConfigError(f"{where}.{key}: {getattr(cfg, key)!r} must be a positive integer")
        if cfg.lr <= 0:
            raise ConfigError(f"{where}.lr: {cfg.lr!r} must be > 0")
        base = cfg.lr_scaling_base_batch
        if base is not None and (isinstance(base, bool) or not isinstance(base, int) or base < 1):
            raise ConfigError(f"{where}.lr_scaling_base_batch: {base!r} must be a positive integer or null")
        amp.check_options(where, cfg.precision, cfg.channels_last)
        return cfg


def step_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """The seed of one step's random draws; each rank of a DDP run has its own stream, rank 0 the one-process one."""
    return ddp.rank_seed((seed * 1_000_003 + epoch) * 1_000_003 + step, rank)


def step_generator(seed: int, epoch: int, step: int, rank: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(step_seed(seed, epoch, step, rank))


GLOBAL_RNG_SALT = 0x5DEECE66D  # the global RNG's per-step seed differs from the step generator's


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n, generator=step_generator(seed, epoch, -1)).tolist()


def peak_lr(cfg: TrainConfig) -> float:
    """`lr`, linearly scaled to the global batch when `lr_scaling_base_batch` is set."""
    return ddp.scaled_lr(cfg.lr, cfg.batch_size, cfg.lr_scaling_base_batch)


def lr_at(cfg: TrainConfig, progress: float) -> float:
    """Linear warm-up then cosine decay; `progress` in epochs (fractional)."""
    lr = peak_lr(cfg)
    if progress < cfg.warmup_epochs:
        return lr * (progress + 1e-3) / cfg.warmup_epochs
    span = max(cfg.epochs - cfg.warmup_epochs, 1e-8)
    return lr * 0.5 * (1 + math.cos(math.pi * (progress - cfg.warmup_epochs) / span))


class _StopRequest:
    """Turns SIGTERM/SIGINT into a flag checked between steps, so a checkpoint can be written on exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequest":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def fingerprint(objective: TrainObjective, dataset: Dataset, cfg: TrainConfig, seed: int) -> dict[str, Any]:
    """What a checkpoint must agree with to be resumed: the schedule, the data size, the method, the seed and
    the parameter shapes (knobs that change speed only, workers, checkpoint period and memory layout, are left
    out; precision is kept: bf16 changes the numbers)."""
    train = {k: v for k, v in asdict(cfg).items() if k not in SPEED_ONLY_KEYS["pretrain"]}
    shapes = stable_hash([[k, list(v.shape)] for k, v in objective.state_dict().items()])
    return {"train": train, "videos": len(dataset), "objective": type(objective).__name__, "seed": seed,
            "parameters": shapes}


def _check_resumable(path: Path, state: dict[str, Any], expected: dict[str, Any]) -> None:
    found = state.get("fingerprint")
    if found != expected:
        diff = "no fingerprint (an older checkpoint)" if found is None else ", ".join(
            f"{k}: {found.get(k)!r} -> {expected[k]!r}" for k in expected if found.get(k) != expected[k])
        raise ConfigError(f"{path}: this checkpoint belongs to another training setting ({diff}); delete it or "
                          f"use another --work-dir (the workflow keeps one folder per setting)")


def _save_checkpoint(path: Path, objective: TrainObjective, optimizer: torch.optim.Optimizer, epoch: int,
                     step: int, running: dict[str, float], seen: int, print_: dict[str, Any] | None = None) -> None:
    """Rank 0 writes the checkpoint; every rank returns only once it is on disk (a barrier under DDP)."""
    if ddp.is_main_process():
        state = {"objective": objective.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                 "step": step, "running": running, "seen": seen, "fingerprint": print_}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    ddp.barrier()


def _step_values(loss: torch.Tensor, stats: dict[str, Any], device: str) -> dict[str, float]:
    """The step's loss and statistics to log: this process's values, or their means over ranks under DDP."""
    values = {"loss": loss.item(), **{k: float(v) for k, v in stats.items()}}
    return dict(zip(values, ddp.mean_over_ranks(list(values.values()), device)))


def make_optimizer(objective: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The loop's optimiser: SGD with momentum and weight decay over the trainable parameters, at `cfg.lr` (the
    loop sets each step's lr from the schedule)."""
    params = [p for p in objective.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def train_step(step_loss, optimizer: torch.optim.Optimizer, batch: dict[str, Any], augment_factory,
               generator: torch.Generator, precision: str = "fp32", device: str = "cpu",
               where: str | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """One optimisation step, as `train` runs it and the perf harness times it: the forward pass and the loss
    (`step_loss(batch, augment_factory(generator), generator)`: a method's `training_loss`, or its DDP wrapper)
    under `amp.autocast(precision, device)`, then backward and the optimiser step outside it. Returns the loss and
    the method's statistics.

    `where` (e.g. "epoch 3 step 7"): a non-finite loss raises FloatingPointError naming it, before the backward
    pass; None checks nothing (the harness times steps on one fixed batch, which may diverge after many)."""
    return optimisation_step(lambda: step_loss(batch, augment_factory(generator), generator), optimizer, precision,
                             device, where)


def train(objective: TrainObjective, dataset: Dataset, cfg: TrainConfig, work_dir: str | os.PathLike,
          seed: int, augment_factory, device: str = "cpu", progress: bool = True,
          after_step: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Train `objective` on `dataset`; returns the per-epoch log (also appended to work_dir/train_log.jsonl).

    `augment_factory(generator)` returns the batch augmentation (colour + normalisation) for one step.
    `cfg.precision` / `cfg.channels_last` (scenebias.train.precision): the step's forward pass and loss run under
    bf16 autocast and the model and clips in channels_last_3d where set ("auto": on CUDA only); the backward pass
    and the optimiser step stay outside autocast.
    Under `torchrun` (WORLD_SIZE > 1) this runs data-parallel: `cfg.batch_size` is the global batch, split
    evenly over the ranks (see scenebias.train.distributed for what matches one process and what does not).
    `after_step(global_step)` runs after every step (the tests kill a run mid-epoch with it).
    """
    device = ddp.init_from_env(device)
    rank, world = ddp.rank(), ddp.world_size()
    main = rank == 0
    local_batch = ddp.local_batch_size(cfg.batch_size, world)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = work / "checkpoint.pt", work / "train_log.jsonl"
    to_device(objective, device)
    precision, channels_last = prepare(objective, cfg.precision, cfg.channels_last, device)
    if main and progress and (precision, channels_last) != ("fp32", False):
        print(f"training step: {amp.describe(precision, channels_last)} on {device}", flush=True)
    optimizer = make_optimizer(objective, cfg)
    steps_per_epoch = len(dataset) // cfg.batch_size
    if cfg.epochs > 0 and steps_per_epoch == 0:
        raise ConfigError(f"pretrain.batch_size: {cfg.batch_size} is larger than the training set "
                          f"({len(dataset)} videos)")

    start_epoch, start_step, running, seen = 0, 0, {}, 0
    expected = fingerprint(objective, dataset, cfg, seed)
    if ckpt_path.exists():  # every rank resumes from rank 0's checkpoint
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        _check_resumable(ckpt_path, state, expected)
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, start_step, running, seen = state["epoch"], state["step"], state["running"], state["seen"]
        if main:
            _truncate_log(log_path, start_epoch)
            print(f"resuming from {ckpt_path} at epoch {start_epoch} step {start_step}", flush=True)
    elif log_path.exists() and main:
        log_path.unlink()
    ddp.barrier()  # no rank reads the log or the checkpoint while rank 0 rewrites it
    # Under DDP the step goes through DistributedDataParallel, whose forward arms the gradient all-reduce.
    step_loss = ddp.wrap_ddp(objective, device) if world > 1 else objective.training_loss

    global_step = start_epoch * steps_per_epoch + start_step
    with _StopRequest() as stop, amp.fp32_view_builder(objective, device, enabled=precision == "bf16"):
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.time()
            objective.train()
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            order = epoch_order(len(dataset), seed, epoch)
            first = start_step if epoch == start_epoch else 0
            if first == 0:
                running, seen = {}, 0
            indices = order[first * cfg.batch_size: steps_per_epoch * cfg.batch_size]
            if world > 1:
                indices = ddp.shard_indices(indices, cfg.batch_size, rank, world)
            loader = DataLoader(dataset, batch_size=local_batch, sampler=indices, drop_last=True,
                                num_workers=cfg.num_workers, persistent_workers=False, pin_memory=pin_memory(device))
            bar = tqdm(loader, total=steps_per_epoch - first, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not (progress and main), leave=False, mininterval=2.0)
            for offset, batch in enumerate(bar):
                step = first + offset
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(cfg, epoch + step / steps_per_epoch)
                batch = to_device(batch, device)
                if channels_last:
                    batch = amp.batch_channels_last(batch)
                generator = step_generator(seed, epoch, step, rank)
                # Layers that draw from the global RNG (dropout in supervised and pretext heads) replay too.
                torch.manual_seed(step_seed(seed, epoch, step, rank) ^ GLOBAL_RNG_SALT)
                loss, stats = train_step(step_loss, optimizer, batch, augment_factory, generator, precision, device,
                                         where=f"epoch {epoch} step {step}")
                values = _step_values(loss, stats, device)
                for k, v in values.items():
                    running[k] = running.get(k, 0.0) + v
                seen += 1
                global_step += 1
                bar.set_postfix(loss=f"{values['loss']:.3f}", refresh=False)
                if after_step is not None:
                    after_step(global_step)
                # A signal may reach the ranks at different steps; they must all stop after the same one.
                if ddp.any_rank(stop.requested, device):
                    _save_checkpoint(ckpt_path, objective, optimizer, epoch, step + 1, running, seen, expected)
                    raise SystemExit(f"stopped on request; checkpoint saved to {ckpt_path} "
                                     f"(epoch {epoch}, step {step + 1}); rerun to resume")
            bar.close()
            record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "steps": seen,
                      "epoch_time_s": round(time.time() - t0, 3),
                      **{k: v / max(seen, 1) for k, v in running.items()}}
            if main:
                with open(log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
            if progress and main:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "steps"))
                print(f"epoch {epoch + 1}/{cfg.epochs}: {shown}", flush=True)
            if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                _save_checkpoint(ckpt_path, objective, optimizer, epoch + 1, 0, {}, 0, expected)
    ddp.barrier()  # the log is complete before any rank reads it
    return read_log(log_path)


def _truncate_log(log_path: Path, epochs_done: int) -> None:
    """Keep only the log lines of epochs that the checkpoint already contains."""
    if log_path.exists():
        kept = [r for r in read_log(log_path) if r["epoch"] <= epochs_done]
        with atomic_path(log_path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


def read_log(log_path: str | os.PathLike) -> list[dict[str, Any]]:
    p = Path(log_path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


__all__ = ["TrainConfig", "train", "train_step", "make_optimizer", "read_log", "lr_at", "peak_lr"]
