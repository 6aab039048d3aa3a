"""On-disk frame cache: every video decoded once, resized to the loader's size and stored, so training reads
frames without decoding.

What a loader sees is set by a `FrameSpec` (config `data.frames`, `frame_spec(cfg)`), cached or not:
- `short_side`: frames resized (torchvision, antialiased) so their short side is this many px; never upscaled,
  so videos already that small (the generated 32-px sets) are stored byte for byte as decoded. `auto` (the
  default) is 8/7 of the largest crop the config trains at: 128 px for 112-px crops, as the papers' loaders.
- `storage`: `raw` (uint8 .npy, lossless; the generated sets) or `jpeg` (one JPEG per frame at
  `jpeg_quality`; real datasets: 14x smaller than .npy at 320x240, 10x at 128 px, and a clip decodes only its
  own frames; benchmarks/perf/README.md "Frame cache"). JPEG is lossy, so with it the loader that decodes the video itself
  (no cache) passes its frames through the same JPEG round trip: the clips are identical either way.

Layout of a cache folder (one per dataset flavour in the workflow):

  <name>.npy   raw: one video's frames (T, H, W, 3) uint8, as a plain .npy array
  <name>.jpgs  jpeg: an int64 .npy array of T + 1 byte offsets, then a uint8 .npy array of the T JPEGs back to back
  <name>.json  its sidecar: shape, frames, source_sha256, entry_sha256, entry_bytes, decoder, frame spec
               (written after the entry)
  index.json   {"videos": {source key: sidecar + entry, source_size, source_mtime_ns}, "decoder", "frames", ...}

`<name>` is content-addressed: a hash of the video file's sha256, the decoder (PyAV + libavcodec version) and
the frame spec, so a changed video, a new decoder that might decode differently, or a new size or storage gets
a new entry, and two copies of one video share one. The source key is the video's path relative to the cache
folder (absolute paths normalised, symlinks not followed), so the index stays valid when the whole tree moves
or the working directory changes.

Resumable: every file is written atomically (`scenebias.io.atomic_path`) and the index last. A build that
finds an entry whose sidecar exists and whose bytes still hash to the sidecar's entry_sha256 reuses it; a
killed build's leftover temporary files (hidden `.<name>.npy.*` / `.<name>.jpgs.*` / `.<name>.json.*`) are
removed first. So a rerun after a kill decodes only what was not finished. Do not run two builds into one folder
at once.

Reading (`CachedFrames.frames`) is `np.load` (raw) or JPEG decoding of the frames a clip needs
(`CachedFrames.video` gives `JpegFrames`), never H.264 decoding. Before serving a video it checks the source
is unchanged: its size and mtime against the index (one stat), and only when those differ, its sha256 (so
touching or copying a video costs one hash, not an error). A video whose content changed while keeping its
size and mtime is not detected by reading; `verify_cache(..., sources=True)` re-hashes every source.
The entry itself is hashed against the index's entry_sha256 the first time a process reads it (then only
stat'ed): a missing, truncated or corrupted entry is a DataError naming it, its video and the command that
rebuilds it, never frames.

The cache folders live apart from the generated set (`paths.frame_cache`, default `data/frame_cache/{preset}`):
`scenebias generate` replaces its whole folder, so a cache inside it would be deleted by every rerun.
"""
from __future__ import annotations

import hashlib
import io
import math
import multiprocessing as mp
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import av
import numpy as np
from tqdm import tqdm

from ..errors import ConfigError, DataError
from ..io import atomic_path, read_json, read_json_if_valid, write_json
from .manifest import file_sha256
from .video import read_video, resize_short_side

if TYPE_CHECKING:  # torch is imported where used (CachedFrames.frames), as in scenebias.data.video
    import torch

