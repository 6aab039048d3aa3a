"""Shared pieces of the downstream protocols: input normalisation, multi-clip testing, metrics, seeding.

Test protocol (docs/methods.md, "Multi-clip test"): every test video yields N uniformly spaced centre-cropped
clips; the model's scores are averaged over the N clips (`clip_average`: softmax by default, or the logits or
log-softmax the authors average) and the video is scored by top-1 accuracy. BE's test script reports mean
per-class accuracy instead, so both are reported (`classification_metrics`).

All accuracies are fractions in [0, 1].
"""
from __future__ import annotations

import dataclasses
import os
import random
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD, normalize
from ..device import pin_memory, to_device
from ..errors import ConfigError, DataError

Normalize = Callable[[torch.Tensor], torch.Tensor]


def _channel_normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], name: str) -> torch.Tensor:
    """scenebias.data.transforms.normalize of a clip batch, checked to be one: (B, 3, T, H, W)."""
    if x.dim() != 5 or x.shape[1] != 3:
        raise ValueError(f"{name} expects (B, 3, T, H, W) input, got shape {tuple(x.shape)}")
    return normalize(x, mean, std)


def kinetics_normalize(x: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std with the Kinetics statistics over channel dim 1 of a (B, C, T, H, W) batch in [0, 1].

    The same normalisation is applied to training and test inputs of every protocol (the FAME linear probe
    normalised only its test inputs; that bug is not reproduced here).
    """
    return _channel_normalize(x, KINETICS_MEAN, KINETICS_STD, "kinetics_normalize")


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """As `kinetics_normalize`, with ImageNet's statistics (retrieval's `input_stats: imagenet`)."""
    return _channel_normalize(x, IMAGENET_MEAN, IMAGENET_STD, "imagenet_normalize")


INPUT_STATS: dict[str, Normalize] = {"kinetics": kinetics_normalize, "imagenet": imagenet_normalize}


# ----------------------------------------------------------------------------------------------- seeding


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; with `deterministic`, ask torch for deterministic kernels.

    On CPU, with a fixed thread count, this makes the protocols bit-reproducible. `warn_only=True` keeps
    ops without a deterministic implementation (CUDA only) usable.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def seeded_generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _worker_init(worker_id: int) -> None:  # pragma: no cover - runs in worker processes
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    pin: bool = False,
) -> DataLoader:
    """A DataLoader whose shuffling and worker seeds derive from `seed` only; `pin`: batches in pinned memory."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin,
        generator=seeded_generator(seed),
        worker_init_fn=_worker_init if num_workers > 0 else None,
        persistent_workers=False,
    )


# ------------------------------------------------------------------------------------------ clip batches


def batch_clips(batch: Mapping[str, Any]) -> tuple[torch.Tensor, str]:
    """Clips of a collated batch as (B, N, C, T, H, W) and the item mode ("test" or "single").

    Test-mode items carry "clips" (N, C, T, H, W); single-mode items carry "clip" (C, T, H, W), seen as N = 1.
    """
    if "clips" in batch:
        clips = torch.as_tensor(batch["clips"])
        if clips.dim() != 6:
            raise DataError(f"test-mode 'clips' must be (B, N, C, T, H, W) once batched, got {tuple(clips.shape)}")
        return clips, "test"
    if "clip" in batch:
        clip = torch.as_tensor(batch["clip"])
        if clip.dim() != 5:
            raise DataError(f"single-mode 'clip' must be (B, C, T, H, W) once batched, got {tuple(clip.shape)}")
        return clip.unsqueeze(1), "single"
    raise DataError(f"dataset items must have a 'clip' or 'clips' entry, got keys {sorted(batch)}")


def iter_clip_batches(
    dataset: Dataset, batch_size: int, num_workers: int = 0, pin: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor, str]]:
    """In dataset order: (clips (B, N, C, T, H, W), labels (B,) int64, mode)."""
    for batch in make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers, pin=pin):
        clips, mode = batch_clips(batch)
        yield clips, torch.as_tensor(batch["label"]).long().view(-1), mode


