"""On-disk frame cache: every video decoded once into a uint8 .npy file, so training reads frames without decoding.

Layout of a cache folder (one per dataset flavour in the workflow):

  <name>.npy   one video's frames, exactly `read_video`'s output (T, H, W, 3) uint8, as a plain .npy array
  <name>.json  its sidecar: shape, frames, source_sha256, entry_sha256, decoder (written after the .npy)
  index.json   {"videos": {source key: sidecar + entry, source_size, source_mtime_ns}, "decoder", ...}

`<name>` is content-addressed: a hash of the video file's sha256 and the decoder (PyAV + libavcodec version),
so a changed video, or a new decoder that might decode differently, gets a new entry, and two copies of one
video share one. The source key is the video's path relative to the cache folder (absolute paths normalised,
symlinks not followed), so the index stays valid when the whole tree moves or the working directory changes.

Resumable: every file is written atomically (`scenebias.io.atomic_path`) and the index last. A build that
finds an entry whose sidecar exists and whose bytes still hash to the sidecar's entry_sha256 reuses it; a
killed build's leftover temporary files (hidden `.<name>.npy.*` / `.<name>.json.*`) are removed first. So
a rerun after a kill decodes only what was not finished. Do not run two builds into one folder at once.

Reading (`CachedFrames.frames`) is `np.load`, no decoding. Before serving a video it checks the source is
unchanged: its size and mtime against the index (one stat), and only when those differ, its sha256 (so
touching or copying a video costs one hash, not an error). A video whose content changed while keeping its
size and mtime is not detected by reading; `verify_cache(..., sources=True)` re-hashes every source.
The entry itself is hashed against the index's entry_sha256 the first time a process reads it (then only
stat'ed): a missing, truncated or corrupted entry is a DataError naming it, its video and the command that
rebuilds it, never frames.
"""
from __future__ import annotations

import hashlib
import io
import multiprocessing as mp
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import av
import numpy as np
from tqdm import tqdm

from ..errors import DataError
from ..io import atomic_path, read_json, read_json_if_valid, write_json
from .manifest import file_sha256
from .video import read_video

if TYPE_CHECKING:  # torch is imported where used (CachedFrames.frames), as in scenebias.data.video
    import torch

FORMAT_VERSION = 1
INDEX_NAME = "index.json"
# paths.frame_cache when the config has no such key: beside the data it caches ({data} = paths.data), so a
# config that moves its data (a test, a second checkout) never reads another copy's cache.
DEFAULT_DIR = "{data}/frame_cache"


# ------------------------------------------------------------------------------------------------ names
def decoder_id() -> str:
    """The decoder that produced (or would produce) the cached frames; part of every entry's name."""
    libavcodec = ".".join(str(v) for v in av.library_versions["libavcodec"])
    return f"pyav {av.__version__}, libavcodec {libavcodec}"


def entry_name(source_sha256: str, decoder: str) -> str:
    """Content-addressed entry name: the same video bytes decoded by the same decoder give the same frames."""
    return hashlib.sha256(f"{FORMAT_VERSION}\n{decoder}\n{source_sha256}".encode()).hexdigest()[:32]


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
def _npy_bytes(frames: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(frames), allow_pickle=False)
    return buf.getvalue()


def _verified_sidecar(cache_dir: Path, name: str) -> dict[str, Any] | None:
    """The sidecar of a finished entry whose .npy still hashes to what the sidecar says, else None."""
    npy, sidecar = cache_dir / f"{name}.npy", cache_dir / f"{name}.json"
    meta = read_json_if_valid(sidecar) if npy.is_file() else None
    return meta if isinstance(meta, dict) and meta.get("entry_sha256") == file_sha256(npy) else None


def _write_entry(source: Path, cache_dir: Path, name: str, source_sha256: str, decoder: str) -> dict[str, Any]:
    frames = read_video(source).numpy()
    data = _npy_bytes(frames)
    with atomic_path(cache_dir / f"{name}.npy") as tmp:
        tmp.write_bytes(data)
    meta = {"entry": f"{name}.npy", "frames": int(frames.shape[0]), "shape": list(frames.shape),
            "source_sha256": source_sha256, "entry_sha256": hashlib.sha256(data).hexdigest(),
            "decoder": decoder, "format": FORMAT_VERSION}
    write_json(cache_dir / f"{name}.json", meta)  # after the .npy: a sidecar means the entry is complete
    return meta


