"""Readers and writers for the official split-file formats of UCF101, HMDB51, Diving48 (V2) and Kinetics-400.

The writers produce files byte-compatible with the official ones (checked against the fixtures in
shared/fixtures/official-splits); the readers accept the official files and the writers' output alike.

UCF101 (`ucfTrainTestlist/`, CRLF line endings, every line terminated):
  classInd.txt      "1 ApplyEyeMakeup"            1-based index, case-insensitive alphabetical order
  trainlist0N.txt   "Class/v_Class_gGG_cCC.avi 1"  label = classInd index of the directory (1-based)
  testlist0N.txt    "Class/v_Class_gGG_cCC.avi"
HMDB51 (`testTrainMulti_7030_splits/<class>_test_split<N>.txt`, LF, lines sorted by file name):
  "<video>.avi <tag> "  with a trailing space; tag 1 = train, 2 = test, 0 = unused.
  Class names come from the file names; label = index in the sorted class names.
Diving48 V2 (JSON, 2-space indent, LF, no final newline):
  Diving48_V2_{train,test}.json  [{"vid_name", "label", "start_frame", "end_frame"}, ...]
  Diving48_vocab.json            [["Back", "15som", "05Twis", "FREE"], ...] (Python-2 style ", " separators)
  Class name = the vocab strings joined with "_". `end_frame` is read as the index of the last frame
  (inclusive); the fixture alone cannot settle inclusive vs exclusive, so readers of frames clamp it to
  the decoded length (see ClipDataset).
Kinetics-400 (annotation CSVs, LF; read only, there is no writer):
  2020 release  train.csv / validate.csv   "label,youtube_id,time_start,time_end,split", labels unquoted
  2017 release  kinetics-400_{train,val}.csv  same plus an `is_cc` column; labels with spaces double-quoted
  Video files are `<youtube_id>_<time_start:06d>_<time_end:06d>.mp4` (the crawler's name; the clip is
  already trimmed to [time_start, time_end] seconds, so the whole file is used), flat or in label folders.

Public entry point: `read_split(fmt, root, subset, split=1, ..., on_missing="error") -> SplitIndex`.
With on_missing="skip", listed videos that are not on disk are left out of `records` and listed in
`SplitIndex.skipped` (split file, line and the line as written), so a report can say what was dropped.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import ConfigError, DataError, UnknownNameError
from ..io import write_text

FORMATS = ("ucf101", "hmdb51", "diving48", "kinetics400")
SUBSETS = ("train", "test")
HMDB_TAGS = {"train": 1, "test": 2}
ON_MISSING = ("error", "skip")


@dataclass(frozen=True)
class VideoRecord:
    """One video of a split. `label` is 0-based; `end_frame` is inclusive (None = to the last frame)."""

    path: Path
    label: int
    video_id: str
    start_frame: int = 0
    end_frame: int | None = None


@dataclass(frozen=True)
class SkippedVideo:
    """A listed video that was not on disk (on_missing="skip"): where it was expected and who listed it.

    `line` is the 1-based line of `split_file` (None for Diving48's JSON, whose entries span several lines;
    `entry` then is the entry index and the entry); `entry` is that line as written, without its terminator.
    """

    path: Path
    split_file: Path
    line: int | None
    entry: str

    @property
    def where(self) -> str:
        if self.line is None:  # Diving48: "<file>: entry <i>"
            return f"{self.split_file}: {self.entry.split(':', 1)[0]}"
        return f"{self.split_file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.entry!r} -> {self.path} not found"


@dataclass
class SplitIndex:
    records: list[VideoRecord]
    class_names: list[str] = field(default_factory=list)
    skipped: list[SkippedVideo] = field(default_factory=list)  # only with on_missing="skip"
    split_files: list[Path] = field(default_factory=list)      # the split / class-index files read

    def __len__(self) -> int:
        return len(self.records)

    @property
    def listed(self) -> int:
        """Videos the split files list for this subset (kept + skipped)."""
        return len(self.records) + len(self.skipped)

    def skip_summary(self, name: str, list_file: str | os.PathLike | None = None) -> str | None:
        """The report line for skipped videos, e.g. 'ucf101 train: skipped 3 of 9537 listed videos (not
        found; list in <file>)'; None when nothing was skipped."""
        if not self.skipped:
            return None
        where = f"list in {list_file}" if list_file is not None else f"first: {self.skipped[0]}"
        return (f"{name}: skipped {len(self.skipped)} of {self.listed} listed videos "
                f"(not found, on_missing: skip; {where})")


