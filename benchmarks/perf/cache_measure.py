"""The frame-cache benchmark's measurements (`cache.py` is the command): synthetic 320×240 H.264 videos, each
frame store's bytes per video, build time and read time per clip, a loader's peak resident memory, and what the
measured bytes per pixel mean for the real datasets.

Everything measured is the suite's own code: `scenebias.data.frame_cache.build_cache` / `CachedFrames` with a
`FrameSpec`, and `ClipDataset` through a `DataLoader` as the training loop builds it (a new loader per epoch,
`persistent_workers=False`, so a worker's in-memory cache lives for one epoch).
"""
from __future__ import annotations

import collections
import math
import multiprocessing as mp
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scenebias.data.datasets import ClipDataset
from scenebias.data.formats import VideoRecord
from scenebias.data.frame_cache import CachedFrames, FrameSpec, build_cache
from scenebias.data.video import read_video, write_video

from .timing import time_ms

SOURCE = (240, 320)  # H, W: UCF101's and HMDB51's frame size
CLIP = {"clip_len": 16, "stride": 2, "crop_size": 112}  # the paper preset's clips
CRF = 23  # x264's default quality: about UCF101's bit rate for this content (the report gives both)


# ------------------------------------------------------------------------------------------------ videos
def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Noise with a natural image's 1/f falloff: octaves of smooth noise, coarse ones stronger."""
    img = np.zeros((h, w, 3), np.float32)
    for octave in range(1, 7):
        s = 2 ** octave
        small = torch.from_numpy(rng.normal(size=(3, h // s + 3, w // s + 3)).astype(np.float32))
        up = torch.nn.functional.interpolate(small[None], scale_factor=s, mode="bicubic", align_corners=False)[0]
        img += up[:, :h, :w].permute(1, 2, 0).numpy() * s ** 0.7
    return (img - img.mean()) / img.std()


def synthetic_video(path: Path, seed: int, frames: int, fps: int, scene: np.ndarray, actor: np.ndarray) -> Path:
    """A 320×240 H.264 video: a textured scene under a slow camera pan, a textured actor crossing it, sensor noise.
    Numpy only: it runs in forked processes."""
    rng = np.random.default_rng(seed)
    h, w = SOURCE
    yy, xx = np.mgrid[0:96, 0:64]
    body = ((yy - 48) / 48) ** 2 + ((xx - 32) / 32) ** 2 < 1
    out = np.empty((frames, h, w, 3), np.uint8)
    for t in range(frames):
        dx, dy = int(32 + 30 * math.sin(t / 40 + seed)), int(32 + 20 * math.cos(t / 55 + seed))
        frame = scene[dy:dy + h, dx:dx + w].copy()
        ax, ay = int((w - 64) * (0.5 + 0.5 * math.sin(t / 25 + seed))), int(72 + 60 * math.sin(t / 13))
        frame[ay:ay + 96, ax:ax + 64][body] = actor[body]
        out[t] = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255)
    return write_video(path, out, fps=fps, crf=CRF)


def _video_task(task: tuple) -> str:
    return str(synthetic_video(*task))


def make_videos(folder: Path, n: int, seconds: float, fps: int, workers: int) -> list[Path]:
    """`n` videos; their textures are drawn here (torch), the frames and encoding in `workers` processes."""
    h, w = SOURCE
    tasks = []
    for i in range(n):
        rng = np.random.default_rng(1000 + i)
        scene = _texture(rng, h + 64, w + 64) * 45 + rng.uniform(70, 180, 3)
        actor = _texture(rng, 96, 64) * 35 + rng.uniform(40, 220, 3)
        tasks.append((folder / f"v{i:03d}.avi", i, round(seconds * fps), fps, scene, actor))
    if workers <= 1:
        return [Path(p) for p in map(_video_task, tasks)]
    with mp.get_context("fork").Pool(workers) as pool:
        return [Path(p) for p in pool.map(_video_task, tasks)]


# ------------------------------------------------------------------------------------------------ stores
@dataclass(frozen=True)
class Store:
    """One way of caching: a FrameSpec, and which real settings it stands for."""
    name: str
    spec: FrameSpec
    stands_for: str


def stores(short_side: int, quality: int) -> list[Store]:
    return [
        Store("npy, as decoded", FrameSpec(None), "the cache before: data.frame_cache with no resizing"),
        Store(f"npy, short side {short_side}", FrameSpec(short_side), "data.frames.storage: raw"),
        Store(f"jpeg q{quality}, as decoded", FrameSpec(None, "jpeg", quality),
              "storage jpeg at short side >= 240 (the paper preset's auto: 256, for its 224-px I3D rows)"),
        Store(f"jpeg q{quality}, short side {short_side}", FrameSpec(short_side, "jpeg", quality),
              "storage jpeg, short_side 128 (the papers' loaders for 112-px crops)"),
    ]


def _clip_indices(n_frames: int, rng: np.random.Generator) -> torch.Tensor:
    span = (CLIP["clip_len"] - 1) * CLIP["stride"] + 1
    start = int(rng.integers(0, max(n_frames - span, 0) + 1))
    return (start + torch.arange(CLIP["clip_len"]) * CLIP["stride"]) % n_frames


def _read_clip_ms(read, videos: list[Path], n_frames: int, repeats: int) -> dict[str, Any]:
    """Median ms to get one clip's frames ((16, H, W, 3) uint8) of a video, cycling through the videos."""
    rng = np.random.default_rng(0)
    order = iter([(videos[i % len(videos)], _clip_indices(n_frames, rng)) for i in range(repeats + 1)])

    def one() -> None:
        path, idx = next(order)
        read(path)[idx]

    return time_ms(one, "cpu", warmup=1, iters=repeats)


def measure_store(store: Store, videos: list[Path], workdir: Path, workers: int, n_frames: int) -> dict[str, Any]:
    folder = workdir / "caches" / store.name.replace(" ", "_").replace(",", "")
    t0 = time.perf_counter()
    built = build_cache(videos, folder, progress=False, workers=workers, spec=store.spec)
    build_s = time.perf_counter() - t0
    cached = CachedFrames(folder, spec=store.spec)
    shape = cached.videos[next(iter(cached.videos))]["shape"]
    pixels = shape[1] * shape[2]
    entry = {"name": store.name, "stands_for": store.stands_for, "spec": store.spec.to_dict(), "frame_size": shape[1:3],
             "bytes_per_video": built["bytes"] / built["entries"], "bytes_total": built["bytes"],
             "bytes_per_frame": built["bytes"] / built["entries"] / shape[0],
             "bytes_per_pixel": built["bytes"] / built["entries"] / shape[0] / pixels,
             "build_s_per_video": build_s / len(videos), "build_workers": workers}
    entry["read_clip"] = _read_clip_ms(cached.video, videos, n_frames, repeats=2 * len(videos))
    if store.spec.storage == "raw":
        mapped = CachedFrames(folder, mmap=True)
        entry["read_clip_mmap"] = _read_clip_ms(mapped.video, videos, n_frames, repeats=2 * len(videos))
    return entry


def measure_decoding(videos: list[Path], n_frames: int) -> dict[str, Any]:
    """The reference: one clip by decoding the whole H.264 file (what a loader without any cache does)."""
    return _read_clip_ms(read_video, videos, n_frames, repeats=len(videos))


# ------------------------------------------------------------------------------------------------ loader memory
@dataclass(frozen=True)
class LoaderCase:
    name: str
    store: str | None      # a Store name (the on-disk cache it reads), or None: decoding the H.264 files
    spec: dict             # the FrameSpec the dataset asks for
    cache_mb: float | None  # ClipDataset's in-memory budget (None: unbounded, as before)


def loader_cases(short_side: int, quality: int, budget_mb: float) -> list[LoaderCase]:
    raw, jpeg = FrameSpec(None).to_dict(), FrameSpec(short_side, "jpeg", quality).to_dict()
    return [
        LoaderCase(f"reference: jpeg q{quality} short side {short_side}, no memory cache", f"jpeg q{quality}, short "
                   f"side {short_side}", jpeg, 0),
        LoaderCase("before: H.264 decoding, unbounded memory cache", None, raw, None),
        LoaderCase("before: npy as decoded, unbounded memory cache", "npy, as decoded", raw, None),
        LoaderCase(f"after: npy as decoded, {budget_mb:g} MB budget", "npy, as decoded", raw, budget_mb),
        LoaderCase(f"after: npy short side {short_side}, {budget_mb:g} MB budget", f"npy, short side {short_side}",
                   FrameSpec(short_side).to_dict(), budget_mb),
        LoaderCase(f"after: jpeg q{quality} short side {short_side}, 1024 MB budget (the default)",
                   f"jpeg q{quality}, short side {short_side}", jpeg, 1024),
    ]


def _max_rss_mb(who: int) -> float:
    rss = resource.getrusage(who).ru_maxrss
    return rss / 2 ** 20 if sys.platform == "darwin" else rss / 2 ** 10


def _loader_child(case: dict, videos: list[str], cache_dir: str | None, workers: int, batch: int, epochs: int,
                  queue) -> None:
    """In a fresh process: `epochs` epochs of ClipDataset pair items through a DataLoader, as the training loop
    runs them; then this process's and its (joined) workers' peak RSS."""
    torch.set_num_threads(1)
    records = [VideoRecord(Path(v), 0, Path(v).stem) for v in videos]
    budget = None if case["cache_mb"] is None else int(case["cache_mb"] * 2 ** 20)
    dataset = ClipDataset(records, mode="pair", seed=0, cache=True, cache_bytes=budget,
                          frame_spec=FrameSpec.from_dict(case["spec"]),
                          frame_cache=CachedFrames(cache_dir) if cache_dir else None, **CLIP)
    baseline = _max_rss_mb(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        order = torch.randperm(len(records), generator=torch.Generator().manual_seed(epoch)).tolist()
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=order, num_workers=workers,
                                             persistent_workers=False)
        collections.deque(loader, maxlen=0)  # every batch loaded, none kept
        del loader  # joins the workers, so RUSAGE_CHILDREN has them
    seconds = time.perf_counter() - t0
    queue.put({"main_rss_mb": _max_rss_mb(resource.RUSAGE_SELF), "main_rss_before_mb": baseline,
               "worker_rss_mb": _max_rss_mb(resource.RUSAGE_CHILDREN) if workers else None,
               "items_per_s": epochs * len(records) / seconds, "memory_cache_mb": dataset._cache.bytes / 2 ** 20})


def measure_loader(case: LoaderCase, videos: list[Path], workdir: Path, workers: int, batch: int,
                   epochs: int) -> dict[str, Any]:
    cache_dir = None if case.store is None else str(workdir / "caches" / case.store.replace(" ", "_").replace(",", ""))
    ctx = mp.get_context("spawn")  # a fresh interpreter: its peak RSS is this case's alone
    queue = ctx.Queue()
    proc = ctx.Process(target=_loader_child, args=(asdict(case), [str(v) for v in videos], cache_dir, workers,
                                                   batch, epochs, queue))
    proc.start()
    result = queue.get(timeout=3600)
    proc.join()
    return {**asdict(case), "workers": workers, "batch": batch, "epochs": epochs, "videos": len(videos), **result}


# ------------------------------------------------------------------------------------------------ real datasets
@dataclass(frozen=True)
class RealDataset:
    name: str
    videos: int
    train_videos: int  # what one loader epoch reads
    seconds: float
    fps: float
    aspect: float      # width / height
    source_short: int | None  # the files' short side where one size holds (None: it varies)
    source: str        # where the figures come from

    @property
    def frames(self) -> float:
        return self.seconds * self.fps


REAL_DATASETS = (
    RealDataset("UCF101", 13_320, 9_537, 7.21, 25, 4 / 3, 240,
                "13,320 videos, 7.21 s mean, 25 fps, 320×240 (the UCF101 paper); split 1 trains on 9,537"),
    RealDataset("HMDB51", 6_766, 3_570, 3.5, 30, 4 / 3, 240,
                "6,766 distributed clips (the paper counts 6,849), ~3–4 s at 30 fps, 240 px high; a split trains "
                "on 3,570"),
    RealDataset("Diving48", 18_404, 16_067, 5.0, 30, 16 / 9, None,
                "18,404 clips (V1 split: 16,067 train); ~5 s at 30 fps and 16:9 assumed, not checked"),
    RealDataset("Kinetics-400", 240_436, 240_436, 10.0, 30, 16 / 9, None,
                "~240k training clips of 10 s, 25–30 fps (30 used), mostly 16:9 YouTube video of varying size"),
)


def _cached_size(d: RealDataset, short: int | None) -> tuple[int, int] | None:
    """(H, W) of the cached frames: the short side brought down to `short` (never up); None when unknown."""
    side = d.source_short if short is None else (short if d.source_short is None else min(short, d.source_short))
    return None if side is None else (side, round(side * d.aspect))


def arithmetic(stores_measured: list[dict], short_side: int, workers: int) -> list[dict[str, Any]]:
    """Per dataset and cached frame size: the cache's size as .npy (exact) and as JPEG (the measured bytes per
    pixel at the nearest measured size), and what one of `workers` loader workers held in memory before (its share
    of an epoch's videos at that size: the in-memory cache had no bound)."""
    jpeg = {s["frame_size"][0]: s for s in stores_measured if s["spec"]["storage"] == "jpeg"}
    rows = []
    for d in REAL_DATASETS:
        sizes = {}
        for setting in (None, short_side, 2 * short_side):
            size = _cached_size(d, setting)
            if size is not None and size not in sizes.values():
                sizes[setting] = size
        for setting, (h, w) in sizes.items():
            nearest = jpeg[min(jpeg, key=lambda m: abs(m - h))]
            npy_video = h * w * 3 * d.frames
            jpeg_video = nearest["bytes_per_pixel"] * h * w * d.frames
            rows.append({"dataset": d.name, "videos": d.videos, "train_videos": d.train_videos,
                         "frames_per_video": d.frames, "cached_size": [h, w],
                         "short_side": "as decoded" if setting is None else setting,
                         "npy_bytes_per_video": npy_video, "npy_total_bytes": npy_video * d.videos,
                         "jpeg_bytes_per_video": jpeg_video, "jpeg_total_bytes": jpeg_video * d.videos,
                         "jpeg_quality": nearest["spec"]["jpeg_quality"], "jpeg_measured_at": nearest["frame_size"],
                         "before_worker_ram_bytes": npy_video * d.train_videos / max(workers, 1),
                         "workers": workers, "source": d.source})
    return rows
