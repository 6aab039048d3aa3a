"""What every split-file format shares: the video record, the split index, the missing-video policy and the
default folders under a dataset root (scenebias.data.formats has the formats themselves)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ...errors import ConfigError, DataError
from ...registry import Registry

SUBSETS = ("train", "test")
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


def default_dirs(fmt: str, root: Path, subset: str, video_dir: Path | None = None,
                 split_dir: Path | None = None) -> tuple[Path, Path | None]:
    """(video folder, split-file folder) read for `subset`: the overrides, else the format's default layout under
    root. The split folder may be None for a format whose reader searches for its files (kinetics400)."""
    default_video, default_split = SPLIT_FORMATS.get(fmt).dirs(Path(root), subset)
    return (Path(video_dir) if video_dir is not None else default_video,
            Path(split_dir) if split_dir is not None else default_split)


# ------------------------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class SplitFormat:
    """A dataset's official split-file format, registered by the module that reads it (`register_format`)."""
    name: str
    # (root, subset, split, video_dir, split_dir, check_files, on_missing=..., **options) -> SplitIndex
    read: Callable[..., "SplitIndex"]
    layout: str  # the official layout in words, quoted by every error about a root of this format
    dirs: Callable[[Path, str], tuple[Path, Path | None]]  # default (video folder, split-file folder) for a subset
    options: tuple[str, ...] = ()  # reader keywords beyond the common ones (kinetics400: label_map)


SPLIT_FORMATS: Registry[SplitFormat] = Registry("split format")


def register_format(name: str, layout: str, dirs: Callable[[Path, str], tuple[Path, Path | None]],
                    options: tuple[str, ...] = ()):
    """Decorator on a format's reader: register it as the split format `name` (the `format` of a data.real root)."""
    def deco(read):
        SPLIT_FORMATS.register(name)(SplitFormat(name, read, layout, dirs, tuple(options)))
        return read
    return deco


def format_names() -> tuple[str, ...]:
    """The registered formats, in registration order (scenebias.data.formats imports every built-in one)."""
    return tuple(SPLIT_FORMATS.registered())
