"""Actor-HMDB51 (BE, Wang et al., CVPR 2021, Sec. 4.5 and Figure 5): HMDB51 with every frame cropped to its actors.

The paper detects persons "frame by frame with [a] public implementation of Faster R-CNN" (tf-faster-rcnn) and
crops "a minimum area that contains all persons"; the authors did not publish the data. This module rebuilds
it from person boxes:

1. Person boxes per frame, from one of two sources:
   - `PersonDetector`: torchvision's `fasterrcnn_resnet50_fpn` (COCO), built with weights=None and loaded from
     a state-dict file the user supplies (nothing is downloaded); detections of COCO class 1 (person) with a
     score >= `score_threshold` are kept. (A different implementation than the paper's tf-faster-rcnn.)
   - `BoxesFile`: a CSV of precomputed boxes (format below), e.g. from another detector run elsewhere.
2. Per frame, the smallest box containing all persons (`union_boxes`).
3. Over time (our addition; the paper crops each frame on its own, which `smooth=1` reproduces): frames without
   a detection take the box linearly interpolated between the nearest detected frames (held at the ends,
   `fill_missing`), then a moving median over `smooth` frames (`smooth_boxes`) removes single-frame jumps (a
   missed second person, a false detection). A video without any detection keeps its full frame and is
   counted in the summary.
4. The box is made square around its centre (side = its longer edge), shifted to lie inside the frame where
   it fits; where it is larger than the frame it is centred and the outside is padded black (`square_boxes`).
   So the aspect ratio is kept and every person stays in the crop. Each frame is cropped to its square and
   resized (bilinear, antialiased) to `size` x `size` (`crop_frames`).
5. Output in the HMDB51 layout read by `formats.read_split("hmdb51", ...)`: `<out>/videos/<class>/<video>.avi`
   (same names; H.264 via `video.write_video`, the source's frame rate), the split files
   `<out>/testTrainMulti_7030_splits/*.txt` copied byte for byte, per video a sidecar
   `<out>/actor_boxes/<class>/<video>.json` (settings, frame counts, the square crop box of every frame), and
   `<out>/actor_crop_summary.json` (see `build_actor_hmdb51`). Every file is written atomically; a rerun skips a
   video whose output and sidecar exist with the same settings and box source (resumable), and redoes it
   otherwise.

Videos: every video the split files list with tag 1 (train) or 2 (test) in any split present (1, 2, 3), read
with `formats.read_split`; tag-0 ("unused") videos are never read by any split, so they are not cropped.

Boxes file (CSV, comma-separated, one header line, one row per person per frame):

    video,frame,x0,y0,x1,y1[,score]
    brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi,0,102.5,20,180,236,0.98

`video` is the path relative to the video folder (`<class>/<file>.avi`, '/' separators); `frame` the 0-based
index of the decoded frame; x0, y0, x1, y1 pixel coordinates in the source frame (x1/y1 exclusive, x1 > x0,
y1 > y0; floats allowed; clamped to the frame); the optional `score` drops rows below `score_threshold`.
A frame without rows has no detection; a video without rows has none at all.
"""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Protocol, Sequence

import av
import numpy as np
import pandas as pd
import torch
import torchvision.transforms.v2.functional as F
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from ..io import atomic_path, read_json_if_valid, write_json
from .formats import HMDB_TAGS, check_layout, default_dirs, read_split
from .manifest import file_sha256
from .video import read_video, write_video

PERSON = 1                      # COCO category id of "person" in torchvision's detection models
HMDB51_SPLITS = (1, 2, 3)
HMDB51_FPS = 30                 # HMDB51's frame rate; used when a file does not state its own
SUMMARY_NAME = "actor_crop_summary.json"
SIDECAR_DIR = "actor_boxes"
BOXES_COLUMNS = ("video", "frame", "x0", "y0", "x1", "y1")
BOXES_OPTIONAL = ("score",)
COCO_WEIGHTS = (
    "The detector is torchvision's fasterrcnn_resnet50_fpn; pass the state dict of its COCO weights "
    "(torchvision.models.detection.FasterRCNN_ResNet50_FPN_Weights.COCO_V1, "
    "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth; download it yourself, "
    "nothing is downloaded at run time), or use a boxes file instead.")