def cache_entry(source: Path, cache_dir: Path, decoder: str) -> tuple[dict[str, Any], bool]:
    """Index record for one video, decoding it only when no verified entry exists; (record, decoded?)."""
    if not source.is_file():
        raise DataError(f"{source}: video file not found")
    stat = source.stat()
    source_sha256 = file_sha256(source)
    name = entry_name(source_sha256, decoder)
    meta = _verified_sidecar(cache_dir, name)
    decoded = meta is None
    if decoded:
        meta = _write_entry(source, cache_dir, name, source_sha256, decoder)
    return {**meta, "source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}, decoded


def _entry_task(task: tuple[str, str, str]) -> tuple[str, dict[str, Any], bool]:
    source, cache_dir, decoder = task
    record, decoded = cache_entry(Path(source), Path(cache_dir), decoder)
    return source, record, decoded


def remove_stale_temps(cache_dir: Path) -> int:
    """Delete temporary files a killed build left (atomic_path names them `.<target>.<random><suffix>`)."""
    stale = [p for p in cache_dir.glob(".*") if p.is_file() and p.suffix in (".npy", ".json")]
    for p in stale:
        p.unlink()
    return len(stale)


def _results(tasks: list[tuple[str, str, str]], workers: int) -> Iterable[tuple[str, dict, bool]]:
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_entry_task, tasks)
        return
    # decoding is CPU-bound: processes, as the generator uses (fork where available)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(processes=min(int(workers), len(tasks))) as pool:
        yield from pool.imap_unordered(_entry_task, tasks, chunksize=4)


def _run_tasks(tasks: list[tuple[str, str, str]], workers: int, progress: bool) -> list[tuple[str, dict, bool]]:
    return list(tqdm(_results(tasks, workers), total=len(tasks), desc="frame cache", unit="video", leave=False,
                     disable=not progress))


def build_cache(records_or_paths: Iterable[Any], cache_dir: str | os.PathLike, progress: bool = True,
                workers: int = 1, prune: bool = False) -> dict[str, Any]:
    """Decode every video once into `cache_dir` and write its index; resumes a killed build.

    `records_or_paths`: VideoRecords or video paths (a video listed twice is cached once; a record's
    start/end frames do not matter: the whole video is cached and ClipDataset slices it).
    `prune=True` deletes entries the new index does not reference (old versions of changed videos);
    leave it off when several builds share the folder.
    Returns a summary: videos, entries, decoded, reused, stale_temps_removed, pruned, bytes, index.
    """
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temps(folder)
    decoder = decoder_id()
    sources = source_paths(records_or_paths)
    tasks = [(str(p), str(folder), decoder) for p in sources]
    results = _run_tasks(tasks, workers, progress)
    videos = {source_key(src, folder): record for src, record, _ in results}
    index = {"format": FORMAT_VERSION, "decoder": decoder, "videos": dict(sorted(videos.items()))}
    write_json(folder / INDEX_NAME, index)  # last: its presence means every listed entry is complete
    entries = {r["entry"] for r in videos.values()}
    pruned = prune_unreferenced(folder, entries) if prune else 0
    return {"index": str(folder / INDEX_NAME), "videos": len(videos), "entries": len(entries),
            "decoded": sum(d for _, _, d in results), "reused": sum(not d for _, _, d in results),
            "stale_temps_removed": stale, "pruned": pruned,
            "bytes": sum((folder / e).stat().st_size for e in entries)}


def prune_unreferenced(folder: Path, entries: set[str]) -> int:
    """Delete .npy entries (and sidecars) not in `entries`; returns how many entries went."""
    gone = [p for p in folder.glob("*.npy") if p.name not in entries]
    for p in gone:
        p.unlink()
        p.with_suffix(".json").unlink(missing_ok=True)
    return len(gone)


# ------------------------------------------------------------------------------------------------ read
def read_index(cache_dir: str | os.PathLike) -> dict[str, Any]:
    """The cache's index, checked for format and decoder; DataError naming the index otherwise."""
    path = Path(cache_dir) / INDEX_NAME
    if not path.is_file():
        raise DataError(f"{path}: frame cache index not found (build it with `scenebias frame-cache`)")
    index = read_json(path)
    if not isinstance(index, dict) or index.get("format") != FORMAT_VERSION or not isinstance(
            index.get("videos"), dict):
        raise DataError(f"{path}: not a frame cache index of format {FORMAT_VERSION}; rebuild the cache")
    current = decoder_id()
    if index.get("decoder") != current:
        raise DataError(f"{path}: frames were decoded with {index.get('decoder')!r} but this environment decodes "
                        f"with {current!r}; rebuild the cache (entries are per decoder)")
    return index