# How a video's clip scores are combined (docs/methods.md, "Multi-clip test"). FAME's eval.py averages the
# model's outputs: the logits of its R(2+1)D classifier, the log-softmax its I3D's forward returns.
CLIP_AVERAGES = ("softmax", "logits", "log_softmax", "by_backbone")


def check_clip_average(value: str, where: str = "clip_average") -> str:
    if value not in CLIP_AVERAGES:
        raise ConfigError(f"{where} must be one of {', '.join(CLIP_AVERAGES)}; got {value!r}")
    return value


def resolve_clip_average(value: str, backbone: str) -> str:
    """`by_backbone` -> what FAME's eval.py averages for that backbone: log-softmax for I3D backbones (names
    starting with "i3d"), logits otherwise; any other value is returned as it is."""
    check_clip_average(value)
    if value != "by_backbone":
        return value
    return "log_softmax" if backbone.startswith("i3d") else "logits"


def average_clip_scores(logits: torch.Tensor, how: str = "softmax") -> torch.Tensor:
    """(V, N, K) clip logits -> (V, K) video class probabilities.

    softmax: the mean of the clips' softmax; logits / log_softmax: the softmax of the mean logits / log-softmax,
    so the arg-max is that of the averaged scores and the result stays a probability vector.
    """
    if how == "softmax":
        return torch.softmax(logits, dim=-1).mean(dim=1)
    if how == "logits":
        return torch.softmax(logits.mean(dim=1), dim=-1)
    if how == "log_softmax":
        return torch.softmax(torch.log_softmax(logits, dim=-1).mean(dim=1), dim=-1)
    raise ConfigError(f"clip averaging must be softmax, logits or log_softmax (by_backbone resolved first), "
                      f"got {how!r}")


@torch.no_grad()
def multi_clip_predict(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int,
    device: torch.device | str,
    num_workers: int = 0,
    *,
    normalize: Normalize = kinetics_normalize,
    progress: bool = False,
    clip_average: str = "softmax",
) -> tuple[np.ndarray, np.ndarray]:
    """Video-level class probabilities of a clips -> logits model.

    Every video's N clips are normalised, passed through `model` (in eval mode; its previous mode is
    restored) and their scores combined by `average_clip_scores(clip_average)` (default: the N softmax vectors
    averaged). `batch_size` counts videos.
    Returns (probs (N_videos, K) float64, labels (N_videos,) int64), in dataset order.
    Single-mode datasets (one "clip" per item) are accepted and treated as N = 1.
    `model` is moved to `device` (in place), where its clips go.
    """
    device = torch.device(device)
    model = to_device(model, device)
    was_training = model.training
    model.eval()
    probs: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    try:
        n_batches = _num_batches(dataset, batch_size)
        batches = iter_clip_batches(dataset, batch_size, num_workers, pin_memory(device))
        for clips, y, _ in tqdm(batches, desc="test", total=n_batches, leave=False, disable=not progress):
            b, n = clips.shape[:2]
            x = normalize(to_device(clips.flatten(0, 1), device, torch.float32))
            logits = model(x).double()
            p = average_clip_scores(logits.reshape(b, n, -1), clip_average)
            probs.append(p.cpu())
            labels.append(y)
    finally:
        model.train(was_training)
    if not probs:
        raise DataError("cannot test on an empty dataset")
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