@dataclass(frozen=True)
class CropSettings:
    """size: output side in px (even, for H.264 4:2:0); smooth: moving-median window in frames (odd, 1 = off);
    score_threshold: minimum person score kept."""

    size: int = 112
    smooth: int = 5
    score_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 2 or self.size % 2:
            raise ConfigError(f"size: {self.size!r} must be an even integer >= 2 (H.264 4:2:0 needs even sides)")
        if not isinstance(self.smooth, int) or self.smooth < 1 or self.smooth % 2 == 0:
            raise ConfigError(f"smooth: {self.smooth!r} must be an odd integer >= 1 (a centred window; 1 = off)")
        if not 0.0 <= float(self.score_threshold) <= 1.0:
            raise ConfigError(f"score_threshold: {self.score_threshold!r} must lie in [0, 1]")


# ------------------------------------------------------------------------------------------ box sources
class BoxSource(Protocol):
    """Person boxes of one video: `boxes(video, frames)` -> per frame a (k, 4) float array x0, y0, x1, y1;
    `digest(video)` identifies what the boxes were computed from (for resuming)."""

    def boxes(self, video: str, frames: "torch.Tensor") -> list[np.ndarray]: ...

    def digest(self, video: str) -> str: ...


def read_boxes_file(path: str | Path, score_threshold: float = 0.0) -> dict[str, np.ndarray]:
    """The boxes CSV (module docstring) -> {video: (n, 5) float64 rows frame, x0, y0, x1, y1}, rows with a
    score below `score_threshold` dropped. Malformed rows are a DataError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: boxes file not found (CSV with header {','.join(BOXES_COLUMNS)}[,score])")
    try:
        table = pd.read_csv(path, dtype={"video": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from exc
    missing = [c for c in BOXES_COLUMNS if c not in table.columns]
    unknown = [c for c in table.columns if c not in BOXES_COLUMNS + BOXES_OPTIONAL]
    if missing or unknown:
        raise DataError(f"{path}: expected the columns {','.join(BOXES_COLUMNS)}[,score]; "
                        + (f"missing {missing}" if missing else f"unknown {unknown}"))
    numeric = [c for c in table.columns if c != "video"]
    values = table[numeric].apply(pd.to_numeric, errors="coerce")
    line = lambda i: f"{path}:{int(i) + 2}"  # noqa: E731  (+1 for the header, +1 for 1-based lines)
    bad = values.index[~np.isfinite(values.to_numpy(dtype=float)).all(axis=1)]
    if len(bad):
        raise DataError(f"{line(bad[0])}: non-numeric or missing value in {table.loc[bad[0]].to_dict()}")
    frame = values["frame"].to_numpy()
    checks = [(frame < 0) | (frame != np.floor(frame)), values["x1"] <= values["x0"], values["y1"] <= values["y0"],
              table["video"].str.strip() == ""]
    for what, mask in zip(("frame must be a non-negative integer", "x1 must exceed x0", "y1 must exceed y0",
                           "video is empty"), checks):
        hits = np.flatnonzero(np.asarray(mask))
        if len(hits):
            raise DataError(f"{line(hits[0])}: {what}: {table.iloc[hits[0]].to_dict()}")
    if "score" in values:
        keep = (values["score"] >= score_threshold).to_numpy()
        table, values = table[keep], values[keep]
    rows = values[["frame", "x0", "y0", "x1", "y1"]].astype(np.float64)
    names = table["video"].map(lambda v: str(PurePosixPath(v.strip())))
    return {str(v): g.to_numpy() for v, g in rows.groupby(names, sort=False)}


class BoxesFile:
    """Person boxes from a boxes CSV (module docstring)."""

    def __init__(self, path: str | Path, score_threshold: float = 0.0):
        self.path = Path(path)
        self.rows = read_boxes_file(self.path, score_threshold)

    def boxes(self, video: str, frames: "torch.Tensor") -> list[np.ndarray]:
        rows = self.rows.get(video, np.zeros((0, 5)))
        T = int(frames.shape[0])
        if len(rows) and rows[:, 0].max() >= T:
            raise DataError(f"{self.path}: video {video!r} has a box for frame {int(rows[:, 0].max())}, but the "
                            f"video decodes to {T} frames (frames are 0-based)")
        index = rows[:, 0].astype(int)
        return [rows[index == t, 1:] for t in range(T)]

    def digest(self, video: str) -> str:
        """The video's own rows: editing other videos' boxes does not redo this one."""
        rows = self.rows.get(video, np.zeros((0, 5)))
        return "boxes:" + hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()[:16]


def load_person_detector(weights: str | Path, min_size: int = 800, max_size: int = 1333) -> "torch.nn.Module":
    """torchvision's fasterrcnn_resnet50_fpn (91 COCO classes) with the user's state dict, in eval mode.

    Built with weights=None, weights_backbone=None: never downloads. min_size / max_size are torchvision's
    resize defaults (the COCO training setting). A missing, unreadable or mismatching file is a ConfigError
    naming it and where the official weights come from.
    """
    from torchvision.models.detection import fasterrcnn_resnet50_fpn  # the detector only when asked for

    weights = Path(weights)
    if not weights.is_file():
        raise ConfigError(f"{weights}: detector weights file not found. {COCO_WEIGHTS}")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle / zip errors of all kinds
        raise ConfigError(f"{weights}: not a readable PyTorch state dict ({type(exc).__name__}: {exc}). "
                          f"{COCO_WEIGHTS}") from exc
    if not isinstance(state, Mapping):
        raise ConfigError(f"{weights}: holds a {type(state).__name__}, not a state dict. {COCO_WEIGHTS}")
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=min_size, max_size=max_size)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ConfigError(f"{weights}: does not match fasterrcnn_resnet50_fpn "
                          f"({' '.join(first[:2])[:300]}). {COCO_WEIGHTS}") from exc
    return model.eval()


class PersonDetector:
    """Person boxes from Faster R-CNN (COCO class 1, score >= threshold), `batch_size` frames at a time."""

    def __init__(self, weights: str | Path, score_threshold: float = 0.5, batch_size: int = 4,
                 min_size: int = 800, max_size: int = 1333, device: str = "cpu"):
        self.weights = Path(weights)
        self.device = device
        self.model = load_person_detector(self.weights, min_size, max_size).to(device)
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)
        self._digest = f"detector:{file_sha256(self.weights)[:16]}:{min_size}:{max_size}"

    def boxes(self, video: str, frames: "torch.Tensor") -> list[np.ndarray]:
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, frames.shape[0], self.batch_size):
                batch = frames[start:start + self.batch_size].to(self.device).permute(0, 3, 1, 2).float() / 255
                for det in self.model(list(batch)):
                    keep = (det["labels"] == PERSON) & (det["scores"] >= self.score_threshold)
                    out.append(det["boxes"][keep].cpu().numpy().astype(np.float64))
        return out

    def digest(self, video: str) -> str:
        return self._digest


# ------------------------------------------------------------------------------------------ box geometry
def union_boxes(per_frame: Sequence[np.ndarray]) -> np.ndarray:
    """Per frame, the smallest box containing all its person boxes -> (T, 4) x0, y0, x1, y1; NaN rows for
    frames without a person ("a minimum area that contains all persons", BE Sec. 4.5)."""
    out = np.full((len(per_frame), 4), np.nan)
    for t, b in enumerate(per_frame):
        if len(b):
            b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
            out[t] = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    return out


def fill_missing(boxes: np.ndarray) -> np.ndarray:
    """NaN rows (no detection) linearly interpolated between the nearest detected frames, held at the ends.
    Needs at least one detected frame."""
    valid = ~np.isnan(boxes).any(axis=1)
    if not valid.any():
        raise ValueError("fill_missing needs at least one frame with a box")
    t = np.arange(len(boxes))
    return np.stack([np.interp(t, t[valid], boxes[valid, c]) for c in range(4)], axis=1)


def smooth_boxes(boxes: np.ndarray, window: int) -> np.ndarray:
    """Centred moving median of each coordinate over `window` frames (edges repeat the end frames). A median,
    not a mean: a box that jumps for a frame or two (a missed or a false person) is ignored, not smeared."""
    from scipy.ndimage import median_filter

    if window <= 1:
        return boxes.copy()
    return median_filter(boxes, size=(window, 1), mode="nearest")


def square_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, 4) boxes -> (T, 4) int squares x0, y0, x1, y1 (x1/y1 exclusive): side = the longer edge (>= 2 px),
    same centre; shifted into the frame where the side fits, centred on the frame (padded) where it does not."""
    side = np.ceil(np.maximum(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]), 2.0))

    def start(lo: np.ndarray, hi: np.ndarray, extent: int) -> np.ndarray:
        centred = np.round((lo + hi - side) / 2)
        inside = np.clip(centred, 0, np.maximum(extent - side, 0))
        return np.where(side <= extent, inside, np.floor((extent - side) / 2))

    x0, y0 = start(boxes[:, 0], boxes[:, 2], width), start(boxes[:, 1], boxes[:, 3], height)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1).astype(np.int64)


