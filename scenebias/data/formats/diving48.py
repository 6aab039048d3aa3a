"""Diving48 V2 (JSON: Diving48_V2_{train,test}.json and Diving48_vocab.json); see scenebias.data.formats."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ...errors import DataError
from ...io import write_text
from .common import (SkippedVideo, SplitIndex, VideoRecord, _check_split, _settle_missing, default_dirs,
                     register_format)


# What the official download unpacks to, quoted by every error about a root of this format.
DIVING48_LAYOUT = (
    "Diving48 V2 layout read by default (www.svcl.ucsd.edu/projects/resound/dataset.html): videos in "
    "<root>/rgb/<vid_name>.mp4 (Diving48_rgb.tar.gz unpacks to rgb/), and Diving48_V2_train.json, "
    "Diving48_V2_test.json and Diving48_vocab.json in <root>. Point split_dir / video_dir elsewhere when "
    "yours differ.")


DIVING48_FILES = {"train": "Diving48_V2_train.json", "test": "Diving48_V2_test.json"}
DIVING48_VOCAB = "Diving48_vocab.json"
_DIVING_KEYS = ("vid_name", "label", "start_frame", "end_frame")


def diving48_class_name(entry: Sequence[str]) -> str:
    return "_".join(entry)


def _load_json(path: Path, kind: str):
    """A Diving48 JSON file, or a DataError naming it (missing, or not JSON)."""
    if not path.is_file():
        raise DataError(f"{path}: Diving48 {kind} file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc


def read_diving48_vocab(path: Path) -> list[list[str]]:
    vocab = _load_json(path, "vocab")
    if not isinstance(vocab, list) or not vocab:
        raise DataError(f"{path}: expected a non-empty JSON list of lists of strings")
    for i, e in enumerate(vocab):
        if not isinstance(e, list) or not e or not all(isinstance(s, str) for s in e):
            raise DataError(f"{path}: entry {i} is {e!r}; expected a non-empty list of strings")
    return vocab


def read_diving48_entries(path: Path, num_classes: int | None = None) -> list[dict]:
    """V2 train/test JSON -> list of entries (validated)."""
    data = _load_json(path, "split")
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of {{{', '.join(_DIVING_KEYS)}}} objects")
    seen: set[str] = set()
    for i, e in enumerate(data):
        where = f"{path}: entry {i}"
        if not isinstance(e, dict) or set(e) != set(_DIVING_KEYS):
            raise DataError(f"{where}: expected an object with keys {list(_DIVING_KEYS)}, got {e!r}")
        if not isinstance(e["vid_name"], str) or not e["vid_name"]:
            raise DataError(f"{where}: vid_name {e['vid_name']!r} is not a non-empty string")
        for k in ("label", "start_frame", "end_frame"):
            if not isinstance(e[k], int) or isinstance(e[k], bool) or e[k] < 0:
                raise DataError(f"{where} ({e['vid_name']}): {k} {e[k]!r} is not a non-negative integer")
        if num_classes is not None and e["label"] >= num_classes:
            raise DataError(f"{where} ({e['vid_name']}): label {e['label']} is outside the vocab "
                            f"(0..{num_classes - 1})")
        if e["end_frame"] < e["start_frame"]:
            raise DataError(f"{where} ({e['vid_name']}): end_frame {e['end_frame']} < start_frame "
                            f"{e['start_frame']}")
        if e["vid_name"] in seen:
            raise DataError(f"{where}: vid_name {e['vid_name']!r} listed twice")
        seen.add(e["vid_name"])
    return data


def write_diving48_entries(path: Path, entries: Sequence[dict]) -> None:
    """Official V2 style: 2-space indent, keys vid_name/label/start_frame/end_frame, no final newline."""
    ordered = [{k: e[k] for k in _DIVING_KEYS} for e in entries]
    write_text(path, json.dumps(ordered, indent=2, separators=(",", ": ")), newline="")


def write_diving48_vocab(path: Path, vocab: Sequence[Sequence[str]]) -> None:
    """Official vocab style (Python-2 json.dump(indent=2)): ', ' item separator, no final newline."""
    write_text(path, json.dumps([list(v) for v in vocab], indent=2, separators=(", ", ": ")), newline="")


@register_format("diving48", DIVING48_LAYOUT, lambda root, subset: (root / "rgb", root))
def _read_diving48(root: Path, subset: str, split: int, video_dir: Path | None, split_dir: Path | None,
                   check_files: bool, on_missing: str = "error") -> SplitIndex:
    _check_split(split, allowed=(1,))
    video_dir, split_dir = default_dirs("diving48", root, subset, video_dir, split_dir)
    vocab = read_diving48_vocab(split_dir / DIVING48_VOCAB)
    fpath = split_dir / DIVING48_FILES[subset]
    records: list[VideoRecord] = []
    skipped: list[SkippedVideo] = []
    first = None
    for i, e in enumerate(read_diving48_entries(fpath, num_classes=len(vocab))):
        path = video_dir / f"{e['vid_name']}.mp4"
        if check_files and not path.is_file():
            first = first or f"{fpath}: entry {i} ({e['vid_name']}): video {path} not found"
            skipped.append(SkippedVideo(path=path, split_file=fpath, line=None,
                                        entry=f"entry {i}: {json.dumps(e, separators=(', ', ': '))}"))
            continue
        records.append(VideoRecord(path=path, label=e["label"], video_id=e["vid_name"],
                                   start_frame=e["start_frame"], end_frame=e["end_frame"]))
    skipped = _settle_missing(first, skipped, len(records) + len(skipped), subset, on_missing)
    return SplitIndex(records=records, class_names=[diving48_class_name(v) for v in vocab], skipped=skipped,
                      split_files=[split_dir / DIVING48_VOCAB, fpath])