def _num_batches(dataset: Dataset, batch_size: int) -> int | None:
    try:
        return -(-len(dataset) // batch_size)  # type: ignore[arg-type]
    except TypeError:
        return None


# --------------------------------------------------------------------------------------------- metrics


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _predictions(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p, y = _np(probs), _np(labels).astype(np.int64).reshape(-1)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"probs must be (N, K) with N = len(labels) = {y.shape[0]}, got {p.shape}")
    return p.argmax(axis=1), y


def top1(probs: Any, labels: Any) -> float:
    """Fraction of videos whose arg-max class is the label."""
    pred, y = _predictions(probs, labels)
    return float((pred == y).mean()) if y.size else float("nan")


def per_class_accuracy(probs: Any, labels: Any, num_classes: int) -> list[float | None]:
    """Recall of each class 0..num_classes-1; None for classes with no video among `labels`."""
    pred, y = _predictions(probs, labels)
    out: list[float | None] = []
    for c in range(num_classes):
        mask = y == c
        out.append(float((pred[mask] == c).mean()) if mask.any() else None)
    return out


def mean_class_accuracy(probs: Any, labels: Any, num_classes: int) -> float:
    """Mean over the classes present in `labels` of per-class recall (BE's test metric)."""
    accs = [a for a in per_class_accuracy(probs, labels, num_classes) if a is not None]
    return float(np.mean(accs)) if accs else float("nan")


def contrasted_accuracy(correct_a: Any, correct_b: Any) -> float:
    """Fraction of videos correct on `a` (scene-swapped clip) AND wrong on `b` (its static counterpart).

    StillMix's "contrasted accuracy" on SCUBA/SCUFO: credit only for predictions that the static frame alone
    does not explain. Both arguments are boolean per-video vectors aligned by video.
    """
    a = _np(correct_a).astype(bool).reshape(-1)
    b = _np(correct_b).astype(bool).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must align by video, got {a.shape} and {b.shape}")
    return float((a & ~b).mean()) if a.size else float("nan")


def classification_metrics(probs: Any, labels: Any, num_classes: int) -> dict[str, Any]:
    """{"top1", "mean_class_acc", "per_class_acc", "n", "correct"}: accuracies as fractions, n = number of
    videos, `correct` one 0/1 per video (pairs a scene-swapped set with its static twin: contrasted accuracy)."""
    per_class = per_class_accuracy(probs, labels, num_classes)
    correct = (_np(probs).argmax(axis=1) == _np(labels)).astype(int).tolist()
    present = [a for a in per_class if a is not None]
    return {
        "top1": top1(probs, labels),
        "mean_class_acc": float(np.mean(present)) if present else float("nan"),
        "per_class_acc": per_class,
        "n": int(_np(labels).size),
        "correct": correct,
    }


# --------------------------------------------------------------------------------------------- configs

C = TypeVar("C")


def config_from_dict(cls: type[C], data: Mapping[str, Any] | None) -> C:
    """Build dataclass `cls` from a mapping; an unknown key raises ConfigError naming it.

    Lists become tuples for tuple-typed fields (YAML/JSON have no tuples).
    """
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"unknown {cls.__name__} key {key!r}; expected one of: {', '.join(sorted(fields))}"
            )
    for key, value in list(data.items()):
        if isinstance(value, list):
            data[key] = tuple(value)
    try:
        return cls(**data)
    except TypeError as exc:  # pragma: no cover - guarded above
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def loader_workers(evaluate: Mapping[str, Any]) -> int:
    """The evaluation loaders' worker processes, `evaluate.num_workers`; unset, 0: clips load in the main process
    (clips are a pure function of seed, epoch and index, so the count changes speed only)."""
    return int(evaluate.get("num_workers", 0))


def with_loader_workers(evaluate: Mapping[str, Any], protocol: str) -> dict[str, Any]:
    """The protocol's section `evaluate[protocol]` with `loader_workers(evaluate)`, unless it sets its own."""
    return {"num_workers": loader_workers(evaluate), **evaluate[protocol]}


def check_positive(owner: str, **values: float) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
            raise ConfigError(f"{owner}.{name} must be a positive number, got {v!r}")


def check_non_negative(owner: str, **values: float) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
            raise ConfigError(f"{owner}.{name} must be a non-negative number, got {v!r}")


def check_milestones(owner: str, milestones: Sequence[float]) -> None:
    try:
        ms = [float(m) for m in milestones]
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}.milestones must be a list of fractions of the epochs, got {milestones!r}") from None
    if any(not 0 < m <= 1 for m in ms) or ms != sorted(ms):
        raise ConfigError(
            f"{owner}.milestones must be increasing fractions of the epochs in (0, 1], got {list(milestones)!r}"
        )


def milestone_epochs(milestones: Sequence[float], epochs: int) -> list[int]:
    """Fractions of the schedule -> epoch indices at which the learning rate is multiplied by gamma."""
    return sorted({max(1, int(round(m * epochs))) for m in milestones})


def check_result_names(names: Sequence[str], reserved: Sequence[str]) -> None:
    for name in names:
        if name in reserved:
            raise ConfigError(f"test set name {name!r} is reserved for {', '.join(reserved)}; rename it")
