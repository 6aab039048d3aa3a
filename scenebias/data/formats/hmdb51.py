"""HMDB51 (`testTrainMulti_7030_splits/<class>_test_split<N>.txt`, LF, lines sorted by file name, tags
1 = train, 2 = test, 0 = unused); see scenebias.data.formats."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from ...errors import DataError
from ...io import write_text
from .common import (SkippedVideo, SplitIndex, VideoRecord, _read_lines, _settle_missing, _skipped_lines,
                     default_dirs, register_format)


# What the official download unpacks to, quoted by every error about a root of this format.
HMDB51_LAYOUT = (
    "HMDB51 layout read by default (serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database): "
    "videos in <root>/videos/<class>/<video>.avi (hmdb51_org.rar holds one <class>.rar per class; unpack "
    "each into videos/<class>/), split files in <root>/testTrainMulti_7030_splits/<class>_test_split"
    "{1,2,3}.txt (from test_train_splits.rar). Point split_dir / video_dir elsewhere when yours differ.")


HMDB_TAGS = {"train": 1, "test": 2}
_HMDB_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<split>\d+)\.txt$")


def hmdb51_split_files(split_dir: Path, split: int) -> dict[str, Path]:
    """{class name: split file} for one split, classes sorted."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: HMDB51 split folder not found")
    found: dict[str, Path] = {}
    for p in split_dir.iterdir():
        m = _HMDB_FILE.match(p.name)
        if m and int(m.group("split")) == split:
            found[m.group("cls")] = p
    if not found:
        raise DataError(f"{split_dir}: no '<class>_test_split{split}.txt' files")
    return dict(sorted(found.items()))


def read_hmdb51_file(path: Path) -> list[tuple[int, str, int]]:
    """One '<class>_test_splitN.txt' -> [(line number, 'video.avi', tag)]."""
    out: list[tuple[int, str, int]] = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2") or not parts[0].lower().endswith(".avi"):
            raise DataError(f"{path}:{lineno}: expected '<video>.avi <0|1|2> ', got {line!r}")
        out.append((lineno, parts[0], int(parts[1])))
    return out


def write_hmdb51_file(path: Path, entries: Sequence[tuple[str, int]]) -> None:
    """entries: (file name 'video.avi', tag 0/1/2), written in the given order as 'name tag \\n'."""
    for name, tag in entries:
        if tag not in (0, 1, 2):
            raise DataError(f"{path}: tag {tag!r} for {name!r} is not 0, 1 or 2")
    write_text(path, "".join(f"{name} {tag} \n" for name, tag in entries), newline="")


def write_hmdb51_splits(split_dir: Path, per_class: dict[str, Sequence[tuple[str, int]]], split: int = 1) -> None:
    """Write one '<class>_test_split<split>.txt' per class; lines sorted by file name as in the originals."""
    for cls, entries in per_class.items():
        write_hmdb51_file(split_dir / f"{cls}_test_split{split}.txt", sorted(entries))


@register_format("hmdb51", HMDB51_LAYOUT, lambda root, subset: (root / "videos", root / "testTrainMulti_7030_splits"))
def _read_hmdb51(root: Path, subset: str, split: int, video_dir: Path | None, split_dir: Path | None,
                 check_files: bool, on_missing: str = "error") -> SplitIndex:
    video_dir, split_dir = default_dirs("hmdb51", root, subset, video_dir, split_dir)
    files = hmdb51_split_files(split_dir, split)
    classes = list(files)
    want = HMDB_TAGS[subset]
    records: list[VideoRecord] = []
    skipped: list[SkippedVideo] = []
    for label, (cls, fpath) in enumerate(files.items()):
        seen: set[str] = set()
        missing: list[tuple[int, Path]] = []
        for lineno, name, tag in read_hmdb51_file(fpath):
            if name in seen:
                raise DataError(f"{fpath}:{lineno}: video {name!r} listed twice")
            seen.add(name)
            if tag != want:
                continue
            path = video_dir / cls / name
            if check_files and not path.is_file():
                missing.append((lineno, path))
                continue
            records.append(VideoRecord(path=path, label=label, video_id=Path(name).stem))
        skipped += _skipped_lines(fpath, missing)
    first = f"{skipped[0].where}: video {skipped[0].path} not found" if skipped else None
    skipped = _settle_missing(first, skipped, len(records) + len(skipped), subset, on_missing)
    return SplitIndex(records=records, class_names=classes, skipped=skipped, split_files=list(files.values()))