def crop_frames(frames: "torch.Tensor", squares: np.ndarray, size: int) -> np.ndarray:
    """Crop frame t of (T, H, W, 3) uint8 to squares[t] (zeros outside the frame) and resize it to size x size
    (bilinear, antialiased) -> (T, size, size, 3) uint8."""
    chw = frames.permute(0, 3, 1, 2)
    out = [F.resized_crop(chw[t], int(y0), int(x0), int(y1 - y0), int(x1 - x0), [size, size], antialias=True)
           for t, (x0, y0, x1, y1) in enumerate(squares)]
    return np.ascontiguousarray(np.stack([o.permute(1, 2, 0).numpy() for o in out]))


def crop_boxes(per_frame: Sequence[np.ndarray], height: int, width: int, smooth: int) -> tuple[np.ndarray, int]:
    """Person boxes per frame -> (the square crop box of every frame, frames without a detection). Boxes are
    clamped to the frame first; a video without any detection keeps its full frame (made square)."""
    clamped = [np.clip(np.asarray(b, dtype=np.float64).reshape(-1, 4), 0, [width, height, width, height])
               for b in per_frame]
    union = union_boxes([b[(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])] for b in clamped])
    missing = int(np.isnan(union).any(axis=1).sum())
    if missing == len(union):
        track = np.tile([0.0, 0.0, width, height], (len(union), 1))
    else:
        track = smooth_boxes(fill_missing(union), smooth)
    return square_boxes(track, height, width), missing


