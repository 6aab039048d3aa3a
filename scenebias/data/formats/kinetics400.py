"""Kinetics-400 (annotation CSVs of the 2017 and 2020 releases; read only, there is no writer); see
scenebias.data.formats."""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...errors import DataError
from .common import (SkippedVideo, SplitIndex, VideoRecord, _check_split, _read_lines, _skipped_lines, default_dirs,
                     register_format)

KINETICS_HEADERS = {  # header -> release; both official, both read
    ("label", "youtube_id", "time_start", "time_end", "split"): "2020",
    ("label", "youtube_id", "time_start", "time_end", "split", "is_cc"): "2017",
}
# Tried in this order; DeepMind's tarball (2020) / CVDF mirror / ActivityNet crawler (2017) names.
KINETICS_CSV_NAMES = {"train": ("train.csv", "kinetics-400_train.csv"),
                      "test": ("validate.csv", "val.csv", "kinetics-400_val.csv")}
# The official test set has no public labels, so "test" is the validation set, as in the papers.
KINETICS_SPLIT_VALUES = {"train": ("train",), "test": ("validate", "val")}
# The official test set has no public labels, so "test" is Kinetics' validation set (its videos in val/).
KINETICS_VIDEO_DIRS = {"train": "train", "test": "val"}
KINETICS_EXTENSIONS = (".mp4", ".mkv", ".webm")  # downloaders keep YouTube's container when not remuxing
KINETICS_LAYOUT = (
    "Kinetics-400 layout read by default (the CVDF mirror, github.com/cvdfoundation/kinetics-dataset, "
    "s3://kinetics/400/): <root>/annotations/{train,val}.csv (or the CSVs directly in <root>), videos in "
    "<root>/train/ and <root>/val/ named <youtube_id>_<time_start:06d>_<time_end:06d>.mp4 (.mkv/.webm also "
    "accepted), flat or in one folder per label (label as written or with spaces as '_'). DeepMind's "
    "kinetics400.tar.gz names the CSVs train.csv / validate.csv (header label,youtube_id,time_start,time_end,"
    "split); the 2017 release (ActivityNet crawler) kinetics-400_{train,val}.csv with an extra is_cc column. "
    "Point split_dir / video_dir elsewhere when yours differ.")
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]+")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class KineticsRow:
    """One annotation row; `lineno` is the 1-based line in the CSV (the header is line 1)."""

    lineno: int
    label: str
    youtube_id: str
    time_start: int
    time_end: int

    @property
    def clip_name(self) -> str:
        return kinetics_clip_name(self.youtube_id, self.time_start, self.time_end)


