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
    threshold: float                            # pass when metric <= threshold
    unit: str
    device: str                                 # a substring of the device name, e.g. "H100"
    size: str                                   # the harness size it is stated at


def _is_fame_op(entry: dict) -> bool:
    """The FAME operation itself: one merged view per batch (mask "fame", one branch)."""
    opts = entry.get("resolved_options") or {}
    return entry.get("method") == "moco+fame" and opts.get("mask") == "fame" and opts.get("branches") == "single"


def _largest_share(entry: dict) -> float | None:
    shares = [s for s in (entry.get("step_share") or {}).values() if s is not None]
    return max(shares) if shares else None


TARGETS: tuple[Target, ...] = (
    Target("fame_ms", "FAME ≤ 2 ms per batch of 64 × 3 × 16 × 112² on an H100", "view_builder", _is_fame_op,
           lambda e: e.get("ms_per_batch"), 2.0, "ms", "H100", "paper"),
    Target("view_share", "every view builder under 5% of the step time of the method that uses it (H100)",
           "view_builder", lambda e: True, _largest_share, 0.05, "share of step", "H100", "paper"),
)


def judge(target: Target, entry: dict, size: str) -> dict[str, Any]:
    """The target's record for one entry: what it says, the value, the threshold and its status."""
    device = entry["device_name"]
    value = target.metric(entry)
    if target.device not in device:
        where = entry["device"] if entry["device"] == "cpu" else f"{entry['device']}: {device}"
        status = f"not applicable (device {where}; the target is for an {target.device})"
    elif size != target.size:
        status = f"not applicable (size {size}; the target is stated at size {target.size})"
    elif value is None:
        status = "not measured"
    else:
        status = "pass" if value <= target.threshold else "fail"
    return {"id": target.id, "text": target.text, "value": value, "threshold": target.threshold,
            "unit": target.unit, "device": target.device, "size": target.size, "status": status}


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
                              "threshold": target.threshold, "unit": target.unit, "entries": counts}
    return summary
