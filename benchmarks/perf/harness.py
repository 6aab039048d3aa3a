"""The perf harness: one command measures every view builder, the base augmentation and its parts, a full
pretraining step per method and backbone, MoCo's encoders alone, the backbone alone, and the data loader, and
writes `perf.json` + `perf.md`.

    python -m benchmarks.perf.harness --size tiny|small|paper --device cpu|cuda|auto --out DIR

Everything measured is the suite's own code, never a copy of it:
- view builders: `make_views(batch, generator)` of every registered method (`scenebias.plugins.load_methods`)
  and every option value it declares in `variants`, plus each boolean option flipped (e.g. the pretext
  tasks' `be_consistency`), on a random batch of the method's `dataset_mode` and `clip_len_factor`;
- the base augmentation: `scenebias.pipeline.augment_factory(generator)(x)` (colour jitter, grayscale,
  blur, normalisation) on one (B, C, T, H, W) batch, and its parts (`scenebias.data.transforms.apply_colour`
  with every clip jittered / greyed / blurred, `normalize`);
- a training step: `training_loss(batch, augment, generator)` + backward + the SGD step the loop uses
  (`TrainConfig` defaults), per method and backbone (`build_backbone`), under the loop's precision and memory
  layout (`scenebias.train.precision`: autocast around forward + loss, view builders outside it); the view
  builder's share of it;
- MoCo's encoders alone (`MoCo.forward` on the given views: no view builder, no augmentation) + backward + SGD:
  the reference a MoCo-family step's throughput is judged against;
- the backbone alone: forward + backward on one (B, C, T, H, W) batch, for reference;
- the data loader: `ClipDataset` in "pair" mode over a generated set (`GeneratorConfig.tiny`), from the
  video files, from the in-memory decoded cache (cache=True, after a warm pass) and from the on-disk frame cache
  (`scenebias.data.frame_cache`, read into memory and memory-mapped).

Precision and layout: `--precision auto` and `--channels-last auto` resolve as the training loop does (bf16 +
channels_last_3d on CUDA, fp32 + contiguous on a CPU); every entry records the precision and layout it ran in.

Timings are medians after warm-up (see `timing.py`); targets (see `targets.py`) sit beside the entries they
judge. View builders are built on a tiny3d backbone: they never touch it, and building ~30 MoCo copies of a
paper backbone only to time their view builders would cost more than the measurement.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import fnmatch
import itertools
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from scenebias.errors import ConfigError, ScenebiasError
from scenebias.io import write_json, write_text
from scenebias.models.backbones import build_backbone
from scenebias.data.transforms import ColourParams, apply_colour, blur_kernel_size, normalize
from scenebias.pipeline import augment_factory, resolve_device
from scenebias.plugins import MethodSpec, load_methods
from scenebias.provenance import REPO_ROOT, device_description, provenance
from scenebias.train import precision as amp
from scenebias.train.loop import TrainConfig

from .targets import TARGETS, judge_all
from .timing import peak_memory, reset_peak_memory, time_ms

FORMAT = "scenebias-perf/1"
NUM_CLASSES = 101  # UCF101's: only the supervised head's width depends on it
VIEW_BACKBONE = ("tiny3d", {"width": 4})


@dataclass(frozen=True)
class Size:
    """One benchmark size: the batch (B × 3 × clip_len × crop²), the backbones and the iteration counts."""
    batch: int
    clip_len: int
    crop: int
    backbones: tuple[tuple[str, dict], ...]
    warmup: int
    iters: int
    data: dict = field(default_factory=dict)  # GeneratorConfig.tiny overrides for the loader's video set
    cpu_warmup: int | None = None   # fewer runs for CPU entries where a CPU run is slow
    cpu_iters: int | None = None

    def runs(self, device: str) -> tuple[int, int]:
        if device == "cpu" and self.cpu_iters is not None:
            return self.cpu_warmup or 0, self.cpu_iters
        return self.warmup, self.iters


SIZES: dict[str, Size] = {
    "tiny": Size(batch=4, clip_len=8, crop=32, backbones=(("tiny3d", {"width": 4}),), warmup=1, iters=3),
    "small": Size(batch=16, clip_len=16, crop=64, backbones=(("tiny3d", {"width": 16}),), warmup=2, iters=5,
                  data={"resolution": 64, "num_frames": 32}),
    "paper": Size(batch=64, clip_len=16, crop=112, backbones=(("r2plus1d_18", {}), ("r3d_18", {})), warmup=3,
                  iters=10, cpu_warmup=1, cpu_iters=3,
                  data={"resolution": 128, "num_frames": 32, "ucf_groups": 8, "ucf_clips_per_group": [2, 3]}),
}


# ------------------------------------------------------------------------------------------------ cases
@dataclass(frozen=True)
class Case:
    """A method with some options overridden (none: its defaults)."""
    method: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return self.method + "".join(f"[{k}={v}]" for k, v in self.options)

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.options)


def cases(registry) -> Iterator[Case]:
    """Each method's defaults, each declared variant value, and each boolean option flipped."""
    for name in registry:
        spec: MethodSpec = registry.get(name)
        yield Case(name)
        for option, values in spec.variants.items():
            for value in values:
                if value != spec.defaults.get(option):
                    yield Case(name, ((option, value),))
        for option, default in spec.defaults.items():
            if isinstance(default, bool) and option not in spec.variants:
                yield Case(name, ((option, not default),))