# ------------------------------------------------------------------------------------------ dataset
@dataclass(frozen=True)
class SourceVideo:
    rel: str     # '<class>/<file>.avi', as in the boxes file and the output
    path: Path


def hmdb51_splits_present(split_dir: Path) -> list[int]:
    return [s for s in HMDB51_SPLITS if any(split_dir.glob(f"*_test_split{s}.txt"))]


def list_hmdb51_videos(root: Path, video_dir: Path | None = None, split_dir: Path | None = None,
                       on_missing: str = "error") -> tuple[list[SourceVideo], Path, list[str]]:
    """Every video the HMDB51 split files list as train or test in any split present, via `read_split`
    -> (videos sorted by relative path, the split-file folder, listed videos not on disk (on_missing="skip"))."""
    check_layout("hmdb51", Path(root), "train", video_dir, split_dir)
    videos_at, splits_at = default_dirs("hmdb51", Path(root), "train", video_dir, split_dir)
    present = hmdb51_splits_present(splits_at)
    if not present:
        raise DataError(f"{splits_at}: no '<class>_test_split{{1,2,3}}.txt' files")
    found: dict[str, Path] = {}
    skipped: set[str] = set()
    for split in present:
        for subset in HMDB_TAGS:
            index = read_split("hmdb51", root, subset, split, video_dir=video_dir, split_dir=split_dir,
                               on_missing=on_missing)
            found.update({r.path.relative_to(videos_at).as_posix(): r.path for r in index.records})
            skipped.update(str(s.path) for s in index.skipped)
    return [SourceVideo(rel, found[rel]) for rel in sorted(found)], splits_at, sorted(skipped)


def video_fps(path: Path) -> int:
    """The stream's average frame rate, rounded (write_video takes an integer); HMDB51's 30 if unstated."""
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate if container.streams.video else None
    return max(int(round(float(rate))), 1) if rate else HMDB51_FPS


def copy_split_files(split_dir: Path, out_dir: Path) -> list[Path]:
    """Every *.txt of the split folder copied byte for byte (atomically) into out_dir."""
    copied = []
    for src in sorted(split_dir.glob("*.txt")):
        dst = out_dir / src.name
        if not dst.is_file() or dst.read_bytes() != src.read_bytes():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        copied.append(dst)
    return copied


def _is_done(video: Path, sidecar: Path, settings: dict) -> dict | None:
    """The sidecar when `video` was finished with these settings (the sidecar is written last), else None."""
    record = read_json_if_valid(sidecar) if video.is_file() else None
    return record if isinstance(record, dict) and record.get("settings") == settings else None