FORMAT_VERSION = 2
INDEX_NAME = "index.json"
# paths.frame_cache when the config has no such key: beside the generated set, never inside it (`generate`
# replaces that folder whole).
DEFAULT_DIR = "data/frame_cache/{preset}"
STORAGES = {"raw": ".npy", "jpeg": ".jpgs"}  # storage -> entry suffix
SHORT_SIDE_PER_CROP = 8 / 7  # the papers' loaders: frames resized to 128 px for 112-px crops (256 for 224)
DEFAULT_JPEG_QUALITY = 90
DEFAULT_MEMORY_MB = 1024  # data.memory_cache_mb: what each loader process keeps decoded (datasets.ClipDataset)


# ------------------------------------------------------------------------------------------------ frames
class JpegFrames:
    """A video stored as one JPEG per frame. `shape` is that of the (T, H, W, 3) uint8 tensor it stands for;
    a slice gives the sub-video without decoding, an int or index tensor the decoded frames (only those)."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray, height: int, width: int) -> None:
        import torch

        self.data, self.offsets = data, offsets
        self.shape = torch.Size((len(offsets) - 1, int(height), int(width), 3))

    @classmethod
    def encode(cls, video: "torch.Tensor", quality: int) -> "JpegFrames":
        import torch
        from torchvision.io import encode_jpeg

        images = encode_jpeg(list(video.permute(0, 3, 1, 2).contiguous()), quality=quality)
        offsets = np.cumsum([0, *(len(i) for i in images)], dtype=np.int64)
        return cls(torch.cat(images).numpy(), offsets, video.shape[1], video.shape[2])

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.offsets.nbytes)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> Any:
        import torch

        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("JpegFrames: only contiguous slices")
            return JpegFrames(self.data, self.offsets[start:max(stop, start) + 1], self.shape[1], self.shape[2])
        idx = torch.as_tensor(key, dtype=torch.long)
        frames = self._decode(idx.reshape(-1))
        return frames[0] if idx.ndim == 0 else frames.reshape(*idx.shape, *self.shape[1:])

    def decode(self) -> "torch.Tensor":
        """Every frame, (T, H, W, 3) uint8."""
        import torch

        return self._decode(torch.arange(len(self)))

    def _decode(self, idx: "torch.Tensor") -> "torch.Tensor":
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        n = len(self)
        if idx.numel() and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"JpegFrames: frame index out of range for {n} frames")
        unique, inverse = torch.unique(idx % max(n, 1), return_inverse=True)  # a static clip repeats one frame
        images = [torch.from_numpy(self.data[self.offsets[i]:self.offsets[i + 1]]) for i in unique.tolist()]
        if not images:
            return torch.empty((0, *self.shape[1:]), dtype=torch.uint8)
        frames = torch.stack(decode_jpeg(images, mode=ImageReadMode.RGB))
        if len(unique) < len(idx) or not torch.equal(unique, idx % n):
            frames = frames[inverse]
        # (k, H, W, 3) as a view of the decoded (k, 3, H, W): ClipDataset permutes it back without a copy
        return frames.permute(0, 2, 3, 1)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.save(buf, self.offsets - self.offsets[0], allow_pickle=False)
        np.save(buf, np.ascontiguousarray(self.data[self.offsets[0]:self.offsets[-1]]), allow_pickle=False)
        return buf.getvalue()

    @classmethod
    def from_file(cls, path: Path, height: int, width: int) -> "JpegFrames":
        with open(path, "rb") as fh:
            offsets = np.load(fh, allow_pickle=False)
            data = np.load(fh, allow_pickle=False)
        if offsets.ndim != 1 or len(offsets) < 2 or int(offsets[-1]) != data.size or data.dtype != np.uint8:
            raise ValueError(f"offsets ({len(offsets)}, last {offsets[-1] if len(offsets) else None}) do not "
                             f"match the {data.size} bytes of JPEG data")
        return cls(data, offsets, height, width)


@dataclass(frozen=True)
class FrameSpec:
    """The frames a loader sees, from the cache or decoded: short side (None: as decoded; never upscaled) and
    storage ("raw" .npy, or "jpeg" at `jpeg_quality`, whose decoded pixels are then the frames)."""
    short_side: int | None = None
    storage: str = "raw"
    jpeg_quality: int = DEFAULT_JPEG_QUALITY

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise ConfigError(f"data.frames.storage: {self.storage!r} is not one of {sorted(STORAGES)}")
        if self.short_side is not None and (isinstance(self.short_side, bool) or not isinstance(
                self.short_side, int) or self.short_side < 1):
            raise ConfigError(f"data.frames.short_side: {self.short_side!r} must be a positive integer, auto or null")
        if isinstance(self.jpeg_quality, bool) or not isinstance(self.jpeg_quality, int) or not \
                1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"data.frames.jpeg_quality: {self.jpeg_quality!r} must be an integer in 1..100")

    @property
    def key(self) -> str:
        """What the frames are, in words; equal keys mean equal frames (raw ignores the JPEG quality)."""
        size = f"short side {self.short_side}" if self.short_side is not None else "as decoded"
        return f"{size}, " + ("raw" if self.storage == "raw" else f"jpeg q{self.jpeg_quality}")

    @property
    def suffix(self) -> str:
        return STORAGES[self.storage]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FrameSpec":
        return cls(**d)

    def prepare(self, video: "torch.Tensor") -> "torch.Tensor | JpegFrames":
        """Decoded frames (T, H, W, 3) uint8 -> what the cache stores and every loader reads."""
        return self.store(resize_short_side(video, self.short_side))

    def load(self, path: str | os.PathLike) -> "torch.Tensor | JpegFrames":
        """prepare(read_video(path)), resizing as it decodes (read_video's short_side: bounded memory)."""
        return self.store(read_video(path, self.short_side))

    def store(self, resized: "torch.Tensor") -> "torch.Tensor | JpegFrames":
        return JpegFrames.encode(resized, self.jpeg_quality) if self.storage == "jpeg" else resized


AS_DECODED = FrameSpec()


# ------------------------------------------------------------------------------------------------ names
def decoder_id() -> str:
    """The decoder that produced (or would produce) the cached frames; part of every entry's name."""
    libavcodec = ".".join(str(v) for v in av.library_versions["libavcodec"])
    return f"pyav {av.__version__}, libavcodec {libavcodec}"


def entry_name(source_sha256: str, decoder: str, spec: FrameSpec = AS_DECODED) -> str:
    """Content-addressed entry name: the same video bytes, decoder and frame spec give the same frames."""
    return hashlib.sha256(f"{FORMAT_VERSION}\n{decoder}\n{spec.key}\n{source_sha256}".encode()).hexdigest()[:32]


def source_key(path: str | os.PathLike, cache_dir: str | os.PathLike) -> str:
    """The index key of a video: its path relative to the cache folder, POSIX style."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(cache_dir))).as_posix()


def source_path(cache_dir: str | os.PathLike, key: str) -> Path:
    """The video an index key names (the inverse of source_key, relative to the working directory's view)."""
    return Path(os.path.normpath(Path(cache_dir) / key))


def source_paths(records_or_paths: Iterable[Any]) -> list[Path]:
    """Unique video paths, first-seen order, from VideoRecords (anything with `.path`) or paths."""
    seen: dict[str, Path] = {}
    for item in records_or_paths:
        path = Path(getattr(item, "path", item))
        seen.setdefault(os.path.abspath(path), path)
    return list(seen.values())


# ------------------------------------------------------------------------------------------------ build
def _entry_bytes(frames: "torch.Tensor | JpegFrames") -> bytes:
    if isinstance(frames, JpegFrames):
        return frames.to_bytes()
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(frames.numpy()), allow_pickle=False)
    return buf.getvalue()


def _verified_sidecar(cache_dir: Path, name: str, spec: FrameSpec) -> dict[str, Any] | None:
    """The sidecar of a finished entry whose bytes still hash to what the sidecar says, else None."""
    entry, sidecar = cache_dir / f"{name}{spec.suffix}", cache_dir / f"{name}.json"
    meta = read_json_if_valid(sidecar) if entry.is_file() else None
    return meta if isinstance(meta, dict) and meta.get("entry_sha256") == file_sha256(entry) else None


def _write_entry(source: Path, cache_dir: Path, name: str, source_sha256: str, decoder: str,
                 spec: FrameSpec) -> dict[str, Any]:
    frames = spec.load(source)
    data = _entry_bytes(frames)
    entry = f"{name}{spec.suffix}"
    with atomic_path(cache_dir / entry) as tmp:
        tmp.write_bytes(data)
    meta = {"entry": entry, "frames": int(frames.shape[0]), "shape": list(frames.shape),
            "source_sha256": source_sha256, "entry_sha256": hashlib.sha256(data).hexdigest(),
            "entry_bytes": len(data), "decoder": decoder, "frame_spec": spec.to_dict(), "format": FORMAT_VERSION}
    write_json(cache_dir / f"{name}.json", meta)  # after the entry: a sidecar means the entry is complete
    return meta


def cache_entry(source: Path, cache_dir: Path, decoder: str,
                spec: FrameSpec = AS_DECODED) -> tuple[dict[str, Any], bool]:
    """Index record for one video, decoding it only when no verified entry exists; (record, decoded?)."""
    if not source.is_file():
        raise DataError(f"{source}: video file not found")
    stat = source.stat()
    source_sha256 = file_sha256(source)
    name = entry_name(source_sha256, decoder, spec)
    meta = _verified_sidecar(cache_dir, name, spec)
    decoded = meta is None
    if decoded:
        meta = _write_entry(source, cache_dir, name, source_sha256, decoder, spec)
    return {**meta, "source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}, decoded


def _entry_task(task: tuple[str, str, str, dict]) -> tuple[str, dict[str, Any], bool]:
    source, cache_dir, decoder, spec = task
    record, decoded = cache_entry(Path(source), Path(cache_dir), decoder, FrameSpec.from_dict(spec))
    return source, record, decoded


def remove_stale_temps(cache_dir: Path) -> int:
    """Delete temporary files a killed build left (atomic_path names them `.<target>.<random><suffix>`)."""
    suffixes = {*STORAGES.values(), ".json"}
    stale = [p for p in cache_dir.glob(".*") if p.is_file() and p.suffix in suffixes]
    for p in stale:
        p.unlink()
    return len(stale)


def _one_torch_thread() -> None:
    """In a forked builder: resizing and JPEG run in torch, whose OpenMP pool inherited from a parent that used it
    would hang; one thread per process never enters it (as DataLoader workers do)."""
    import torch

    torch.set_num_threads(1)


def _results(tasks: list[tuple], workers: int) -> Iterable[tuple[str, dict, bool]]:
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_entry_task, tasks)
        return
    # decoding is CPU-bound: processes, as the generator uses (fork where available)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(processes=min(int(workers), len(tasks)), initializer=_one_torch_thread) as pool:
        yield from pool.imap_unordered(_entry_task, tasks, chunksize=4)


def _run_tasks(tasks: list[tuple], workers: int, progress: bool) -> list[tuple[str, dict, bool]]:
    return list(tqdm(_results(tasks, workers), total=len(tasks), desc="frame cache", unit="video", leave=False,
                     disable=not progress))


def build_cache(records_or_paths: Iterable[Any], cache_dir: str | os.PathLike, progress: bool = True,
                workers: int = 1, prune: bool = False, spec: FrameSpec = AS_DECODED) -> dict[str, Any]:
    """Decode every video once into `cache_dir`, as `spec` says, and write its index; resumes a killed build.

    `records_or_paths`: VideoRecords or video paths (a video listed twice is cached once; a record's
    start/end frames do not matter: the whole video is cached and ClipDataset slices it).
    `prune=True` deletes entries the new index does not reference (old versions of changed videos, other
    frame specs); leave it off when several builds share the folder.
    Returns a summary: videos, entries, decoded, reused, stale_temps_removed, pruned, bytes, index, frames.
    """
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temps(folder)
    decoder = decoder_id()
    sources = source_paths(records_or_paths)
    tasks = [(str(p), str(folder), decoder, spec.to_dict()) for p in sources]
    results = _run_tasks(tasks, workers, progress)
    videos = {source_key(src, folder): record for src, record, _ in results}
    index = {"format": FORMAT_VERSION, "decoder": decoder, "frames": spec.to_dict(),
             "videos": dict(sorted(videos.items()))}
    write_json(folder / INDEX_NAME, index)  # last: its presence means every listed entry is complete
    entries = {r["entry"] for r in videos.values()}
    pruned = prune_unreferenced(folder, entries) if prune else 0
    return {"index": str(folder / INDEX_NAME), "videos": len(videos), "entries": len(entries),
            "decoded": sum(d for _, _, d in results), "reused": sum(not d for _, _, d in results),
            "stale_temps_removed": stale, "pruned": pruned, "frames": spec.key,
            "bytes": sum((folder / e).stat().st_size for e in entries)}


def prune_unreferenced(folder: Path, entries: set[str]) -> int:
    """Delete entries (and sidecars) not in `entries`; returns how many entries went."""
    gone = [p for suffix in STORAGES.values() for p in folder.glob(f"*{suffix}") if p.name not in entries]
    for p in gone:
        p.unlink()
        p.with_suffix(".json").unlink(missing_ok=True)
    return len(gone)


# ------------------------------------------------------------------------------------------------ read
def read_index(cache_dir: str | os.PathLike, rebuild: str | None = None) -> dict[str, Any]:
    """The cache's index, checked for format and decoder; DataError naming the index and the command that
    rebuilds it (`rebuild`, default rebuild_command(cache_dir)) otherwise."""
    path = Path(cache_dir) / INDEX_NAME
    if not path.is_file():
        raise DataError(f"{path}: frame cache index not found (build it with `scenebias frame-cache`)")
    index = read_json(path)
    rebuild = rebuild or rebuild_command(cache_dir)
    if not isinstance(index, dict) or index.get("format") != FORMAT_VERSION or not isinstance(
            index.get("videos"), dict) or not isinstance(index.get("frames"), dict):
        raise DataError(f"{path}: not a frame cache index of format {FORMAT_VERSION}; rebuild it: {rebuild}")
    current = decoder_id()
    if index.get("decoder") != current:
        raise DataError(f"{path}: frames were decoded with {index.get('decoder')!r} but this environment decodes "
                        f"with {current!r}; rebuild the cache (entries are per decoder): {rebuild}")
    return index


def entry_problem(entry: Path, rec: Mapping[str, Any]) -> str | None:
    """What is wrong with a cache entry ("entry missing", "entry truncated ...", "entry corrupted ..."), or
    None when its bytes hash to the record's entry_sha256."""
    if not entry.is_file():
        return "entry missing"
    found = file_sha256(entry)
    if found == rec["entry_sha256"]:
        return None
    # told apart because a short file points at a killed copy or a full disk, a changed one at the storage
    size, needed = entry.stat().st_size, rec["entry_bytes"]
    if size < needed:
        return f"entry truncated ({size} bytes, the index says {needed})"
    return f"entry corrupted, sha256 {found[:16]}... but the index has {rec['entry_sha256'][:16]}..."


def rebuild_command(cache_dir: str | os.PathLike, flavour: str | None = None, preset: str | None = None) -> str:
    """The command that rebuilds a cache folder; it re-decodes only the entries that fail their sha256.

    The workflow would not rerun its frame_cache job (the index is newer than its manifest), so errors give
    this command rather than a snakemake target. Without a known preset it says PRESET: use the run's."""
    folder = Path(cache_dir)
    return shlex.join(["scenebias", "frame-cache", "--preset", preset or "PRESET",
                       "--flavour", flavour or folder.name, "--out", str(folder)])


def verify_cache(cache_dir: str | os.PathLike, sources: bool = False, progress: bool = False) -> int:
    """Re-hash every entry (and with `sources=True` every source video) against the index.

    Returns the number of videos checked; raises DataError naming each bad entry and its video.
    """
    folder = Path(cache_dir)
    videos = read_index(folder)["videos"]
    items = tqdm(sorted(videos.items()), desc="verify frame cache", unit="video", leave=False, disable=not progress)
    bad: list[str] = []
    problems: dict[str, str | None] = {}  # entry -> problem: videos sharing an entry hash it once
    for key, rec in items:
        entry = folder / rec["entry"]
        if rec["entry"] not in problems:
            problems[rec["entry"]] = entry_problem(entry, rec)
        if problems[rec["entry"]]:
            bad.append(f"{entry}: {problems[rec['entry']]} (video {source_path(folder, key)})")
        if sources:
            src = source_path(folder, key)
            if not src.is_file():
                bad.append(f"{src}: cached video no longer exists")
            elif file_sha256(src) != rec["source_sha256"]:
                bad.append(f"{src}: video changed since it was cached (entry {entry})")
    if bad:
        raise DataError(f"{folder}: frame cache failed verification ({len(bad)} problem(s); rebuild with "
                        f"`scenebias frame-cache`):\n  " + "\n  ".join(bad))
    return len(videos)


class CachedFrames:
    """Frames of cached videos by source path: `frames(path)` is `spec.prepare(read_video(path))` as a tensor,
    without decoding the video; `video(path)` the same, lazily for JPEG entries (`JpegFrames`).

    `mmap=False` reads each raw entry into memory (one read). `mmap=True` memory-maps it copy-on-write: only the
    frames a clip touches are read, and DataLoader workers share the page cache; but on Python < 3.13 each
    live map holds a file descriptor, so keeping thousands of videos mapped can exceed `ulimit -n`. JPEG
    entries are read into memory (they are small) and decoded frame by frame.

    `spec`, when given, must be the frame spec the cache was built with (else a DataError that says how to
    rebuild). Each entry is hashed the first time this process reads it (see _verify_entry). `rebuild` is the
    command errors give for rebuilding this folder (default: rebuild_command(cache_dir)).
    """

    def __init__(self, cache_dir: str | os.PathLike, mmap: bool = False, rebuild: str | None = None,
                 spec: FrameSpec | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.rebuild = rebuild or rebuild_command(self.cache_dir)
        index = read_index(self.cache_dir, self.rebuild)
        self.videos: dict[str, dict[str, Any]] = index["videos"]
        self.spec = FrameSpec.from_dict(index["frames"])
        self.mmap = bool(mmap)
        if spec is not None and spec.key != self.spec.key:
            raise DataError(f"{self.cache_dir / INDEX_NAME}: the frame cache holds frames at {self.spec.key}, but "
                            f"the config asks for {spec.key} (data.frames); rebuild it: {self.rebuild}")
        self._checked_stat: dict[str, tuple[int, int]] = {}  # key -> (size, mtime_ns) whose sha256 matched

    def __len__(self) -> int:
        return len(self.videos)

    def __contains__(self, path: str | os.PathLike) -> bool:
        return source_key(path, self.cache_dir) in self.videos

    def record(self, path: str | os.PathLike) -> dict[str, Any]:
        """The index record of `path`, after checking the video is cached and unchanged."""
        key = source_key(path, self.cache_dir)
        rec = self.videos.get(key)
        if rec is None:
            raise DataError(f"{path}: video is not in the frame cache {self.cache_dir} ({len(self.videos)} "
                            f"videos); rebuild it with `scenebias frame-cache`")
        self._check_source(Path(path), key, rec)
        return rec

    def _check_source(self, path: Path, key: str, rec: Mapping[str, Any]) -> None:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataError(f"{path}: video file not found (it is in the frame cache {self.cache_dir}, "
                            f"but the cache only stands in for existing videos)") from None
        stat = (st.st_size, st.st_mtime_ns)
        if stat == (rec["source_size"], rec["source_mtime_ns"]) or self._checked_stat.get(key) == stat:
            return
        digest = file_sha256(path)  # size or mtime differ: the content decides (a touched copy is fine)
        if digest != rec["source_sha256"]:
            raise DataError(f"{path}: video changed since it was cached in {self.cache_dir} (sha256 "
                            f"{digest[:16]}..., cached {rec['source_sha256'][:16]}...); rebuild the frame cache")
        self._checked_stat[key] = stat

    def _verify_entry(self, entry: Path, rec: Mapping[str, Any], path: str | os.PathLike) -> None:
        # Hashing is cheap against decoding (0.06 ms vs 11 ms for a 32-frame 32² video) but not free, so once
        # per process: a verified entry is remembered with its stat, so later reads cost one stat, and a file
        # rewritten since (new mtime) is hashed again.
        try:
            st = entry.stat()
            seen = (os.path.abspath(entry), rec["entry_sha256"], st.st_size, st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            seen = None
        if seen is not None and seen in _VERIFIED:
            return
        problem = entry_problem(entry, rec)
        if problem:
            raise DataError(f"{entry}: {problem}; it is the frame cache entry for video {path}. Rebuild the "
                            f"cache (it re-decodes only damaged entries): {self.rebuild}")
        if seen is not None:  # None: the file appeared after the stat; hash it again next time
            _VERIFIED.add(seen)

    def video(self, path: str | os.PathLike) -> "torch.Tensor | JpegFrames":
        """The cached video: a (T, H, W, 3) uint8 tensor (raw entries) or JpegFrames (jpeg entries)."""
        import torch

        rec = self.record(path)
        entry = self.cache_dir / rec["entry"]
        self._verify_entry(entry, rec, path)
        try:
            if self.spec.storage == "jpeg":
                video = JpegFrames.from_file(entry, rec["shape"][1], rec["shape"][2])
            else:
                # "c" (copy-on-write) gives a writable array, so torch.from_numpy neither copies nor warns
                video = torch.from_numpy(np.load(entry, mmap_mode="c" if self.mmap else None, allow_pickle=False))
        except (OSError, ValueError, EOFError) as exc:  # changed between the check and the load
            raise DataError(f"{entry}: unreadable frame cache entry for {path} ({exc}); "
                            f"rebuild the cache: {self.rebuild}") from exc
        dtype = torch.uint8 if isinstance(video, JpegFrames) else video.dtype  # JpegFrames checks its bytes
        if dtype != torch.uint8 or list(video.shape) != list(rec["shape"]):
            raise DataError(f"{entry}: frame cache entry for {path} has {dtype} {list(video.shape)}, "
                            f"the index says uint8 {rec['shape']}; rebuild the cache: {self.rebuild}")
        return video

    def frames(self, path: str | os.PathLike) -> "torch.Tensor":
        """(T, H, W, 3) uint8 tensor, equal to spec.prepare(read_video(path)) decoded."""
        video = self.video(path)
        return video.decode() if isinstance(video, JpegFrames) else video


# (path, entry_sha256, size, mtime_ns, inode) of entries this process has hashed; DataLoader workers forked
# after a read inherit it, which is right: they see the same unchanged files.
_VERIFIED: set[tuple[str, str, int, int, int]] = set()


# ------------------------------------------------------------------------------------------------ config
def auto_short_side(clip: Mapping[str, Any]) -> int:
    """8/7 of the largest crop the config trains at (clip.crop_size, clip.crop_size_by_backbone)."""
    crops = [clip["crop_size"], *(clip.get("crop_size_by_backbone") or {}).values()]
    return math.ceil(max(crops) * SHORT_SIDE_PER_CROP)


def frame_spec(cfg: Mapping[str, Any]) -> FrameSpec:
    """The config's frames (`data.frames`: short_side auto|null|px, storage raw|jpeg, jpeg_quality)."""
    opts = cfg["data"].get("frames") or {}
    short = opts.get("short_side", "auto")
    if short == "auto":
        short = auto_short_side(cfg["clip"])
    return FrameSpec(short, opts.get("storage", "raw"), opts.get("jpeg_quality", DEFAULT_JPEG_QUALITY))


def memory_cache_bytes(cfg: Mapping[str, Any]) -> int:
    """Each loader process's budget for decoded videos kept in memory (`data.memory_cache_mb`; 0: none)."""
    return int(cfg["data"].get("memory_cache_mb", DEFAULT_MEMORY_MB) * 2 ** 20)


def flavour_cache_dir(cfg: Mapping[str, Any], flavour: str) -> Path:
    """<paths.frame_cache>/<flavour>; paths.frame_cache defaults to DEFAULT_DIR ({preset}, {data} filled in)."""
    return Path(cache_root(cfg)) / flavour


def cache_root(cfg: Mapping[str, Any]) -> str:
    """The folder of every flavour's cache; an error when it lies inside the generated set's folder, which
    `scenebias generate` replaces whole (the cache would go with every rerun)."""
    data = cfg["paths"].get("data", "data/generated/{preset}").format(preset=cfg["preset"])
    setting = cfg["paths"].get("frame_cache", DEFAULT_DIR)
    root = setting.format(preset=cfg["preset"], data=data)
    inside = Path(os.path.abspath(root)).is_relative_to(os.path.abspath(data))
    if inside:
        raise ConfigError(f"paths.frame_cache: {setting!r} ({root}) lies inside paths.data ({data}), which "
                          f"`scenebias generate` replaces as a whole, deleting the cache; put it beside the data "
                          f"(default {DEFAULT_DIR!r})")
    return root


def frame_cache_for(cfg: Mapping[str, Any], flavour: str) -> CachedFrames | None:
    """The flavour's CachedFrames when data.frame_cache is true, else None (ClipDataset then decodes).

    A cache that was never built (a single `scenebias pretrain` outside the workflow, say) is not an error: the
    frames are the same either way, so the job decodes and says so once. A cache that exists but is stale,
    corrupt or built for other frames (data.frames) is an error (CachedFrames and its reads name the entry)."""
    if not cfg["data"].get("frame_cache", False):
        return None
    folder = flavour_cache_dir(cfg, flavour)
    if not (folder / INDEX_NAME).is_file():
        if flavour not in _WARNED:
            _WARNED.add(flavour)
            print(f"scenebias: no frame cache at {folder} (data.frame_cache is on): decoding the videos instead; "
                  f"build it with `scenebias frame-cache --flavour {flavour}` or the workflow", file=sys.stderr)
        return None
    return CachedFrames(folder, rebuild=rebuild_command(folder, flavour, cfg["preset"]), spec=frame_spec(cfg))


def dataset_frames(cfg: Mapping[str, Any], flavour: str | None) -> dict[str, Any]:
    """ClipDataset's frame options from the config: the frame spec, the flavour's on-disk cache (when on and
    built) and the in-memory budget."""
    return {"frame_spec": frame_spec(cfg), "cache_bytes": memory_cache_bytes(cfg),
            "frame_cache": frame_cache_for(cfg, flavour) if flavour else None}


_WARNED: set[str] = set()
