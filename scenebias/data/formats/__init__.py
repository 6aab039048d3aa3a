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

from pathlib import Path

from ...errors import ConfigError, DataError, UnknownNameError
from .common import (ON_MISSING, SPLIT_FORMATS, SUBSETS, SkippedVideo, SplitFormat, SplitIndex, VideoRecord,
                     _check_on_missing, _check_split, _check_subset, default_dirs, format_names, register_format)
# imported in this order, the order formats are listed in: each registers its reader (common.register_format)
from .ucf101 import (UCF101_LAYOUT, read_ucf101_classind, read_ucf101_list, ucf_class_order, write_ucf101_classind,
                     write_ucf101_testlist, write_ucf101_trainlist)
from .hmdb51 import (HMDB51_LAYOUT, HMDB_TAGS, hmdb51_split_files, read_hmdb51_file, write_hmdb51_file,
                     write_hmdb51_splits)
from .diving48 import (DIVING48_FILES, DIVING48_LAYOUT, DIVING48_VOCAB, diving48_class_name, read_diving48_entries,
                       read_diving48_vocab, write_diving48_entries, write_diving48_vocab)
from .kinetics400 import (KINETICS_CSV_NAMES, KINETICS_EXTENSIONS, KINETICS_HEADERS, KINETICS_LAYOUT,
                          KINETICS_SPLIT_VALUES, KINETICS_VIDEO_DIRS, KineticsRow, kinetics_class_folders,
                          kinetics_clip_name, read_kinetics_csv, read_kinetics_label_map)


def layout_of(fmt: str) -> str:
    """The official layout of a registered split format, in words (each format module states its own)."""
    return _format(fmt).layout


def _format(fmt: str) -> SplitFormat:
    if fmt not in SPLIT_FORMATS:
        raise UnknownNameError(f"unknown split format {fmt!r}; expected one of: {', '.join(format_names())}")
    return SPLIT_FORMATS.get(fmt)


def check_layout(fmt: str, root: Path, subset: str, video_dir: Path | None = None,
                 split_dir: Path | None = None, label_map: Path | None = None) -> None:
    """A DataError naming the path and describing the official layout when the root, the video folder, the
    split-file folder or the label map is missing. Checks folders only; the readers check the files."""
    layout = layout_of(fmt)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: {fmt} dataset root folder not found. {layout}")
    videos, splits = default_dirs(fmt, root, subset, video_dir, split_dir)
    if splits is not None and not splits.is_dir():
        raise DataError(f"{splits}: {fmt} split-file folder not found. {layout}")
    if not videos.is_dir():
        hint = ""
        if fmt == "ucf101" and video_dir is None and (root / "UCF-101").is_dir():
            hint = f" ({root / 'UCF-101'} exists: set video_dir to it, or rename it to UCF101)"
        raise DataError(f"{videos}: {fmt} video folder not found{hint}. {layout}")
    if label_map is not None and not Path(label_map).is_file():
        raise DataError(f"{label_map}: label map not found (kinetics-i3d's data/label_map.txt, one label per "
                        f"line). {layout}")


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
    entry = _format(fmt)
    _check_subset(subset)
    _check_split(split)
    _check_on_missing(on_missing)
    if label_map is not None and "label_map" not in entry.options:
        raise ConfigError(f"label_map: only the kinetics400 format takes a label map, not {fmt!r}")
    options = {"label_map": label_map} if label_map is not None else {}
    index = entry.read(Path(root), subset, split, video_dir, split_dir, check_files, on_missing=on_missing, **options)
    if index.skipped and not index.records:
        first = index.skipped[0]
        raise DataError(f"{first.split_file}: none of the {len(index.skipped)} listed {subset} videos was found "
                        f"(the first was expected at {first.path}): the split files do not match the videos. "
                        f"{entry.layout}")
    return index


__all__ = [
    "SPLIT_FORMATS", "SplitFormat", "register_format", "format_names", "layout_of", "SUBSETS", "ON_MISSING",
    "HMDB_TAGS", "VideoRecord", "SkippedVideo", "SplitIndex", "default_dirs",
    "UCF101_LAYOUT", "HMDB51_LAYOUT", "DIVING48_LAYOUT", "check_layout", "read_split",
    "ucf_class_order", "read_ucf101_classind", "read_ucf101_list", "write_ucf101_classind", "write_ucf101_trainlist",
    "write_ucf101_testlist",
    "hmdb51_split_files", "read_hmdb51_file", "write_hmdb51_file", "write_hmdb51_splits",
    "DIVING48_FILES", "DIVING48_VOCAB", "diving48_class_name", "read_diving48_vocab", "read_diving48_entries",
    "write_diving48_entries", "write_diving48_vocab",
    "KINETICS_HEADERS", "KINETICS_CSV_NAMES", "KINETICS_SPLIT_VALUES", "KINETICS_VIDEO_DIRS", "KINETICS_EXTENSIONS",
    "KINETICS_LAYOUT", "KineticsRow", "kinetics_clip_name", "kinetics_class_folders", "read_kinetics_label_map",
    "read_kinetics_csv",
]