def crop_video(src: SourceVideo, out_video: Path, sidecar: Path, source: BoxSource, crop: CropSettings) -> dict:
    """Crop one video to its actors; writes the video, then its sidecar. Returns the sidecar record."""
    frames = read_video(src.path)
    T, H, W = (int(n) for n in frames.shape[:3])
    squares, missing = crop_boxes(source.boxes(src.rel, frames), H, W, crop.smooth)
    write_video(out_video, crop_frames(frames, squares, crop.size), fps=video_fps(src.path))
    record = {"video": src.rel, "settings": {**asdict(crop), "boxes": source.digest(src.rel)},
              "frames": T, "frames_without_detection": missing, "source_size": [H, W],
              "crop_boxes": squares.tolist()}
    write_json(sidecar, record)
    return record


def build_actor_hmdb51(root: str | Path, out: str | Path, *, detector_weights: str | Path | None = None,
                       boxes: str | Path | None = None, crop: CropSettings = CropSettings(),
                       video_dir: str | Path | None = None, split_dir: str | Path | None = None,
                       on_missing: str = "error", batch_size: int = 4, detector_size: tuple[int, int] = (800, 1333),
                       device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Build Actor-HMDB51 from the HMDB51 root `root` into `out` (module docstring); exactly one of
    `detector_weights` / `boxes` gives the person boxes (the detector runs on `device`: on CPU it takes
    seconds per frame at torchvision's 800 px, so use a GPU, or a boxes file, for the full set).
    Returns (and writes as actor_crop_summary.json):
    videos, frames, frames_without_detection, videos_without_detection (count, and `.._list`: their paths),
    cropped (this run) / resumed (finished earlier), missing (listed but not on disk, on_missing="skip"),
    boxes_for_unlisted_videos (boxes file only), settings.
    """
    if (detector_weights is None) == (boxes is None):
        raise ConfigError("actor crop: give exactly one of detector_weights (a Faster R-CNN state dict) or boxes "
                          "(a boxes CSV)")
    root, out = Path(root), Path(out)
    videos, splits_at, missing = list_hmdb51_videos(root, _opt(video_dir), _opt(split_dir), on_missing)
    source: BoxSource
    if boxes is not None:
        source = BoxesFile(boxes, crop.score_threshold)
        unlisted = sorted(set(source.rows) - {v.rel for v in videos})
        if videos and source.rows and len(unlisted) == len(source.rows):
            raise DataError(f"{boxes}: none of its {len(unlisted)} videos is an HMDB51 video of {root} (first: "
                            f"{unlisted[0]!r}; expected paths like {videos[0].rel!r}, relative to the video folder)")
    else:  # loaded before any work, so a bad weights file fails at once
        source = PersonDetector(detector_weights, crop.score_threshold, batch_size, *detector_size, device=device)
        unlisted = []
    copy_split_files(splits_at, out / "testTrainMulti_7030_splits")
    records, cropped = [], 0
    for v in tqdm(videos, desc="actor crop", unit="video", disable=not progress):
        out_video, sidecar = out / "videos" / v.rel, out / SIDECAR_DIR / f"{v.rel}.json"
        record = _is_done(out_video, sidecar, {**asdict(crop), "boxes": source.digest(v.rel)})
        if record is None:
            record, cropped = crop_video(v, out_video, sidecar, source, crop), cropped + 1
        records.append(record)
    summary = summarise(records, cropped, missing, unlisted, crop, boxes, detector_weights)
    write_json(out / SUMMARY_NAME, summary)
    return summary


def summarise(records: Sequence[dict], cropped: int, missing: Sequence[str], unlisted: Sequence[str],
              crop: CropSettings, boxes: Any, detector_weights: Any) -> dict[str, Any]:
    without = [r["video"] for r in records if r["frames_without_detection"] == r["frames"]]
    return {"videos": len(records), "frames": sum(r["frames"] for r in records),
            "frames_without_detection": sum(r["frames_without_detection"] for r in records),
            "videos_without_detection": len(without), "videos_without_detection_list": without,
            "cropped": cropped, "resumed": len(records) - cropped,
            "missing": len(missing), "missing_list": list(missing),
            "boxes_for_unlisted_videos": len(unlisted),
            "settings": {**asdict(crop), "source": "boxes" if boxes is not None else "detector",
                         "boxes": None if boxes is None else str(boxes),
                         "detector_weights": None if detector_weights is None else str(detector_weights)}}


def _opt(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)

