"""Real dataset roots (config `data.real`) and their manifests.

A real root is a folder in an official layout (`scenebias.data.formats.layout_of`) named in the config as
`data.real.<flavour>: {root, format, split, video_dir, split_dir, label_map}`; `RealRoot.read` reads one
subset of it with the `data.on_missing` policy (error | skip).

Its manifest records what the results were computed from: every video the split files list for the
configured split (train and test) with its size and sha256 (streamed in chunks; `checksum="size"` records
sizes only, which is fast but misses a changed byte that keeps the size), the split files themselves
(always with sha256: they are small and define the benchmark), the listed videos that are not on disk
(`missing`, with the split file, line and the line as written) and, when asked, the videos whose first frame
does not decode (`undecodable`; the PyAV probe is off by default because opening every video is slow on real
data: about 13k files for UCF101, 240k for Kinetics-400). `undecodable` is null when the probe was off.

The manifest's `hash` is a sha256 over its content with paths relative to the video / split folders, so it
identifies the data, not where it lies (`where`, not hashed, records the absolute folders). It is written
atomically: a failure (an unreadable file, a bad layout) leaves no manifest, and an older one untouched.
`manifest_hash(path)` checks the hash against the content and returns it for provenance.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import av
from tqdm import tqdm

from ..errors import ConfigError, DataError
from ..io import read_json, write_json
from ..provenance import canonical_sha256
from .formats import SUBSETS, SplitIndex, check_layout, default_dirs, format_names, layout_of, read_split

MANIFEST_FORMAT = "scenebias-dataset-manifest/1"
COMBINED_FORMAT = "scenebias-dataset-manifests/1"
CHECKSUMS = ("sha256", "size")
_SPEC_KEYS = ("root", "format", "split", "video_dir", "split_dir", "label_map")


def _opt_path(value: Any) -> Path | None:
    return None if value is None else Path(value).expanduser()


@dataclass(frozen=True)
class RealRoot:
    """One `data.real.<name>` entry: a dataset root in an official layout."""

    name: str
    format: str
    root: Path
    split: int = 1
    video_dir: Path | None = None
    split_dir: Path | None = None
    label_map: Path | None = None

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any]) -> "RealRoot":
        where = f"data.real.{name}"
        unknown = sorted(set(spec) - set(_SPEC_KEYS))
        if unknown:  # the schema rejects these too; repeated for configs that skipped validation
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected keys: {', '.join(_SPEC_KEYS)}")
        if "root" not in spec or "format" not in spec:
            raise ConfigError(f"{where}: needs `root` and `format` ({' | '.join(format_names())})")
        if spec["format"] not in format_names():
            raise ConfigError(f"{where}.format: {spec['format']!r} is not one of {', '.join(format_names())}")
        if spec.get("label_map") is not None and spec["format"] != "kinetics400":
            raise ConfigError(f"{where}.label_map: only the kinetics400 format takes a label map")
        return cls(name=name, format=spec["format"], root=Path(spec["root"]).expanduser(),
                   split=spec.get("split", 1), video_dir=_opt_path(spec.get("video_dir")),
                   split_dir=_opt_path(spec.get("split_dir")), label_map=_opt_path(spec.get("label_map")))

    def dirs(self, subset: str) -> tuple[Path, Path | None]:
        """(video folder, split-file folder) read for `subset`."""
        return default_dirs(self.format, self.root, subset, self.video_dir, self.split_dir)

    def read(self, subset: str, on_missing: str = "error") -> SplitIndex:
        """One subset, files checked; errors name the config key and describe the official layout."""
        try:
            check_layout(self.format, self.root, subset, self.video_dir, self.split_dir, self.label_map)
            return read_split(self.format, self.root, subset, self.split, video_dir=self.video_dir,
                              split_dir=self.split_dir, label_map=self.label_map, on_missing=on_missing)
        except (DataError, ConfigError) as exc:
            msg = str(exc)
            if isinstance(exc, DataError) and layout_of(self.format) not in msg:
                msg += f". {layout_of(self.format)}"
            raise type(exc)(f"data.real.{self.name}: {msg}") from None


def real_roots(cfg: Mapping[str, Any]) -> dict[str, RealRoot]:
    """The configured real roots, by flavour name (empty when none)."""
    return {name: RealRoot.from_config(name, spec) for name, spec in (cfg["data"].get("real") or {}).items()}


def manifest_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """`data.manifest` with its defaults: dir (formatted with the preset), checksum, decode_probe."""
    m = cfg["data"].get("manifest") or {}
    return {"dir": Path(m.get("dir", "data/manifests/{preset}").format(preset=cfg.get("preset", ""))),
            "checksum": m.get("checksum", "sha256"), "decode_probe": bool(m.get("decode_probe", False))}


# ------------------------------------------------------------------------------------------- hashing
def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, streamed in chunks (hashlib.file_digest: constant memory for any size)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def content_hash(manifest: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of everything but `hash` and `where` (locations are not content)."""
    return canonical_sha256({k: v for k, v in manifest.items() if k not in ("hash", "where")})


