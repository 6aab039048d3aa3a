"""UCF101 (`ucfTrainTestlist/`, CRLF line endings, every line terminated): classInd.txt, trainlist0N.txt,
testlist0N.txt; see scenebias.data.formats."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from ...errors import DataError
from ...io import write_text
from .common import (SplitIndex, VideoRecord, _read_lines, _settle_missing, _skipped_lines, default_dirs,
                     register_format)


# What the official download unpacks to, quoted by every error about a root of this format.
UCF101_LAYOUT = (
    "UCF101 layout read by default (crcv.ucf.edu/data/UCF101.php): videos in <root>/UCF101/<Class>/"
    "v_<Class>_gGG_cCC.avi (UCF101.rar unpacks to a folder named UCF-101: rename it to UCF101 or set "
    "video_dir), split files in <root>/ucfTrainTestlist/ (classInd.txt, trainlist0{1,2,3}.txt, "
    "testlist0{1,2,3}.txt, from UCF101TrainTestSplits-RecognitionTask.zip). Point split_dir / video_dir "
    "elsewhere when yours differ.")


def ucf_class_order(names: Iterable[str]) -> list[str]:
    """Class order of UCF101's classInd.txt: case-insensitive alphabetical (Hammering < HammerThrow)."""
    return sorted(names, key=lambda s: (s.lower(), s))


def read_ucf101_classind(path: Path) -> list[str]:
    """classInd.txt -> class names in index order (index i+1 -> names[i])."""
    names: list[str] = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{lineno}: expected '<index> <ClassName>', got {line!r}")
        idx, name = int(parts[0]), parts[1]
        if idx != len(names) + 1:
            raise DataError(f"{path}:{lineno}: class index {idx} out of sequence; expected {len(names) + 1}")
        if name in names:
            raise DataError(f"{path}:{lineno}: class {name!r} listed twice")
        names.append(name)
    if not names:
        raise DataError(f"{path}: classInd file lists no classes")
    return names


def read_ucf101_list(path: Path, with_labels: bool) -> list[tuple[int, str, int | None]]:
    """trainlist/testlist -> [(line number, 'Class/file.avi', 1-based label or None)]."""
    out: list[tuple[int, str, int | None]] = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if with_labels:
            if len(parts) != 2:
                raise DataError(f"{path}:{lineno}: expected 'Class/video.avi <label>', got {line!r}")
            try:
                label: int | None = int(parts[1])
            except ValueError:
                raise DataError(f"{path}:{lineno}: label {parts[1]!r} is not an integer") from None
        else:
            if len(parts) != 1:
                raise DataError(f"{path}:{lineno}: expected 'Class/video.avi', got {line!r}")
            label = None
        rel = parts[0]
        if rel.count("/") != 1 or not rel.lower().endswith(".avi"):
            raise DataError(f"{path}:{lineno}: expected a path 'Class/video.avi', got {rel!r}")
        out.append((lineno, rel, label))
    return out


def write_ucf101_classind(path: Path, class_names: Sequence[str]) -> None:
    write_text(path, "".join(f"{i} {n}\r\n" for i, n in enumerate(class_names, start=1)), newline="")


def write_ucf101_trainlist(path: Path, entries: Sequence[tuple[str, int]]) -> None:
    """entries: (relative 'Class/file.avi', 0-based label); written with the 1-based label, CRLF."""
    write_text(path, "".join(f"{rel} {label + 1}\r\n" for rel, label in entries), newline="")


def write_ucf101_testlist(path: Path, entries: Sequence[str]) -> None:
    write_text(path, "".join(f"{rel}\r\n" for rel in entries), newline="")


@register_format("ucf101", UCF101_LAYOUT, lambda root, subset: (root / "UCF101", root / "ucfTrainTestlist"))
def _read_ucf101(root: Path, subset: str, split: int, video_dir: Path | None, split_dir: Path | None,
                 check_files: bool, on_missing: str = "error") -> SplitIndex:
    video_dir, split_dir = default_dirs("ucf101", root, subset, video_dir, split_dir)
    classes = read_ucf101_classind(split_dir / "classInd.txt")
    index = {n: i for i, n in enumerate(classes)}
    list_path = split_dir / f"{subset}list{split:02d}.txt"
    records: list[VideoRecord] = []
    missing: list[tuple[int, Path]] = []
    seen: set[str] = set()
    for lineno, rel, label in read_ucf101_list(list_path, with_labels=(subset == "train")):
        cls = rel.split("/")[0]
        if cls not in index:
            raise DataError(f"{list_path}:{lineno}: class directory {cls!r} is not in classInd.txt")
        if label is not None and label != index[cls] + 1:
            raise DataError(f"{list_path}:{lineno}: label {label} disagrees with classInd.txt, "
                            f"which gives {cls!r} index {index[cls] + 1}")
        if rel in seen:
            raise DataError(f"{list_path}:{lineno}: video {rel!r} listed twice")
        seen.add(rel)
        path = video_dir / rel
        if check_files and not path.is_file():
            missing.append((lineno, path))
            continue
        records.append(VideoRecord(path=path, label=index[cls], video_id=Path(rel).stem))
    first = f"{list_path}:{missing[0][0]}: video {missing[0][1]} not found" if missing else None
    skipped = _settle_missing(first, _skipped_lines(list_path, missing), len(records) + len(missing), subset,
                              on_missing)
    return SplitIndex(records=records, class_names=classes, skipped=skipped,
                      split_files=[split_dir / "classInd.txt", list_path])