# --------------------------------------------------------------------------------------------- helpers
def _read_lines(path: Path) -> list[str]:
    """Lines of a text split file without their terminators (CRLF or LF); a final empty line is dropped."""
    if not path.is_file():
        raise DataError(f"{path}: split file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _skipped_lines(split_file: Path, missing: Sequence[tuple[int, Path]]) -> list[SkippedVideo]:
    """SkippedVideo for each (line number, expected path) of one text split file, with the line as written."""
    if not missing:
        return []
    lines = _read_lines(split_file)
    return [SkippedVideo(path=p, split_file=split_file, line=n, entry=lines[n - 1]) for n, p in missing]


def _settle_missing(first: str | None, skipped: list[SkippedVideo], listed: int, subset: str,
                    on_missing: str) -> list[SkippedVideo]:
    """on_missing="error": raise for the first missing video (`first` says which), with the count and a few
    more examples; "skip": return the list."""
    if not skipped or on_missing == "skip":
        return skipped
    more = "; ".join(f"{s.where}: {s.path}" for s in skipped[1:3]) + ("; ..." if len(skipped) > 3 else "")
    raise DataError(f"{first} ({len(skipped)} of {listed} listed {subset} videos not found"
                    + (f"; also {more}" if more else "") + ")")


def _check_on_missing(on_missing: str) -> None:
    if on_missing not in ON_MISSING:
        raise ConfigError(f"on_missing: {on_missing!r} is not one of {list(ON_MISSING)}")


def _check_subset(subset: str) -> None:
    if subset not in SUBSETS:
        raise ConfigError(f"subset: {subset!r} is not one of {list(SUBSETS)}")


def _check_split(split: int, allowed: Iterable[int] | None = None) -> None:
    if not isinstance(split, int) or isinstance(split, bool) or split < 1:
        raise ConfigError(f"split: {split!r} must be a positive integer")
    if allowed is not None and split not in allowed:
        raise ConfigError(f"split: {split!r} is not one of {sorted(allowed)}")


def ucf_class_order(names: Iterable[str]) -> list[str]:
    """Class order of UCF101's classInd.txt: case-insensitive alphabetical (Hammering < HammerThrow)."""
    return sorted(names, key=lambda s: (s.lower(), s))


# Default (video folder, split-file folder) under a root; Kinetics' video folder depends on the subset and
# its CSVs are searched for in <root>/annotations then <root> (see _kinetics_csv_path).
_DEFAULT_DIRS = {"ucf101": ("UCF101", "ucfTrainTestlist"), "hmdb51": ("videos", "testTrainMulti_7030_splits"),
                 "diving48": ("rgb", "")}


def default_dirs(fmt: str, root: Path, subset: str, video_dir: Path | None = None,
                 split_dir: Path | None = None) -> tuple[Path, Path | None]:
    """(video folder, split-file folder) read for `subset`: the overrides, else the default layout under root.

    The split folder is None for kinetics400 without `split_dir` (its CSVs are searched for)."""
    root = Path(root)
    if fmt == "kinetics400":
        default_video, default_split = root / KINETICS_VIDEO_DIRS[subset], None
    else:
        default_video, default_split = root / _DEFAULT_DIRS[fmt][0], root / _DEFAULT_DIRS[fmt][1]
    return (Path(video_dir) if video_dir is not None else default_video,
            Path(split_dir) if split_dir is not None else default_split)


# --------------------------------------------------------------------------------------------- UCF101
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


# --------------------------------------------------------------------------------------------- HMDB51
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


# --------------------------------------------------------------------------------------------- Diving48
DIVING48_FILES = {"train": "Diving48_V2_train.json", "test": "Diving48_V2_test.json"}
DIVING48_VOCAB = "Diving48_vocab.json"
_DIVING_KEYS = ("vid_name", "label", "start_frame", "end_frame")


def diving48_class_name(entry: Sequence[str]) -> str:
    return "_".join(entry)


def read_diving48_vocab(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"{path}: Diving48 vocab file not found")
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(vocab, list) or not vocab:
        raise DataError(f"{path}: expected a non-empty JSON list of lists of strings")
    for i, e in enumerate(vocab):
        if not isinstance(e, list) or not e or not all(isinstance(s, str) for s in e):
            raise DataError(f"{path}: entry {i} is {e!r}; expected a non-empty list of strings")
    return vocab


def read_diving48_entries(path: Path, num_classes: int | None = None) -> list[dict]:
    """V2 train/test JSON -> list of entries (validated)."""
    if not path.is_file():
        raise DataError(f"{path}: Diving48 split file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
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


# --------------------------------------------------------------------------------------------- Kinetics-400
KINETICS_HEADERS = {  # header -> release; both official, both read
    ("label", "youtube_id", "time_start", "time_end", "split"): "2020",
    ("label", "youtube_id", "time_start", "time_end", "split", "is_cc"): "2017",
}
# Tried in this order; DeepMind's tarball (2020) / CVDF mirror / ActivityNet crawler (2017) names.
KINETICS_CSV_NAMES = {"train": ("train.csv", "kinetics-400_train.csv"),
                      "test": ("validate.csv", "val.csv", "kinetics-400_val.csv")}
# The official test set has no public labels, so "test" is the validation set, as in the papers.
KINETICS_SPLIT_VALUES = {"train": ("train",), "test": ("validate", "val")}
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


# --------------------------------------------------------------------------------------------- public
_READERS = {"ucf101": _read_ucf101, "hmdb51": _read_hmdb51, "diving48": _read_diving48,
            "kinetics400": _read_kinetics400}

# What each official download unpacks to, and where it comes from; quoted by the errors of check_layout.
LAYOUTS = {
    "ucf101": (
        "UCF101 layout read by default (crcv.ucf.edu/data/UCF101.php): videos in <root>/UCF101/<Class>/"
        "v_<Class>_gGG_cCC.avi (UCF101.rar unpacks to a folder named UCF-101: rename it to UCF101 or set "
        "video_dir), split files in <root>/ucfTrainTestlist/ (classInd.txt, trainlist0{1,2,3}.txt, "
        "testlist0{1,2,3}.txt, from UCF101TrainTestSplits-RecognitionTask.zip). Point split_dir / video_dir "
        "elsewhere when yours differ."),
    "hmdb51": (
        "HMDB51 layout read by default (serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database): "
        "videos in <root>/videos/<class>/<video>.avi (hmdb51_org.rar holds one <class>.rar per class; unpack "
        "each into videos/<class>/), split files in <root>/testTrainMulti_7030_splits/<class>_test_split"
        "{1,2,3}.txt (from test_train_splits.rar). Point split_dir / video_dir elsewhere when yours differ."),
    "diving48": (
        "Diving48 V2 layout read by default (www.svcl.ucsd.edu/projects/resound/dataset.html): videos in "
        "<root>/rgb/<vid_name>.mp4 (Diving48_rgb.tar.gz unpacks to rgb/), and Diving48_V2_train.json, "
        "Diving48_V2_test.json and Diving48_vocab.json in <root>. Point split_dir / video_dir elsewhere when "
        "yours differ."),
    "kinetics400": KINETICS_LAYOUT,
}


def check_layout(fmt: str, root: Path, subset: str, video_dir: Path | None = None,
                 split_dir: Path | None = None, label_map: Path | None = None) -> None:
    """A DataError naming the path and describing the official layout when the root, the video folder, the
    split-file folder or the label map is missing. Checks folders only; the readers check the files."""
    if fmt not in LAYOUTS:
        raise UnknownNameError(f"unknown split format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: {fmt} dataset root folder not found. {LAYOUTS[fmt]}")
    videos, splits = default_dirs(fmt, root, subset, video_dir, split_dir)
    if splits is not None and not splits.is_dir():
        raise DataError(f"{splits}: {fmt} split-file folder not found. {LAYOUTS[fmt]}")
    if not videos.is_dir():
        hint = ""
        if fmt == "ucf101" and video_dir is None and (root / "UCF-101").is_dir():
            hint = f" ({root / 'UCF-101'} exists: set video_dir to it, or rename it to UCF101)"
        raise DataError(f"{videos}: {fmt} video folder not found{hint}. {LAYOUTS[fmt]}")
    if label_map is not None and not Path(label_map).is_file():
        raise DataError(f"{label_map}: label map not found (kinetics-i3d's data/label_map.txt, one label per "
                        f"line). {LAYOUTS[fmt]}")


def read_split(fmt: str, root: Path, subset: str, split: int = 1, video_dir: Path | None = None,
               split_dir: Path | None = None, check_files: bool = True,
               label_map: Path | None = None, on_missing: str = "error") -> SplitIndex:
    """Read one subset ("train" / "test") of one official split.

    Default layout under `root`: ucf101 -> videos root/UCF101/<Class>/<file>.avi, lists root/ucfTrainTestlist/;
    hmdb51 -> videos root/videos/<class>/<file>.avi, lists root/testTrainMulti_7030_splits/;
    diving48 -> videos root/rgb/<vid_name>.mp4, JSONs in root/;
    kinetics400 -> CSVs in root/annotations/ or root/ (train.csv | kinetics-400_train.csv; test = the validation
    set: validate.csv | val.csv | kinetics-400_val.csv), videos root/train/ and root/val/, each
    [<label>/]<youtube_id>_<start:06d>_<end:06d>.mp4 (label folder as written or with spaces as '_'; flat also
    accepted; .mkv/.webm too). `video_dir` / `split_dir` override these; for kinetics400 `video_dir` is the
    folder of the subset read. kinetics400 only: `label_map` (label_map.txt, one label per line) fixes the
    class order, else the sorted labels of the CSV are the classes; only split 1 exists.
    With `check_files`, a listed video that does not exist is a DataError naming the split file and line of
    the first (entry index for Diving48 JSON), how many are missing and a few more (for Kinetics, where each
    was looked for).
    Without it nothing but the split files is read (Kinetics paths then assume <video_dir>/<label>/<clip>.mp4).
    `on_missing="skip"` (with check_files) leaves missing videos out of `records` and lists them in
    `skipped` instead of raising; if none of the listed videos exists that is still a DataError (the split
    files do not match the videos). Malformed split files are errors under either policy.
    """
    if fmt not in _READERS:
        raise UnknownNameError(f"unknown split format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    _check_subset(subset)
    _check_split(split)
    _check_on_missing(on_missing)
    if fmt == "kinetics400":
        index = _read_kinetics400(Path(root), subset, split, video_dir, split_dir, check_files, label_map,
                                  on_missing)
    elif label_map is not None:
        raise ConfigError(f"label_map: only the kinetics400 format takes a label map, not {fmt!r}")
    else:
        index = _READERS[fmt](Path(root), subset, split, video_dir, split_dir, check_files, on_missing)
    if index.skipped and not index.records:
        first = index.skipped[0]
        raise DataError(f"{first.split_file}: none of the {len(index.skipped)} listed {subset} videos was found "
                        f"(the first was expected at {first.path}): the split files do not match the videos. "
                        f"{LAYOUTS[fmt]}")
    return index