def _npy_size(entry: Path) -> int | None:
    """The size an .npy file must have by its own header; None when the header itself is unreadable."""
    try:
        with open(entry, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(fh)
            return fh.tell() + int(np.prod(shape)) * dtype.itemsize
    except (OSError, ValueError, EOFError):
        return None


def entry_problem(entry: Path, sha256: str) -> str | None:
    """What is wrong with a cache entry ("entry missing", "entry truncated ...", "entry corrupted ..."), or
    None when its bytes hash to `sha256`."""
    if not entry.is_file():
        return "entry missing"
    found = file_sha256(entry)
    if found == sha256:
        return None
    # told apart because a short file points at a killed copy or a full disk, a changed one at the storage
    size, needed = entry.stat().st_size, _npy_size(entry)
    if needed is None:
        return f"entry truncated or corrupted ({size} bytes, no readable .npy header)"
    if size < needed:
        return f"entry truncated ({size} bytes, its .npy header says {needed})"
    return f"entry corrupted, sha256 {found[:16]}... but the index has {sha256[:16]}..."


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
            problems[rec["entry"]] = entry_problem(entry, rec["entry_sha256"])
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
    """Frames of cached videos by source path: `frames(path)` is read_video(path), without decoding.

    `mmap=False` reads each entry into memory (one read). `mmap=True` memory-maps it copy-on-write: only the
    frames a clip touches are read, and DataLoader workers share the page cache; but on Python < 3.13 each
    live map holds a file descriptor, so keeping thousands of videos mapped (ClipDataset's cache=True) can
    exceed `ulimit -n`.

    Each entry is hashed the first time this process reads it (see _verify_entry). `rebuild` is the command
    errors give for rebuilding this folder (default: rebuild_command(cache_dir)).
    """

    def __init__(self, cache_dir: str | os.PathLike, mmap: bool = False, rebuild: str | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.videos: dict[str, dict[str, Any]] = read_index(self.cache_dir)["videos"]
        self.mmap = bool(mmap)
        self.rebuild = rebuild or rebuild_command(self.cache_dir)
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
        problem = entry_problem(entry, rec["entry_sha256"])
        if problem:
            raise DataError(f"{entry}: {problem}; it is the frame cache entry for video {path}. Rebuild the "
                            f"cache (it re-decodes only damaged entries): {self.rebuild}")
        if seen is not None:  # None: the file appeared after the stat; hash it again next time
            _VERIFIED.add(seen)

    def frames(self, path: str | os.PathLike) -> "torch.Tensor":
        """(T, H, W, 3) uint8 tensor, equal to read_video(path)."""
        import torch

        rec = self.record(path)
        entry = self.cache_dir / rec["entry"]
        self._verify_entry(entry, rec, path)
        try:
            # "c" (copy-on-write) gives a writable array, so torch.from_numpy neither copies nor warns
            arr = np.load(entry, mmap_mode="c" if self.mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # changed between the check and the load
            raise DataError(f"{entry}: unreadable frame cache entry for {path} ({exc}); "
                            f"rebuild the cache: {self.rebuild}") from exc
        if arr.dtype != np.uint8 or list(arr.shape) != list(rec["shape"]):
            raise DataError(f"{entry}: frame cache entry for {path} has {arr.dtype} {list(arr.shape)}, "
                            f"the index says uint8 {rec['shape']}; rebuild the cache: {self.rebuild}")
        return torch.from_numpy(arr)


# (path, entry_sha256, size, mtime_ns, inode) of entries this process has hashed; DataLoader workers forked
# after a read inherit it, which is right: they see the same unchanged files.
_VERIFIED: set[tuple[str, str, int, int, int]] = set()


# ------------------------------------------------------------------------------------------------ config
def flavour_cache_dir(cfg: Mapping[str, Any], flavour: str) -> Path:
    """<paths.frame_cache>/<flavour>; paths.frame_cache defaults to DEFAULT_DIR ({preset}, {data} filled in)."""
    return Path(cache_root(cfg)) / flavour


def cache_root(cfg: Mapping[str, Any]) -> str:
    data = cfg["paths"].get("data", "data/generated/{preset}").format(preset=cfg["preset"])
    return cfg["paths"].get("frame_cache", DEFAULT_DIR).format(preset=cfg["preset"], data=data)


def frame_cache_for(cfg: Mapping[str, Any], flavour: str) -> CachedFrames | None:
    """The flavour's CachedFrames when data.frame_cache is true, else None (ClipDataset then decodes).

    A cache that was never built (a single `scenebias pretrain` outside the workflow, say) is not an error: the
    frames are the same either way, so the job decodes and says so once. A cache that exists but is stale or
    corrupt is an error (CachedFrames and its reads name the entry)."""
    if not cfg["data"].get("frame_cache", False):
        return None
    folder = flavour_cache_dir(cfg, flavour)
    if not (folder / INDEX_NAME).is_file():
        if flavour not in _WARNED:
            _WARNED.add(flavour)
            print(f"scenebias: no frame cache at {folder} (data.frame_cache is on): decoding the videos instead; "
                  f"build it with `scenebias frame-cache --flavour {flavour}` or the workflow", file=sys.stderr)
        return None
    return CachedFrames(folder, rebuild=rebuild_command(folder, flavour, cfg["preset"]))


_WARNED: set[str] = set()
