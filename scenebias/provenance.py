"""Provenance recorded beside every result: code, config, data, seed, libraries, device, wall time."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from .io import read_json

REPO_ROOT = Path(__file__).resolve().parents[1]


# Config keys that change how fast a job runs, not what it computes: left out of the workflow's stage hashes
# (rules/common.smk) and of a checkpoint's fingerprint (scenebias/train/loop.py).
SPEED_ONLY_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("frame_cache", "memory_cache_mb", "workers"),
    "pretrain": ("channels_last", "num_workers", "checkpoint_every"),
    "evaluate": ("num_workers",),
}


def stable_hash(value: Any) -> str:
    """16 hex digits of the SHA-256 of `value` as sorted-key JSON: the one short digest of configs, stage
    inputs and parameter shapes (non-JSON values are hashed by their str)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def canonical_sha256(value: Any) -> str:
    """The full SHA-256 of `value` as canonical JSON (sorted keys, no spaces, ASCII): the dataset manifests'
    `hash` (the generated set's over its file list, a real root's or the combined one's over its content)."""
    canon = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


@lru_cache(maxsize=1)
def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "av", "pytorchvideo", "fvcore", "numpy", "snakemake"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def device_description(device: str) -> str:
    import torch  # only here: provenance is imported by light code (the config, the tables)

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def provenance(*, cfg: Any, seed: int, device: str, wall_time_s: float,
               manifest: str | os.PathLike | None = None, **extra: Any) -> dict[str, Any]:
    record = {
        "git_commit": git_commit(),
        "config_hash": stable_hash(cfg),
        # the hash `manifest` records, as written (scenebias.data.manifest.manifest_hash would re-check it): a
        # model's and an evaluation's are their own flavour's (pretraining, downstream), a paper table's the
        # combined one over every flavour (scenebias.resolve.manifest_path)
        "dataset_manifest_hash": read_json(manifest)["hash"] if manifest else None,
        "seed": seed,
        "libraries": library_versions(),
        "device": device_description(device),
        "wall_time_s": round(wall_time_s, 3),
    }
    record.update(extra)
    return record
