"""The one training loop every method goes through: SGD, cosine schedule with warm-up, checkpoints, resume.

Resuming is exact: batch order and augmentation randomness are pure functions of (seed, epoch, step), and
the checkpoint holds model, optimiser, schedule and the epoch's running statistics. A checkpoint is written
every `checkpoint_every` epochs and when the process is asked to stop (SIGTERM/SIGINT); a killed run
(SIGKILL) restarts from the last periodic checkpoint and reaches the same final weights.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..io import atomic_path
from ..plugins import TrainObjective

FAULT_ENV = "SCENEBIAS_FAULT_AFTER_STEPS"  # test hook: die like `kill -9` after this many steps


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
        return cfg


def step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch) * 1_000_003 + step


def step_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(step_seed(seed, epoch, step))


GLOBAL_RNG_SALT = 0x5DEECE66D  # the global RNG's per-step seed differs from the step generator's


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n, generator=step_generator(seed, epoch, -1)).tolist()


def lr_at(cfg: TrainConfig, progress: float) -> float:
    """Linear warm-up then cosine decay; `progress` in epochs (fractional)."""
    if progress < cfg.warmup_epochs:
        return cfg.lr * (progress + 1e-3) / cfg.warmup_epochs
    span = max(cfg.epochs - cfg.warmup_epochs, 1e-8)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (progress - cfg.warmup_epochs) / span))


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


def _save_checkpoint(path: Path, objective: TrainObjective, optimizer: torch.optim.Optimizer, epoch: int,
                     step: int, running: dict[str, float], seen: int) -> None:
    state = {"objective": objective.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
             "step": step, "running": running, "seen": seen}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(objective: TrainObjective, dataset: Dataset, cfg: TrainConfig, work_dir: str | os.PathLike,
          seed: int, augment_factory, device: str = "cpu", progress: bool = True) -> list[dict[str, Any]]:
    """Train `objective` on `dataset`; returns the per-epoch log (also appended to work_dir/train_log.jsonl).

    `augment_factory(generator)` returns the batch augmentation (colour + normalisation) for one step.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = work / "checkpoint.pt", work / "train_log.jsonl"
    objective.to(device)
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(dataset) // cfg.batch_size
    if cfg.epochs > 0 and steps_per_epoch == 0:
        raise ConfigError(f"pretrain.batch_size: {cfg.batch_size} is larger than the training set "
                          f"({len(dataset)} videos)")

    start_epoch, start_step, running, seen = 0, 0, {}, 0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, start_step, running, seen = state["epoch"], state["step"], state["running"], state["seen"]
        _truncate_log(log_path, start_epoch)
        print(f"resuming from {ckpt_path} at epoch {start_epoch} step {start_step}", flush=True)
    elif log_path.exists():
        log_path.unlink()

    fault_after = int(os.environ.get(FAULT_ENV, "0") or 0)
    global_step = start_epoch * steps_per_epoch + start_step
    with _StopRequest() as stop:
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
            loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=indices, drop_last=True,
                                num_workers=cfg.num_workers, persistent_workers=False)
            bar = tqdm(loader, total=steps_per_epoch - first, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not progress, leave=False, mininterval=2.0)
            for offset, batch in enumerate(bar):
                step = first + offset
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(cfg, epoch + step / steps_per_epoch)
                batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                generator = step_generator(seed, epoch, step)
                # Layers that draw from the global RNG (dropout in supervised and pretext heads) replay too.
                torch.manual_seed(step_seed(seed, epoch, step) ^ GLOBAL_RNG_SALT)
                loss, stats = objective.training_loss(batch, augment_factory(generator), generator)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch} step {step}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                values = {"loss": loss.item(), **{k: float(v) for k, v in stats.items()}}
                for k, v in values.items():
                    running[k] = running.get(k, 0.0) + v
                seen += 1
                global_step += 1
                bar.set_postfix(loss=f"{values['loss']:.3f}", refresh=False)
                if fault_after and global_step >= fault_after:
                    os._exit(137)
                if stop.requested:
                    _save_checkpoint(ckpt_path, objective, optimizer, epoch, step + 1, running, seen)
                    raise SystemExit(f"stopped on request; checkpoint saved to {ckpt_path} "
                                     f"(epoch {epoch}, step {step + 1}); rerun to resume")
            bar.close()
            record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "steps": seen,
                      "epoch_time_s": round(time.time() - t0, 3),
                      **{k: v / max(seen, 1) for k, v in running.items()}}
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            if progress:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "steps"))
                print(f"epoch {epoch + 1}/{cfg.epochs}: {shown}", flush=True)
            if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                _save_checkpoint(ckpt_path, objective, optimizer, epoch + 1, 0, {}, 0)
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


__all__ = ["TrainConfig", "train", "read_log", "lr_at", "FAULT_ENV"]