def probe_first_frame(path: str | os.PathLike) -> str | None:
    """None when the first video frame decodes with PyAV, else why not (the file is otherwise unread)."""
    p = Path(path)
    if p.stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        with av.open(str(p), mode="r") as container:
            if not container.streams.video:
                return "no video stream"
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for _ in container.decode(stream):
                return None
            return "zero decodable frames"
    except Exception as exc:  # noqa: BLE001 - av.error.*, or anything the demuxer throws
        return f"{type(exc).__name__}: {exc}"


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


# ------------------------------------------------------------------------------------------- manifest
def build_manifest(real: RealRoot, out_path: str | os.PathLike, checksum: str = "sha256",
                   decode_probe: bool = False, splits: Mapping[str, SplitIndex] | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Write the manifest of one real root to `out_path` (atomically) and return it.

    `splits` (subset -> SplitIndex read with on_missing="skip") saves reading the split files again; by
    default both subsets are read here. Missing videos are recorded, never an error; an unreadable video is
    a DataError and nothing is written.
    """
    if checksum not in CHECKSUMS:
        raise ConfigError(f"checksum: {checksum!r} is not one of {list(CHECKSUMS)}")
    if splits is None:
        splits = {subset: real.read(subset, on_missing="skip") for subset in SUBSETS}
    files: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    undecodable: list[dict[str, Any]] | None = [] if decode_probe else None
    split_files: dict[str, Path] = {}
    subsets: dict[str, dict[str, int]] = {}
    digests: dict[tuple[int, int, int, int], str] = {}  # links to one file are hashed once
    for subset, index in splits.items():
        video_dir, _ = real.dirs(subset)
        for f in index.split_files:
            split_files[f.name] = f
        total = 0
        for rec in tqdm(index.records, desc=f"manifest {real.name} {subset}", unit="file", leave=False,
                        disable=not progress):
            try:
                st = os.stat(rec.path)
                entry: dict[str, Any] = {"subset": subset, "path": _rel(rec.path, video_dir), "bytes": st.st_size}
                if checksum == "sha256":
                    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                    if key not in digests:
                        digests[key] = file_sha256(rec.path)
                    entry["sha256"] = digests[key]
            except OSError as exc:
                raise DataError(f"{rec.path}: cannot read video for the manifest of data.real.{real.name} "
                                f"({exc}); no manifest written") from exc
            total += st.st_size
            files.append(entry)
            if undecodable is not None:
                why = probe_first_frame(rec.path)
                if why is not None:
                    undecodable.append({"subset": subset, "path": entry["path"], "error": why})
        for s in index.skipped:
            missing.append({"subset": subset, "path": _rel(s.path, video_dir), "split_file": s.split_file.name,
                            "line": s.line, "entry": s.entry})
        subsets[subset] = {"listed": index.listed, "files": len(index.records), "missing": len(index.skipped),
                           "bytes": total}
    try:
        split_entries = [{"name": name, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
                         for name, p in sorted(split_files.items())]
    except OSError as exc:
        raise DataError(f"cannot read a split file of data.real.{real.name} ({exc}); no manifest written") from exc
    files.sort(key=lambda e: (e["subset"], e["path"]))
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "dataset": {"format": real.format, "split": real.split},
        "checksum": checksum,
        "decode_probe": decode_probe,
        "split_files": split_entries,
        "subsets": subsets,
        "counts": {"files": len(files), "bytes": sum(e["bytes"] for e in files), "missing": len(missing),
                   "undecodable": None if undecodable is None else len(undecodable)},
        "files": files,
        "missing": missing,
        "undecodable": undecodable,
        "where": {"name": real.name, "root": str(real.root),  # not hashed: locations are not content
                  "video_dirs": {s: str(real.dirs(s)[0]) for s in splits},
                  "split_files": sorted(str(p) for p in split_files.values())},
    }
    manifest["hash"] = content_hash(manifest)
    write_json(out_path, manifest)
    return manifest


def manifest_hash(path: str | os.PathLike) -> str:
    """The hash of a real-root or combined manifest, checked against its content (an edited file fails)."""
    manifest = read_json(path)
    if not isinstance(manifest, dict) or "hash" not in manifest:
        raise DataError(f"{path}: not a dataset manifest (no 'hash')")
    if manifest.get("format") in (MANIFEST_FORMAT, COMBINED_FORMAT) and content_hash(manifest) != manifest["hash"]:
        raise DataError(f"{path}: manifest content does not match its hash (edited or corrupt); rebuild it")
    return manifest["hash"]


def combine_manifests(manifests: Mapping[str, str | os.PathLike], out_path: str | os.PathLike) -> dict[str, Any]:
    """One file whose hash covers every dataset a config reads: {flavour: that flavour's manifest hash}.

    `manifests` maps flavour -> its manifest (a real root's, or the generated set's manifest.json, which
    several flavours share). A paper table's provenance records its hash as `dataset_manifest_hash` (a model's
    and an evaluation's record their own flavour's manifest instead)."""
    datasets = {name: {"hash": manifest_hash(p), "manifest": str(p)} for name, p in sorted(manifests.items())}
    combined = {"format": COMBINED_FORMAT, "datasets": {n: {"hash": d["hash"]} for n, d in datasets.items()},
                "where": {n: d["manifest"] for n, d in datasets.items()}}
    combined["hash"] = content_hash(combined)
    write_json(out_path, combined)
    return combined