def kinetics_clip_name(youtube_id: str, time_start: int, time_end: int) -> str:
    """File stem the official crawler gives a clip: '<youtube_id>_<start:06d>_<end:06d>'."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}"


def kinetics_class_folders(label: str) -> tuple[str, ...]:
    """Folder names accepted for a label: as written (crawler, CVDF arrange_by_classes.py), or spaces -> '_'."""
    underscored = label.replace(" ", "_")
    return (label,) if underscored == label else (label, underscored)


def read_kinetics_label_map(path: Path) -> list[str]:
    """label_map.txt (deepmind/kinetics-i3d): one label per line, in class-index order."""
    names: list[str] = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip() or line != line.strip():
            raise DataError(f"{path}:{lineno}: expected a label with no leading/trailing blanks, got {line!r}")
        if line in names:
            raise DataError(f"{path}:{lineno}: label {line!r} listed twice")
        names.append(line)
    if not names:
        raise DataError(f"{path}: label map lists no labels")
    return names


def read_kinetics_csv(path: Path, subset: str | None = None) -> list[KineticsRow]:
    """A Kinetics-400 annotation CSV (2017 or 2020 release) -> rows in file order, validated.

    With `subset`, every row's `split` value must be that subset's (train: 'train'; test: 'validate' or 'val').
    """
    if not path.is_file():
        raise DataError(f"{path}: Kinetics-400 annotation CSV not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    expected = " or ".join(repr(",".join(h)) for h in KINETICS_HEADERS)
    try:
        header = tuple(next(reader, ()))
        if header not in KINETICS_HEADERS:
            raise DataError(f"{path}:1: header {','.join(header)!r} is not a Kinetics-400 annotation header; "
                            f"expected {expected}. {KINETICS_LAYOUT}")
        allowed = KINETICS_SPLIT_VALUES[subset] if subset is not None else ("train", "validate", "val")
        rows: list[KineticsRow] = []
        first_line: dict[str, int] = {}
        for fields in reader:
            lineno = reader.line_num
            where = f"{path}:{lineno}"
            if len(fields) != len(header):
                raise DataError(f"{where}: expected {len(header)} columns ({','.join(header)}), "
                                f"got {len(fields)}: {fields!r}")
            label, yid, start, end, split = fields[:5]
            if not label.strip():
                raise DataError(f"{where}: empty label")
            if not _YOUTUBE_ID.fullmatch(yid):
                raise DataError(f"{where}: youtube_id {yid!r} is not a YouTube id ([A-Za-z0-9_-]+)")
            for key, value in (("time_start", start), ("time_end", end)):
                if not _DIGITS.fullmatch(value):
                    raise DataError(f"{where}: {key} {value!r} is not a non-negative integer (seconds)")
            if int(end) <= int(start):
                raise DataError(f"{where}: time_end {end} is not after time_start {start}")
            if split not in allowed:
                raise DataError(f"{where}: split {split!r} does not belong in the {subset or 'train/val'} "
                                f"annotations (expected {' or '.join(map(repr, allowed))}); wrong CSV?")
            if len(fields) == 6 and fields[5] not in ("0", "1"):
                raise DataError(f"{where}: is_cc {fields[5]!r} is not 0 or 1")
            row = KineticsRow(lineno, label, yid, int(start), int(end))
            if row.clip_name in first_line:
                raise DataError(f"{where}: clip {row.clip_name} listed twice (first on line "
                                f"{first_line[row.clip_name]})")
            first_line[row.clip_name] = lineno
            rows.append(row)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from exc
    return rows


def _kinetics_csv_path(root: Path, subset: str, split_dir: Path | None) -> Path:
    names = KINETICS_CSV_NAMES[subset]
    if split_dir is None and not root.is_dir():
        raise DataError(f"{root}: Kinetics-400 root folder not found. {KINETICS_LAYOUT}")
    if split_dir is not None and not Path(split_dir).is_dir():
        raise DataError(f"{split_dir}: Kinetics-400 annotation folder (split_dir) not found. {KINETICS_LAYOUT}")
    folders = [Path(split_dir)] if split_dir is not None else [root / "annotations", root]
    for folder in folders:
        found = [folder / n for n in names if (folder / n).is_file()]
        if len(found) > 1:
            raise DataError(f"{folder}: {' and '.join(p.name for p in found)} both exist; which is the {subset} "
                            f"set is ambiguous (remove or move all but one)")
        if found:
            return found[0]
    raise DataError(f"no {subset} annotation CSV ({' / '.join(names)}) in {' or '.join(map(str, folders))}. "
                    f"{KINETICS_LAYOUT}")


def _scan_video_dir(video_dir: Path) -> dict[str, set[str]]:
    """{'' (flat) or class folder: names of the video files in it}, one level deep, without decoding."""
    def videos(folder: str) -> set[str]:
        with os.scandir(folder) as it:
            return {e.name for e in it if e.name.endswith(KINETICS_EXTENSIONS) and e.is_file()}

    out = {"": videos(video_dir)}
    with os.scandir(video_dir) as it:
        for e in it:
            if e.is_dir():
                out[e.name] = videos(e.path)
    return out


def _kinetics_locate(csv_path: Path, rows: Sequence[KineticsRow], video_dir: Path,
                     on_missing: str = "error") -> tuple[list[Path | None], list[SkippedVideo]]:
    """The file of every row: <video_dir>/<label folder>/<clip> before <video_dir>/<clip>, .mp4 > .mkv > .webm.

    All rows are checked before failing so the error says how many are missing. With on_missing="skip" a
    missing row's path is None and it is listed (expected at <video_dir>/<label>/<clip>.mp4) instead.
    """
    if not video_dir.is_dir():
        raise DataError(f"{video_dir}: Kinetics-400 video folder not found (videos of {csv_path}). "
                        f"{KINETICS_LAYOUT}")
    listing = _scan_video_dir(video_dir)
    paths: list[Path | None] = []
    missing: list[KineticsRow] = []
    for r in rows:
        hit = next(((folder, r.clip_name + ext) for folder in (*kinetics_class_folders(r.label), "")
                    for ext in KINETICS_EXTENSIONS if r.clip_name + ext in listing.get(folder, ())), None)
        if hit is None:
            missing.append(r)
            paths.append(None)
        else:
            paths.append(video_dir / hit[0] / hit[1] if hit[0] else video_dir / hit[1])
    if not missing or on_missing == "skip":
        return paths, _skipped_lines(csv_path, [(r.lineno, video_dir / r.label / f"{r.clip_name}.mp4")
                                                for r in missing])

    def expected(r: KineticsRow) -> str:
        alt = [f"class folder {f!r}" for f in kinetics_class_folders(r.label)[1:]]
        return (f"line {r.lineno}: {video_dir / r.label / (r.clip_name + '.mp4')} (or "
                f"{', '.join(alt + [str(video_dir / (r.clip_name + '.mp4'))])}; .mkv/.webm also accepted)")

    elsewhere = {Path(name).stem: folder for folder, names in listing.items() for name in names}
    misplaced = [(r, elsewhere[r.clip_name]) for r in missing if r.clip_name in elsewhere]
    msg = (f"{csv_path}: {len(missing)} of {len(rows)} listed videos not found under {video_dir}; "
           + "; ".join(expected(r) for r in missing[:3]) + ("; ..." if len(missing) > 3 else ""))
    if misplaced:
        r, folder = misplaced[0]
        msg += (f". {len(misplaced)} of them are in another label's folder, e.g. {video_dir / folder} holds "
                f"{r.clip_name} but line {r.lineno} labels it {r.label!r}: the CSV does not match the videos")
    raise DataError(f"{msg}. {KINETICS_LAYOUT}")


# Its CSVs are searched for in <root>/annotations then <root> (_kinetics_csv_path): no default split folder.
@register_format("kinetics400", KINETICS_LAYOUT, lambda root, subset: (root / KINETICS_VIDEO_DIRS[subset], None),
                 options=("label_map",))
def _read_kinetics400(root: Path, subset: str, split: int, video_dir: Path | None, split_dir: Path | None,
                      check_files: bool, label_map: Path | None = None, on_missing: str = "error") -> SplitIndex:
    _check_split(split, allowed=(1,))  # Kinetics has one official train/val split
    csv_path = _kinetics_csv_path(root, subset, split_dir)
    rows = read_kinetics_csv(csv_path, subset)
    if label_map is not None:
        classes = read_kinetics_label_map(Path(label_map))
    else:  # sorted = label_map.txt's order on the full data (that file is byte-sorted)
        classes = sorted({r.label for r in rows})
    index = {n: i for i, n in enumerate(classes)}
    for r in rows:
        if r.label not in index:
            raise DataError(f"{csv_path}:{r.lineno}: label {r.label!r} is not in the label map {label_map} "
                            f"({len(classes)} labels)")
    video_dir, _ = default_dirs("kinetics400", root, subset, video_dir, split_dir)
    skipped: list[SkippedVideo] = []
    if check_files:
        paths, skipped = _kinetics_locate(csv_path, rows, video_dir, on_missing)
    else:  # no disk access: the crawler's layout
        paths = [video_dir / r.label / f"{r.clip_name}.mp4" for r in rows]
    records = [VideoRecord(path=p, label=index[r.label], video_id=r.clip_name)
               for r, p in zip(rows, paths) if p is not None]
    return SplitIndex(records=records, class_names=classes, skipped=skipped,
                      split_files=[csv_path] + ([Path(label_map)] if label_map is not None else []))
