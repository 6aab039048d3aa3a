"""The frame-cache benchmark: bytes per cached video, read time per clip and a loader's peak resident memory at
real-data frame size, and what they mean for UCF101, HMDB51, Diving48 and Kinetics-400; writes `cache.json` +
`cache.md`.

    python -m benchmarks.perf.cache --videos 16 --out DIR

Over N synthetic 320×240 H.264 videos (`--seconds` at `--fps`, generated with PyAV in a temporary folder):
- each frame store (`scenebias.data.frame_cache.FrameSpec`): .npy as decoded (the cache before), .npy at the
  short side, JPEG as decoded and at the short side: bytes per video and per pixel, build time, and the median
  time to read one 16-frame clip (stride 2) of a video from the cache (and, for .npy, memory-mapped), beside
  decoding the H.264 file;
- a loader's peak RSS: `ClipDataset` pair items (16 × 112², the paper preset's clips) through a `DataLoader`
  built per epoch as the training loop builds it, each case in a fresh process: its own and its workers' peak
  RSS (getrusage), before (unbounded in-memory cache) and after (a byte budget, smaller frames);
- the arithmetic: each real dataset's cache size as .npy and JPEG at the cached frame size, and what a loader
  worker held in memory before, from the measured bytes per pixel.

`measure` lives in `cache_measure.py`, the Markdown in `render.py` (`cache_markdown`).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from scenebias.errors import ConfigError, exit_status
from scenebias.io import write_json, write_text
from scenebias.provenance import device_description, provenance

from . import cache_measure as cm
from .render import cache_markdown

FORMAT = "scenebias-perf-cache/1"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf.cache", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder for cache.json and cache.md")
    p.add_argument("--videos", type=int, default=16, help="synthetic 320x240 videos (default 16)")
    p.add_argument("--seconds", type=float, default=7.0, help="length of each video (default 7, UCF101's mean)")
    p.add_argument("--fps", type=int, default=25, help="frame rate (default 25, UCF101's)")
    p.add_argument("--short-side", type=int, default=128, help="cached short side (default 128: 112-px crops)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90, data.frames.jpeg_quality's)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the loader cases (default 2)")
    p.add_argument("--batch", type=int, default=4, help="loader batch (default 4)")
    p.add_argument("--epochs", type=int, default=1, help="loader epochs per case (default 1)")
    p.add_argument("--budget-mb", type=float, default=64,
                   help="in-memory budget of the bounded .npy cases (default 64 MB: below the set's size, so it "
                        "evicts)")
    p.add_argument("--arith-workers", type=int, default=8,
                   help="loader workers in the per-worker memory arithmetic (default 8, the paper preset's)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of this process (default 1, as a DataLoader worker: read times per clip are "
                        "single-core figures)")
    p.add_argument("--build-workers", type=int, default=None, help="processes generating and caching the videos "
                                                                    "(default: the machine's cores)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return exit_status(lambda: run(args))


def _check(args: argparse.Namespace) -> None:
    for key, low in (("videos", 1), ("fps", 1), ("threads", 1), ("short_side", 8), ("quality", 1), ("workers", 0), ("batch", 1),
                     ("epochs", 1), ("arith_workers", 1)):
        if getattr(args, key) < low:
            raise ConfigError(f"--{key.replace('_', '-')}: {getattr(args, key)} is below {low}")
    if args.quality > 100 or args.seconds <= 0 or args.budget_mb < 0:
        raise ConfigError("--quality must be 1..100, --seconds positive, --budget-mb not negative")


def run(args: argparse.Namespace) -> int:
    t0 = time.time()
    _check(args)
    torch.set_num_threads(args.threads)
    load_average = list(os.getloadavg())
    build_workers = args.build_workers or os.cpu_count() or 1
    frames = round(args.seconds * args.fps)
    with tempfile.TemporaryDirectory(prefix="scenebias-perf-cache-") as tmp:
        work = Path(tmp)
        videos = cm.make_videos(work / "videos", args.videos, args.seconds, args.fps, build_workers)
        source_bytes = sum(v.stat().st_size for v in videos) / len(videos)
        measured = [cm.measure_store(s, videos, work, build_workers, frames)
                    for s in cm.stores(args.short_side, args.quality)]
        decoding = cm.measure_decoding(videos, frames)
        loaders = [cm.measure_loader(c, videos, work, args.workers, args.batch, args.epochs)
                   for c in cm.loader_cases(args.short_side, args.quality, args.budget_mb)]
    settings = {k: v for k, v in vars(args).items() if k != "out"} | {"build_workers": build_workers,
                                                                      "frames_per_video": frames,
                                                                      "source_size": list(cm.SOURCE),
                                                                      "crf": cm.CRF, "clip": cm.CLIP}
    extra = {"timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
             "load_average": load_average, "cpu": device_description("cpu"),
             "command": " ".join(["python -m benchmarks.perf.cache", *sys.argv[1:]])}
    record = provenance(cfg=settings, seed=0, device="cpu", wall_time_s=time.time() - t0, **extra)
    report = {"format": FORMAT, "settings": settings, "provenance": record,
              "source": {"videos": len(videos), "bytes_per_video": source_bytes,
                         "kbit_per_s": source_bytes * 8 / args.seconds / 1000},
              "stores": measured, "decoding": decoding, "loaders": loaders,
              "datasets": cm.arithmetic(measured, args.short_side, args.arith_workers)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "cache.json", report)
    text = cache_markdown(report)
    write_text(args.out / "cache.md", text)
    print(text)
    print(f"wrote {args.out / 'cache.json'} and {args.out / 'cache.md'} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
