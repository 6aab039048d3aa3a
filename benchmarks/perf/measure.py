"""The perf harness's measurements: the cases, the inputs, and one `measure_*` per kind of entry (loader,
augmentation, view builder, training step, encoder step, backbone step), recorded on a `Run`; then each entry's
shares and rates relative to the others. `harness.py` is the command, `render.py` the Markdown table.

Everything measured is the suite's own code, never a copy of it: a training step is
`scenebias.train.loop.train_step` with the loop's optimiser (`make_optimizer`), as the training loop runs it.
"""
from __future__ import annotations

import collections
import contextlib
import fnmatch
import itertools
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from scenebias.data.transforms import ColourParams, apply_colour, blur_kernel_size, normalize
from scenebias.models.backbones import build_backbone
from scenebias.data.transforms import augment_factory
from scenebias.plugins import MethodSpec, load_methods
from scenebias.provenance import REPO_ROOT, device_description
from scenebias.train import precision as amp
from scenebias.train.loop import TrainConfig, make_optimizer, train_step

from .timing import peak_memory, reset_peak_memory, time_ms

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
                                   "scenebias.data.transforms.augment_factory(generator)(x): colour jitter / grayscale / "
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


def measure_step(run: Run, batches: Batches, spec: MethodSpec, case: Case, backbone: tuple[str, dict],
                 info: dict) -> None:
    """The loop's step (scenebias.train.loop.train_step, with the loop's optimiser at `TrainConfig` defaults):
    forward + loss under the run's autocast, the view builder outside it, backward and SGD outside it."""
    device = run.device
    objective = build(spec, case, backbone, device, run.channels_last)
    optimiser = make_optimizer(objective, TrainConfig())
    batch = batches.get(objective.dataset_mode, objective.clip_len_factor, device)
    gens = generators()
    losses: list[torch.Tensor] = []

    def step() -> None:
        loss, _ = train_step(objective.training_loss, optimiser, batch, augment_factory, next(gens), run.precision,
                             device)
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
    optimiser = make_optimizer(objective, TrainConfig())
    batch = batches.get("pair", 1, device)
    gens = generators()

    def encoders(given, _augment, generator):  # the views as given: no view builder, no augmentation
        return objective.moco(given["views"][:, 0], given["views"][:, 1], given["index"], generator)

    def step() -> None:
        train_step(encoders, optimiser, batch, lambda generator: None, next(gens), run.precision, device)

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
