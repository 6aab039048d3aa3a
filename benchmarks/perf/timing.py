"""Timing and peak memory, the same way for every entry.

A timed call runs `warmup` times untimed, then `iters` times, each timed with `time.perf_counter` and
followed by `torch.cuda.synchronize` on a GPU (kernels are asynchronous: without the sync the clock stops
when the launch returns, not when the work ends). The entry's number is the median: robust to the odd slow
run on a shared machine; the minimum and every sample are kept beside it.
"""
from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Any, Callable

import torch


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], Any], device: str, warmup: int, iters: int) -> dict[str, Any]:
    """Median, minimum and all samples (ms) of `iters` calls of `fn` after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append((time.perf_counter() - start) * 1e3)
    return {"ms_per_batch": statistics.median(samples), "min_ms": min(samples),
            "samples_ms": [round(s, 4) for s in samples], "warmup": warmup, "iters": iters}


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: str) -> dict[str, Any]:
    """GPU: the most memory tensors held since the last reset (this entry alone). CPU: the process's
    maximum resident set size so far, which never goes down, so it bounds every entry measured until now."""
    if device.startswith("cuda"):
        return {"peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2 ** 20,
                "peak_memory_kind": "torch.cuda.max_memory_allocated since the entry started"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mb = rss / 2 ** 20 if sys.platform == "darwin" else rss / 2 ** 10  # bytes on macOS, KiB on Linux
    return {"peak_memory_mb": mb, "peak_memory_kind": "process max RSS so far (getrusage; cumulative)"}
