"""The speed targets of the "GPU speed" issue, recorded beside the measurement they judge.

A target names the device and the size it is stated for. It is judged (pass / fail) only on an entry
measured on that device at that size; anywhere else its status says why it does not apply, so a CPU run in
CI records the targets without pretending to meet or miss them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Target:
    id: str
    text: str
    kind: str                                   # the entry kind it judges
    applies: Callable[[dict], bool]             # which entries of that kind
    metric: Callable[[dict], float | None]      # the measured value (None: not measured)
    threshold: float                            # pass when metric <= threshold (>= with at_least)
    unit: str
    device: str                                 # a substring of the device name, e.g. "H100"
    size: str                                   # the harness size it is stated at
    at_least: bool = False                      # a floor (throughputs) rather than a ceiling (times)
    # the device name the target's device is looked for in: the entry's own by default; a loader entry runs on
    # the CPU and is judged against the GPU whose step it feeds
    device_of: Callable[[dict], str] = lambda e: e["device_name"]


def _is_fame_op(entry: dict) -> bool:
    """The FAME operation itself: one merged view per batch (mask "fame", one branch)."""
    opts = entry.get("resolved_options") or {}
    return entry.get("method") == "moco+fame" and opts.get("mask") == "fame" and opts.get("branches") == "single"


def _largest_share(entry: dict) -> float | None:
    shares = [s for s in (entry.get("step_share") or {}).values() if s is not None]
    return max(shares) if shares else None


def _is_fame_step(entry: dict) -> bool:
    """The MoCo+FAME training step with its defaults on R(2+1)D-18 (the issue's pretraining)."""
    return entry.get("name") == "moco+fame" and entry.get("backbone") == "r2plus1d_18"


def _slowest_feed(entry: dict) -> float | None:
    """The loader's clips/s over the MoCo+FAME step's, on R(2+1)D-18 where measured, else the least over backbones."""
    feeds = entry.get("feeds_step") or {}
    if "r2plus1d_18" in feeds:
        return feeds["r2plus1d_18"]
    return min(feeds.values()) if feeds else None


TARGETS: tuple[Target, ...] = (
    Target("fame_ms", "FAME ≤ 2 ms per batch of 64 × 3 × 16 × 112² on an H100", "view_builder", _is_fame_op,
           lambda e: e.get("ms_per_batch"), 2.0, "ms", "H100", "paper"),
    Target("view_share", "every view builder under 5% of the step time of the method that uses it (H100)",
           "view_builder", lambda e: True, _largest_share, 0.05, "share of step", "H100", "paper"),
    Target("step_throughput", "MoCo+FAME R(2+1)D-18 pretraining step ≥ 90% of the throughput of MoCo's encoders "
           "alone (views given, no augmentation) in the same run (H100)", "train_step", _is_fame_step,
           lambda e: e.get("throughput_vs_encoder_step"), 0.9, "× encoder-step clips/s", "H100", "paper",
           at_least=True),
    Target("loader_keeps_up", "the loader reading the on-disk frame cache delivers at least the clips/s the "
           "MoCo+FAME R(2+1)D-18 step consumes on an H100, with the machine's cores as workers", "loader",
           lambda e: bool(e.get("frame_cache")), _slowest_feed, 1.0, "× step clips/s", "H100", "paper",
           at_least=True, device_of=lambda e: e.get("fed_device_name") or e["device_name"]),
)


def judge(target: Target, entry: dict, size: str) -> dict[str, Any]:
    """The target's record for one entry: what it says, the value, the threshold and its status."""
    device = target.device_of(entry)
    value = target.metric(entry)
    if target.device not in device:
        where = "cpu" if device.startswith("cpu") else (
            f"{entry['device']}: {device}" if device == entry["device_name"] else device)
        status = f"not applicable (device {where}; the target is for an {target.device})"
    elif size != target.size:
        status = f"not applicable (size {size}; the target is stated at size {target.size})"
    elif value is None:
        status = "not measured"
    else:
        met = value >= target.threshold if target.at_least else value <= target.threshold
        status = "pass" if met else "fail"
    return {"id": target.id, "text": target.text, "value": value, "threshold": target.threshold,
            "at_least": target.at_least, "unit": target.unit, "device": target.device, "size": target.size,
            "status": status}


def judge_all(entries: list[dict], size: str, targets: tuple[Target, ...] = TARGETS) -> dict[str, Any]:
    """Attach each applicable target to its entries (entry["targets"]); return a summary per target."""
    summary: dict[str, Any] = {}
    for entry in entries:
        entry.setdefault("targets", [])
    for target in targets:
        counts: dict[str, int] = {}
        for entry in entries:
            if entry["kind"] == target.kind and target.applies(entry):
                record = judge(target, entry, size)
                entry["targets"].append(record)
                key = record["status"] if record["status"] in ("pass", "fail", "not measured") else "not applicable"
                counts[key] = counts.get(key, 0) + 1
        summary[target.id] = {"text": target.text, "device": target.device, "size": target.size,
                              "threshold": target.threshold, "at_least": target.at_least, "unit": target.unit,
                              "entries": counts}
    return summary
