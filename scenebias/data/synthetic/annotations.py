"""Per-video ground truth sidecars: byte-deterministic .npz writing and reading."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...io import atomic_path
from .rendering import boxes_from_masks


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Byte-deterministic .npz (numpy's savez stamps the current time into the zip entries)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asanyarray(arrays[key]), allow_pickle=False)
                info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue())


def save_annotation(path: Path, masks: np.ndarray, label: int, scene_family: int, own_scene: bool,
                    **extra: np.ndarray) -> None:
    masks = np.asarray(masks, dtype=bool)
    arrays = {
        "masks": np.packbits(masks.reshape(-1)),
        "mask_shape": np.array(masks.shape, dtype=np.int64),
        "boxes": boxes_from_masks(masks),
        "label": np.int64(label),
        "scene_family": np.int64(scene_family),
        "own_scene": np.bool_(own_scene),
    }
    arrays.update(extra)
    _save_npz(path, arrays)


def load_annotation(path: str | os.PathLike) -> dict:
    """Unpack a sidecar: masks (T, H, W) bool, boxes (T, 4) int, label int, scene_family int, own_scene bool
    (+ original_scene_family / source_frame where present, and for actor crops crop_box: (T, 4) int32, the
    square each frame was cut to, x0, y0, x1, y1 in the uncropped frame)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: annotation file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as exc:
        raise DataError(f"{p}: not a readable .npz annotation ({type(exc).__name__}: {exc})") from exc
    for k in ("masks", "mask_shape", "boxes", "label", "scene_family", "own_scene"):
        if k not in d:
            raise DataError(f"{p}: annotation lacks {k!r}")
    shape = tuple(int(s) for s in d.pop("mask_shape"))
    d["masks"] = np.unpackbits(d["masks"], count=int(np.prod(shape))).astype(bool).reshape(shape)
    for k in ("label", "scene_family", "original_scene_family", "source_frame"):
        if k in d:
            d[k] = int(d[k])
    d["own_scene"] = bool(d["own_scene"])
    return d


def annotation_path(flavour_root: Path, record) -> Path:
    """<flavour>/annotations/<video path relative to the flavour root>.npz of a VideoRecord."""
    try:
        rel = Path(record.path).relative_to(flavour_root)
    except ValueError:
        raise DataError(f"{record.path}: video is not under the flavour folder {flavour_root}, "
                        f"so its annotation cannot be located") from None
    return Path(flavour_root) / "annotations" / rel.with_suffix(".npz")


def actor_mask_source(flavour_root: str | os.PathLike):
    """record -> its video's ground-truth actor masks (T, H, W) bool: a ClipDataset's `actor_masks`."""
    root = Path(flavour_root)
    return lambda record: load_annotation(annotation_path(root, record))["masks"]