# ------------------------------------------------------------------------------------------------ inputs
def make_batch(mode: str, factor: int, size: Size, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random batch of `mode` ("pair", "triple", "single") as the loader would give it: clips in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    clip = (3, size.clip_len * factor, size.crop, size.crop)
    batch = {"label": torch.randint(0, NUM_CLASSES, (size.batch,), generator=g),
             "index": torch.arange(size.batch)}
    if mode == "single":
        batch["clip"] = torch.rand(size.batch, *clip, generator=g)
    else:
        views = 3 if mode == "triple" else 2
        batch["views"] = torch.rand(size.batch, views, *clip, generator=g)
        # ground-truth actor masks (B, V, T, H, W), as ClipDataset(actor_masks=...) adds them for the oracle
        batch["masks"] = torch.rand(size.batch, views, *clip[1:], generator=g) < 0.2
    return {k: v.to(device) for k, v in batch.items()}


class Batches:
    """One batch per (mode, clip_len_factor, device), made once: every entry of a kind sees the same input.

    On the devices in `channels_last` the clips are laid out as the training loop lays them out there
    (`scenebias.train.precision.batch_channels_last`)."""

    def __init__(self, size: Size, channels_last: tuple[str, ...] = ()) -> None:
        self.size = size
        self.channels_last = channels_last
        self._made: dict[tuple, dict[str, torch.Tensor]] = {}

    def get(self, mode: str, factor: int, device: str) -> dict[str, torch.Tensor]:
        key = (mode, factor, device)
        if key not in self._made:
            batch = make_batch(mode, factor, self.size, device)
            self._made[key] = amp.batch_channels_last(batch) if device in self.channels_last else batch
        return self._made[key]

    def layout(self, device: str) -> bool:
        """Whether this device's clips are channels_last_3d."""
        return device in self.channels_last

    def clear(self) -> None:
        self._made.clear()


def generators() -> Iterator[torch.Generator]:
    """A fresh CPU generator per call (the loop draws one per step; methods draw on the CPU)."""
    return (torch.Generator().manual_seed(i) for i in itertools.count())


def build(spec: MethodSpec, case: Case, backbone: tuple[str, dict], device: str, channels_last: bool = False):
    torch.manual_seed(0)
    objective = spec.build(build_backbone(backbone[0], **backbone[1]), NUM_CLASSES, case.overrides).to(device)
    if channels_last:
        amp.model_channels_last(objective)
    return objective.train()


FP32_OUTSIDE_AUTOCAST = "fp32"  # augmentation and view builders: the loops run them outside autocast


def free(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------ measurements
@dataclass
class Run:
    size_name: str
    size: Size
    device: str
    aug_devices: list[str]
    steps: str
    precision: str       # resolved: "fp32" or "bf16" (training, encoder and backbone steps)
    channels_last: bool  # resolved: models and clips of `device` in channels_last_3d
    workers: int
    only: list[str]
    warmup: int | None = None
    iters: int | None = None
    entries: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    dataset: dict = field(default_factory=dict)

    @contextlib.contextmanager
    def guard(self, what: str, device: str) -> Iterator[None]:
        """A measurement that raises (a method that breaks under bf16, out of memory) is recorded with the
        error and where it was raised; the run goes on and exits non-zero at the end."""
        failed = False
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - any failure of the code under measurement
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = Path(frame.filename)
            where = where.relative_to(REPO_ROOT) if where.is_relative_to(REPO_ROOT) else where
            self.failed.append({"what": what, "error": f"{type(exc).__name__}: {exc}"[:500],
                                "raised_at": f"{where}:{frame.lineno}"})
            print(f"failed: {what}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed = True
        if failed:  # after the except block, which kept the failed step's tensors alive
            free(device)

    def wanted(self, kind: str, name: str) -> bool:
        """`--only` patterns match an entry's name or its "kind/name" (e.g. 'train_step/moco+fame*')."""
        return not self.only or any(fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(f"{kind}/{name}", pattern)
                                    for pattern in self.only)

    def runs(self, device: str) -> tuple[int, int]:
        warmup, iters = self.size.runs(device)
        return (warmup if self.warmup is None else self.warmup), (iters if self.iters is None else self.iters)

    def timed(self, kind: str, name: str, device: str, fn: Callable[[], Any], clips: int,
              runs: tuple[int, int] | None = None, **info: Any) -> dict:
        """Time `fn` on `device` (`runs`: warm-up and timed runs, default the size's), with its peak memory,
        and record the entry."""
        warmup, iters = runs or self.runs(device)
        reset_peak_memory(device)
        timing = time_ms(fn, device, warmup, iters)
        entry = {"id": f"{kind}/{name}/{info.get('backbone') or '-'}/{device}", "kind": kind, "name": name,
                 "device": device, "device_name": device_description(device), "backbone": None, **info,
                 **timing, "clips_per_s": clips / (timing["ms_per_batch"] / 1e3), **peak_memory(device)}
        self.entries.append(entry)
        return entry


def every_clip(batch: int, jitter: bool = False, gray: bool = False, blur: bool = False) -> ColourParams:
    """Colour parameters that send every clip through the chosen ops: the four jitter ops in a random order per
    clip with factors drawn as in training, grayscale, blur with sigma drawn as in training."""
    g = torch.Generator().manual_seed(0)
    full = torch.full((batch,), True)
    spread = torch.tensor([0.4, 0.4, 0.4, 0.1])
    return ColourParams(jitter=full & jitter, factors=torch.tensor([1.0, 1.0, 1.0, 0.0]) + spread * (
        2 * torch.rand(batch, 4, generator=g) - 1), order=torch.rand(batch, 4, generator=g).argsort(dim=1),
        gray=full & gray, blur=full & blur, sigma=0.1 + 1.9 * torch.rand(batch, generator=g))


def augmentation_cases(x: torch.Tensor) -> dict[str, tuple[Callable[[], Any], str]]:
    """name -> (call, what it times): the base pipeline, then its parts with every clip taking part."""
    gens = generators()
    kernel = blur_kernel_size(int(x.shape[-2]))
    parts = {"colour jitter (every clip)": every_clip(x.shape[0], jitter=True),
             "grayscale (every clip)": every_clip(x.shape[0], gray=True),
             "gaussian blur (every clip)": every_clip(x.shape[0], blur=True)}
    cases = {"base augmentation": (lambda: augment_factory(next(gens))(x),
                                   "scenebias.pipeline.augment_factory(generator)(x): colour jitter / grayscale / "
                                   "blur per clip (random, batched) + normalisation")}
    for name, params in parts.items():
        cases[name] = (lambda params=params: apply_colour(x, params, kernel),
                       f"scenebias.data.transforms.apply_colour(x, params, {kernel}) with {name.split(' (')[0]} "
                       "on every clip")
    cases["normalize"] = (lambda: normalize(x), "scenebias.data.transforms.normalize(x) (Kinetics statistics)")
    return cases


def measure_augmentation(run: Run, batches: Batches) -> None:
    for device in run.aug_devices:
        x = batches.get("pair", 1, device)["views"][:, 0]
        for name, (call, what) in augmentation_cases(x).items():
            if run.wanted("augmentation", name):
                with run.guard(f"augmentation/{name}/{device}", device):
                    run.timed("augmentation", name, device, call, run.size.batch, input_shape=list(x.shape),
                              what=what, precision=FP32_OUTSIDE_AUTOCAST, channels_last=batches.layout(device))


def measure_views_and_steps(run: Run, batches: Batches) -> None:
    registry = load_methods()
    for case in cases(registry):
        spec = registry.get(case.method)
        view_obj = {}
        for device in run.aug_devices:
            view_obj[device] = build(spec, case, VIEW_BACKBONE, device)
        probe = view_obj[run.aug_devices[0]]
        if probe.dataset_mode == "none":
            if not case.options:
                run.skipped.append({"name": case.name, "why": "dataset_mode 'none': nothing to train"})
            continue
        info = {"method": case.method, "options": case.overrides,
                "resolved_options": {**spec.options(case.overrides), **spec.fixed},
                "dataset_mode": probe.dataset_mode, "clip_len_factor": probe.clip_len_factor}
        if run.wanted("view_builder", case.name):
            for device, objective in view_obj.items():
                with run.guard(f"view_builder/{case.name}/{device}", device):
                    batch = batches.get(probe.dataset_mode, probe.clip_len_factor, device)
                    gens = generators()
                    run.timed("view_builder", case.name, device, lambda: objective.make_views(batch, next(gens)),
                              run.size.batch, **info, input_shape=list(batch.get("views", batch.get("clip")).shape),
                              precision=FP32_OUTSIDE_AUTOCAST, channels_last=batches.layout(device))
        del view_obj, probe
        if (run.steps == "defaults" and case.options) or not run.wanted("train_step", case.name):
            continue
        for backbone in run.size.backbones:
            with run.guard(f"train_step/{case.name}/{backbone[0]}/{run.device}", run.device):
                measure_step(run, batches, spec, case, backbone, info)


def sgd(objective: torch.nn.Module) -> torch.optim.Optimizer:
    """The training loop's optimiser with `TrainConfig` defaults."""
    tcfg = TrainConfig()
    return torch.optim.SGD([p for p in objective.parameters() if p.requires_grad], lr=tcfg.lr,
                           momentum=tcfg.momentum, weight_decay=tcfg.weight_decay)


def measure_step(run: Run, batches: Batches, spec: MethodSpec, case: Case, backbone: tuple[str, dict],
                 info: dict) -> None:
    """The loop's step (scenebias.train.loop.train): forward + loss under the run's autocast, the view builder
    outside it, backward and SGD outside it."""
    device = run.device
    objective = build(spec, case, backbone, device, run.channels_last)
    optimiser = sgd(objective)
    batch = batches.get(objective.dataset_mode, objective.clip_len_factor, device)
    gens = generators()
    losses: list[torch.Tensor] = []

    def step() -> None:
        generator = next(gens)
        with amp.autocast(run.precision, device):
            loss, _ = objective.training_loss(batch, augment_factory(generator), generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if not losses:  # the first step's loss: the timed repetitions train on one fixed random batch for as long as
            losses.append(loss.detach())  # the clock allows, and a bf16 run may diverge on it after many steps

    with amp.fp32_view_builder(objective, device, enabled=run.precision == "bf16"):
        entry = run.timed("train_step", case.name, device, step, run.size.batch, **info, backbone=backbone[0],
                          backbone_options=backbone[1], precision=run.precision, channels_last=run.channels_last)
    entry["loss_finite"] = bool(torch.isfinite(losses[0]).item())
    entry["moco_family"] = hasattr(objective, "moco")  # judged against MoCo's encoders alone
    del objective, optimiser
    free(device)


ENCODER_STEP = "MoCo encoders (views given, no augmentation)"


def measure_encoder_steps(run: Run, batches: Batches) -> None:
    """MoCo's step without view building and augmentation: `MoCo.forward(view_a, view_b, index)` (query encoder
    forward + backward on both views, key encoder forward on both, queue), SGD, per backbone. A MoCo-family
    step's throughput is judged against it (`throughput_vs_encoder_step`)."""
    if not run.wanted("encoder_step", ENCODER_STEP):
        return
    spec = load_methods().get("moco")
    for backbone in run.size.backbones:
        with run.guard(f"encoder_step/{ENCODER_STEP}/{backbone[0]}/{run.device}", run.device):
            measure_encoder_step(run, batches, spec, backbone)


def measure_encoder_step(run: Run, batches: Batches, spec: MethodSpec, backbone: tuple[str, dict]) -> None:
    device = run.device
    objective = build(spec, Case("moco"), backbone, device, run.channels_last)
    optimiser = sgd(objective)
    batch = batches.get("pair", 1, device)
    gens = generators()

    def step() -> None:
        with amp.autocast(run.precision, device):
            loss, _ = objective.moco(batch["views"][:, 0], batch["views"][:, 1], batch["index"], next(gens))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    run.timed("encoder_step", ENCODER_STEP, device, step, run.size.batch, backbone=backbone[0],
              backbone_options=backbone[1], input_shape=list(batch["views"].shape), precision=run.precision,
              channels_last=run.channels_last)
    del objective, optimiser
    free(device)


def measure_backbones(run: Run, batches: Batches) -> None:
    name = "backbone forward+backward"
    if not run.wanted("backbone_step", name):
        return
    device = run.device
    x = batches.get("pair", 1, device)["views"][:, 0]
    if run.channels_last:  # a dense channels_last_3d batch, as the step's augmentation hands the encoder
        x = amp.clips_channels_last(x)
    for backbone_name, options in run.size.backbones:
        with run.guard(f"backbone_step/{name}/{backbone_name}/{device}", device):
            measure_backbone(run, name, x, backbone_name, options)


def measure_backbone(run: Run, name: str, x: torch.Tensor, backbone_name: str, options: dict) -> None:
    device = run.device
    torch.manual_seed(0)
    net = build_backbone(backbone_name, **options).to(device).train()
    if run.channels_last:
        amp.model_channels_last(net)

    def step() -> None:
        with amp.autocast(run.precision, device):
            features = net(x)
        features.float().square().mean().backward()
        net.zero_grad(set_to_none=True)

    run.timed("backbone_step", name, device, step, run.size.batch, backbone=backbone_name, backbone_options=options,
              input_shape=list(x.shape), precision=run.precision, channels_last=run.channels_last)
    del net
    free(device)


@dataclass(frozen=True)
class LoaderSource:
    """Where ClipDataset reads frames from: decoding the files, its in-memory cache, or the on-disk frame cache."""
    name: str
    cache: bool        # ClipDataset(cache=...): decoded videos kept in memory after the first pass
    frame_cache: bool  # ClipDataset(frame_cache=CachedFrames(...)): frames read from the on-disk cache
    mmap: bool = False  # CachedFrames(mmap=...): the cache's .npy entries memory-mapped
    warm_passes: int = 0

    @property
    def source(self) -> str:
        if self.frame_cache:
            return "on-disk frame cache (memory-mapped)" if self.mmap else "on-disk frame cache"
        return "in-memory decoded cache" if self.cache else "video files"


LOADER_SOURCES = (
    LoaderSource("ClipDataset pair from video files", cache=False, frame_cache=False),
    # the in-memory cache is filled by one untimed pass; the disk cache's page cache is warmed the same way
    LoaderSource("ClipDataset pair from in-memory cache", cache=True, frame_cache=False, warm_passes=1),
    LoaderSource("ClipDataset pair from on-disk frame cache", cache=False, frame_cache=True, warm_passes=1),
    LoaderSource("ClipDataset pair from on-disk frame cache (mmap)", cache=False, frame_cache=True, mmap=True,
                 warm_passes=1),
)


def measure_loader(run: Run, workdir: Path) -> None:
    """ClipDataset "pair" clips/s over a generated set: decoding the files, from the in-memory decoded cache, and
    from the on-disk frame cache (`scenebias.data.frame_cache.build_cache`, built once here, untimed)."""
    from scenebias.data.formats import read_split
    from scenebias.data.frame_cache import build_cache
    from scenebias.data.synthetic import GeneratorConfig, generate

    wanted = [s for s in LOADER_SOURCES if run.wanted("loader", s.name)]
    if not wanted:
        return
    config = GeneratorConfig.tiny(flavours=["ucf101"], **run.size.data)
    root = workdir / "videos"
    workers = 1 if run.size_name != "paper" else min(8, os.cpu_count() or 1)
    manifest = generate(config, root, workers=workers, progress=False)
    records = read_split("ucf101", root / "ucf101", "train").records
    run.dataset = {"generator_config": config.to_dict(), "manifest_hash": manifest["hash"],
                   "videos": len(records), "split": "ucf101 train"}
    cache_dir = workdir / "frame_cache"
    if any(s.frame_cache for s in wanted):
        built = build_cache(records, cache_dir, progress=False, workers=workers)
        run.dataset["frame_cache"] = {"entries": built["entries"], "bytes": built["bytes"]}
    batch = min(run.size.batch, len(records))
    iters = run.runs("cpu")[1]
    for source in wanted:
        with run.guard(f"loader/{source.name}/cpu", "cpu"):
            measure_pass(run, source, records, batch, iters, config, cache_dir)


def measure_pass(run: Run, source: LoaderSource, records, batch: int, iters: int, config, cache_dir: Path) -> None:
    """One loader entry: a call is one pass over the set; reported per batch, with the pass time beside it."""
    from torch.utils.data import DataLoader

    from scenebias.data.datasets import ClipDataset
    from scenebias.data.frame_cache import CachedFrames

    frames = CachedFrames(cache_dir, mmap=source.mmap) if source.frame_cache else None
    dataset = ClipDataset(records, clip_len=run.size.clip_len, stride=1, mode="pair", crop_size=run.size.crop,
                          seed=0, cache=source.cache, frame_cache=frames)
    # Workers are started once, in an untimed pass, and kept (the in-memory cache lives in each of them): a pass
    # then times reading, not process start-up.
    loader = DataLoader(dataset, batch_size=batch, num_workers=run.workers, persistent_workers=run.workers > 0)
    warm = max(source.warm_passes, 1 if run.workers > 0 else 0)

    def one_pass() -> None:
        collections.deque(loader, maxlen=0)  # draw every batch and keep none: the reading is what is timed

    entry = run.timed("loader", source.name, "cpu", one_pass, len(records), runs=(warm, iters),
                      batch=batch, videos=len(records), views_per_item=2, cache=source.cache,
                      frame_cache=source.frame_cache, mmap=source.mmap, source=source.source, workers=run.workers,
                      clip=[3, run.size.clip_len, run.size.crop, run.size.crop],
                      video=[config.num_frames, config.resolution, config.resolution],
                      precision=None, channels_last=False)
    passes = len(loader)
    entry["ms_per_pass"] = entry["ms_per_batch"]
    entry["ms_per_batch"] /= passes
    entry["min_ms"] /= passes
    entry["samples_ms"] = [round(x / passes, 4) for x in entry["samples_ms"]]
    entry["timing_note"] = f"one pass over {len(records)} videos = {passes} batches, divided by {passes}"


def attach_shares(entries: list[dict]) -> None:
    """Each view builder's share of the step time of the method that uses it, per backbone (the step with
    the same options where measured, else the method's defaults step); each step's own view-builder share."""
    steps = {(e["name"], e["device"], e["backbone"]): e for e in entries if e["kind"] == "train_step"}
    views = {(e["name"], e["device"]): e for e in entries if e["kind"] == "view_builder"}
    backbones = sorted({e["backbone"] for e in steps.values()})
    for step in steps.values():
        view = views.get((step["name"], step["device"]))
        if view is not None:
            step["view_builder_ms"] = view["ms_per_batch"]
            step["view_builder_share"] = view["ms_per_batch"] / step["ms_per_batch"]
    for view in views.values():
        view["step_share"], view["step_share_basis"] = {}, {}
        for backbone in backbones:
            for key, basis in ((view["name"], "same options"), (view["method"], "method defaults")):
                step = steps.get((key, view["device"], backbone))
                if step is not None:
                    view["step_share"][backbone] = view["ms_per_batch"] / step["ms_per_batch"]
                    view["step_share_basis"][backbone] = basis
                    break


FED_METHOD = "moco+fame"  # the step the loader must keep fed (the MoCo+FAME pretraining)


def attach_rates(entries: list[dict]) -> None:
    """Each MoCo-family training step's throughput relative to MoCo's encoders alone on the same device and
    backbone (`throughput_vs_encoder_step`: encoder ms / step ms, 1 = no cost beyond the encoders), and each loader
    entry's clips/s relative to what the FED_METHOD step consumes (`feeds_step`, per backbone; > 1 keeps up)."""
    encoders = {(e["device"], e["backbone"]): e for e in entries if e["kind"] == "encoder_step"}
    fed = [e for e in entries if e["kind"] == "train_step" and e["name"] == FED_METHOD]
    for step in (e for e in entries if e["kind"] == "train_step" and e.get("moco_family")):
        reference = encoders.get((step["device"], step["backbone"]))
        if reference is not None:
            step["encoder_step_ms"] = reference["ms_per_batch"]
            step["throughput_vs_encoder_step"] = reference["ms_per_batch"] / step["ms_per_batch"]
    for loader in (e for e in entries if e["kind"] == "loader"):
        if fed:
            loader["feeds_step"] = {s["backbone"]: loader["clips_per_s"] / s["clips_per_s"] for s in fed}
            loader["fed_step"] = f"train_step/{FED_METHOD} on {fed[0]['device']}"
            loader["fed_device_name"] = fed[0]["device_name"]


# ------------------------------------------------------------------------------------------------ output
def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


def _share(entry: dict) -> str:
    if entry["kind"] == "train_step" and "view_builder_share" in entry:
        return f"{100 * entry['view_builder_share']:.2g}%"
    if entry["kind"] == "view_builder" and entry.get("step_share"):
        return ", ".join(f"{b} {100 * s:.2g}%" + (" (vs defaults step)" if entry["step_share_basis"][b] != "same options"
                                                   else "") for b, s in entry["step_share"].items())
    return "—"


def _precision(entry: dict) -> str:
    if entry.get("precision") is None:
        return "—"
    return entry["precision"] + (", channels_last_3d" if entry.get("channels_last") else "")


def _rate(entry: dict) -> str:
    if "throughput_vs_encoder_step" in entry:
        return f"{100 * entry['throughput_vs_encoder_step']:.3g}% of encoder step"
    if entry.get("feeds_step"):
        return "feeds " + ", ".join(f"{b} step ×{r:.3g}" for b, r in entry["feeds_step"].items())
    return "—"


def markdown(report: dict) -> str:
    prov, settings = report["provenance"], report["settings"]
    libs = prov["libraries"]
    lines = [
        f"# scenebias perf: size `{report['size']}`, device `{settings['device']}`", "",
        f"- device: {prov['device']}" + (f"; CPU entries: {prov['cpu']}" if settings["device"] != "cpu" else ""),
        f"- commit `{prov['git_commit']}`, {prov['timestamp']}, host {prov['host']}, "
        f"load average {', '.join(f'{x:.2f}' for x in prov['load_average'])} at start",
        f"- torch {libs.get('torch')}, torchvision {libs.get('torchvision')}, python {libs.get('python')}"
        + (f", CUDA {prov['cuda']}, cuDNN {prov['cudnn']}" if prov.get("cuda") else "")
        + f", {prov['torch_threads']} torch threads",
        f"- batch {settings['batch']} × 3 × {settings['clip_len']} × {settings['crop']}²; backbones "
        f"{', '.join(settings['backbones'])}; steps in {settings['precision']}"
        f"{', channels_last_3d' if settings['channels_last'] else ', contiguous'} (--precision "
        f"{settings['precision_setting']}, --channels-last {settings['channels_last_setting']}); augmentation and "
        "view builders in fp32 outside autocast, as the loops run them; training steps for "
        + ("each method's defaults" if settings["steps"] == "defaults" else "every case"),
        f"- timing: median of {settings['iters']} runs after {settings['warmup']} warm-up runs"
        + (f" (CPU entries: {settings['cpu_iters']} after {settings['cpu_warmup']})"
           if settings.get("cpu_iters") is not None else "")
        + "; clips/s = batch / median (loader: videos per second of a full pass)",
        f"- peak memory: {report['peak_memory_kind']}",
        f"- loader set: {report['dataset'].get('videos', '—')} generated videos, manifest "
        f"`{report['dataset'].get('manifest_hash', '—')}`"
        + (f", on-disk frame cache {report['dataset']['frame_cache']['bytes'] / 2 ** 20:.1f} MB"
           if report["dataset"].get("frame_cache") else "") + f"; {settings['workers']} workers",
        "- targets: " + "; ".join(f"{t['text']} ({', '.join(f'{k}: {v}' for k, v in t['entries'].items()) or 'no entry'})"
                                  for t in report["targets"].values()),
        "",
        "| kind | name | backbone | device | precision | ms/batch | clips/s | view share of step | rate vs reference "
        "| peak MB | targets |",
        "| --- | --- | --- | --- | --- | ---: | ---: | --- | --- | ---: | --- |",
    ]
    for e in report["entries"]:
        targets = "; ".join(f"{t['id']}: {t['status']}" for t in e["targets"]) or "—"
        lines.append("| " + " | ".join(_cell(c) for c in (
            e["kind"], e["name"], e["backbone"] or "—", e["device"], _precision(e), _num(e["ms_per_batch"]),
            _num(e["clips_per_s"]), _share(e), _rate(e), f"{e['peak_memory_mb']:.0f}", targets)) + " |")
    if report["skipped"]:
        lines += ["", "Not measured: " + "; ".join(f"{s['name']} ({s['why']})" for s in report["skipped"])]
    if report["failed"]:
        lines += ["", "Failed:", ""] + [f"- `{f['what']}`: {f['error']} (raised at {f['raised_at']})"
                                         for f in report["failed"]]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf.harness", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument("--out", required=True, type=Path, help="folder for perf.json and perf.md")
    p.add_argument("--aug-devices", default="auto",
                   help="comma-separated devices for the view builders and the base augmentation "
                        "(default: the device, plus cpu when it is cuda)")
    p.add_argument("--steps", choices=["all", "defaults"], default="defaults",
                   help="time a training step for each method's defaults (default) or for every variant too")
    p.add_argument("--precision", choices=list(amp.PRECISIONS), default="auto",
                   help="bf16: training, encoder and backbone steps' forward + loss under torch.autocast(bfloat16); "
                        "auto (default): as the training loop, bf16 on CUDA and fp32 on a CPU")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], nargs="?", const="on", default="auto",
                   help="models and clips of the step device in torch.channels_last_3d; auto (default): as the "
                        "training loop, on for CUDA only; a bare --channels-last means on")
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers for the loader entries (default: 0, at size paper the machine's cores)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=None, help="override the size's warm-up runs")
    p.add_argument("--iters", type=int, default=None, help="override the size's timed runs")
    p.add_argument("--only", action="append", default=[], metavar="GLOB",
                   help="measure only entries whose name or kind/name matches (repeatable), e.g. 'moco+fame*', "
                        "'view_builder/*', 'train_step/moco'")
    p.add_argument("--fail-on-target", action="store_true", help="exit 1 when a target that applies fails")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_harness(args)
    except ScenebiasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run_harness(args: argparse.Namespace) -> int:
    t0 = time.time()
    load_average = list(os.getloadavg())
    device = resolve_device({"device": args.device})
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.workers is None:
        args.workers = (os.cpu_count() or 1) if args.size == "paper" else 0
    for key in ("warmup", "iters", "workers"):
        value = getattr(args, key)
        if value is not None and value < (1 if key == "iters" else 0):
            raise ConfigError(f"--{key}: {value} is out of range")
    aug_devices = ([device] + (["cpu"] if device != "cpu" else []) if args.aug_devices == "auto"
                   else [d.strip() for d in args.aug_devices.split(",") if d.strip()])
    for d in aug_devices:
        resolve_device({"device": d})
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    size = SIZES[args.size]
    precision = amp.resolve_precision(args.precision, device)
    channels_last = amp.resolve_channels_last({"on": True, "off": False}.get(args.channels_last, "auto"), device)
    run = Run(args.size, size, device, aug_devices, args.steps, precision, channels_last,
              args.workers, args.only, args.warmup, args.iters)
    with tempfile.TemporaryDirectory(prefix="scenebias-perf-") as tmp:
        measure_loader(run, Path(tmp))
    batches = Batches(size, (device,) if channels_last else ())
    measure_augmentation(run, batches)
    measure_views_and_steps(run, batches)
    measure_encoder_steps(run, batches)
    measure_backbones(run, batches)
    batches.clear()
    attach_shares(run.entries)
    attach_rates(run.entries)
    summary = judge_all(run.entries, args.size, TARGETS)

    warmup, iters = run.runs(device)
    settings = {"device": device, "aug_devices": aug_devices, "size": args.size, "batch": size.batch,
                "clip_len": size.clip_len, "crop": size.crop,
                "backbones": [f"{n}({', '.join(f'{k}={v}' for k, v in o.items())})" if o else n
                              for n, o in size.backbones],
                "view_backbone": VIEW_BACKBONE[0], "steps": run.steps, "precision": precision,
                "channels_last": channels_last, "precision_setting": args.precision,
                "channels_last_setting": args.channels_last, "workers": args.workers, "warmup": warmup, "iters": iters,
                "cpu_warmup": run.runs("cpu")[0] if size.cpu_iters is not None else None,
                "cpu_iters": run.runs("cpu")[1] if size.cpu_iters is not None else None,
                "only": args.only, "num_classes": NUM_CLASSES}
    extra: dict[str, Any] = {"size": args.size, "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             "host": platform.node(), "load_average": load_average,
                             "torch_threads": torch.get_num_threads(), "cpu": device_description("cpu"),
                             "command": " ".join(["python -m benchmarks.perf.harness", *sys.argv[1:]])}
    if device.startswith("cuda"):
        extra |= {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    record = provenance(cfg=settings, seed=0, device=device, wall_time_s=time.time() - t0, **extra)
    record["dataset_manifest_hash"] = run.dataset.get("manifest_hash")
    report = {"format": FORMAT, "size": args.size, "settings": settings, "provenance": record,
              "peak_memory_kind": peak_memory(device)["peak_memory_kind"], "dataset": run.dataset,
              "targets": summary, "skipped": run.skipped, "failed": run.failed, "entries": run.entries}
    bad = [e["id"] for e in run.entries if not all(math.isfinite(e[k]) and e[k] > 0
                                                   for k in ("ms_per_batch", "clips_per_s"))]
    if bad:
        raise ScenebiasError(f"non-positive or non-finite timings: {', '.join(bad)}")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "perf.json", report)
    write_text(args.out / "perf.md", markdown(report))
    print(f"wrote {args.out / 'perf.json'} and {args.out / 'perf.md'} ({len(run.entries)} entries, "
          f"{time.time() - t0:.1f} s)")
    if run.failed:
        print(f"{len(run.failed)} measurement(s) failed: see 'failed' in perf.json", file=sys.stderr)
        return 1
    missed = [t for e in run.entries for t in e["targets"] if t["status"] == "fail"]
    return 1 if missed and args.fail_on_target else 0


if __name__ == "__main__":
    sys.exit(main())
