"""The perf harness: one command measures every view builder, the base augmentation and its parts, a full
pretraining step per method and backbone, MoCo's encoders alone, the backbone alone, and the data loader, and
writes `perf.json` + `perf.md`.

    python -m benchmarks.perf.harness --size tiny|small|paper --device cpu|cuda|auto --out DIR

Everything measured is the suite's own code, never a copy of it:
- view builders: `make_views(batch, generator)` of every registered method (`scenebias.plugins.load_methods`)
  and every option value it declares in `variants`, plus each boolean option flipped (e.g. the pretext
  tasks' `be_consistency`), on a random batch of the method's `dataset_mode` and `clip_len_factor`;
- the base augmentation: `scenebias.data.transforms.augment_factory(generator)(x)` (colour jitter, grayscale,
  blur, normalisation) on one (B, C, T, H, W) batch, and its parts (`scenebias.data.transforms.apply_colour`
  with every clip jittered / greyed / blurred, `normalize`);
- a training step: the loop's own `scenebias.train.loop.train_step` (`training_loss(batch, augment, generator)`
  + backward + the SGD step of `make_optimizer`, `TrainConfig` defaults), per method and backbone
  (`build_backbone`), under the loop's precision and memory layout (`scenebias.train.precision`: autocast around
  forward + loss, view builders outside it); the view builder's share of it;
- MoCo's encoders alone (`MoCo.forward` on the given views: no view builder, no augmentation) through the same
  `train_step`: the reference a MoCo-family step's throughput is judged against;
- the backbone alone: forward + backward on one (B, C, T, H, W) batch, for reference;
- the data loader: `ClipDataset` in "pair" mode over a generated set (`GeneratorConfig.tiny`), from the
  video files, from the in-memory decoded cache (cache=True, after a warm pass) and from the on-disk frame cache
  (`scenebias.data.frame_cache`, read into memory and memory-mapped).

Precision and layout: `--precision auto` and `--channels-last auto` resolve as the training loop does (bf16 +
channels_last_3d on CUDA, fp32 + contiguous on a CPU); every entry records the precision and layout it ran in.

Timings are medians after warm-up (see `timing.py`); targets (see `targets.py`) sit beside the entries they
judge. View builders are built on a tiny3d backbone: they never touch it, and building ~30 MoCo copies of a
paper backbone only to time their view builders would cost more than the measurement.

This module is the command (options, settings, provenance, the files); `measure.py` holds the measurements and
`render.py` the Markdown table.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from scenebias.errors import ConfigError, ScenebiasError, exit_status
from scenebias.io import write_json, write_text
from scenebias.device import resolve_device
from scenebias.provenance import device_description, provenance
from scenebias.train import precision as amp

from .measure import (NUM_CLASSES, SIZES, VIEW_BACKBONE, Batches, Run, attach_rates, attach_shares,
                      measure_augmentation, measure_backbones, measure_encoder_steps, measure_loader,
                      measure_views_and_steps)
from .render import markdown
from .targets import TARGETS, judge_all
from .timing import peak_memory

FORMAT = "scenebias-perf/1"


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
    return exit_status(lambda: run_harness(args))


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
