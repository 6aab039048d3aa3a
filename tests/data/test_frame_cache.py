"""On-disk frame cache: exact frames, resume after a kill, verification, changed sources, ClipDataset parity."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from scenebias.data import frame_cache as fc
from scenebias.data.datasets import ClipDataset
from scenebias.data.formats import VideoRecord
from scenebias.data.manifest import file_sha256
from scenebias.data.video import read_video, write_video
from scenebias.errors import ConfigError, DataError
from scenebias.io import read_json, write_json


def _noise_video(path: Path, seed: int, frames: int = 12, size: int = 16) -> Path:
    """Random frames: lossy H.264 then decodes to values a wrong decoder or a wrong entry would not match."""
    rng = np.random.default_rng(seed)
    return write_video(path, rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8), fps=25)


@pytest.fixture
def videos(tmp_path) -> list[Path]:
    src = tmp_path / "videos"
    return [_noise_video(src / f"v{i}.avi", seed=i, frames=10 + 3 * i) for i in range(3)]


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.npy"))


# ============================================================================================ exact frames
@pytest.mark.parametrize("mmap", [False, True])
def test_cache_equals_decoded_frames(videos, tmp_path, mmap):
    cache = tmp_path / "cache"
    summary = fc.build_cache(videos, cache, progress=False)
    assert summary["videos"] == 3 and summary["decoded"] == 3 and summary["reused"] == 0
    frames = fc.CachedFrames(cache, mmap=mmap)
    for v in videos:
        got, want = frames.frames(v), read_video(v)
        assert got.dtype == torch.uint8 and got.shape == want.shape and torch.equal(got, want)
    index = read_json(cache / "index.json")
    rec = index["videos"][fc.source_key(videos[1], cache)]
    assert rec["frames"] == 13 and rec["shape"] == [13, 16, 16, 3]
    assert rec["source_sha256"] == file_sha256(videos[1])
    assert rec["entry_sha256"] == file_sha256(cache / rec["entry"])
    assert fc.verify_cache(cache, sources=True) == 3


def test_same_content_shares_an_entry_and_paths_resolve_from_any_cwd(videos, tmp_path, monkeypatch):
    copy = tmp_path / "videos" / "copy.avi"
    copy.write_bytes(videos[0].read_bytes())
    cache = tmp_path / "cache"
    summary = fc.build_cache([*videos, copy, videos[0]], cache, progress=False)
    assert summary["videos"] == 4 and summary["entries"] == 3 and len(_entries(cache)) == 3
    monkeypatch.chdir(tmp_path / "videos")  # relative paths from another working directory find the same key
    assert torch.equal(fc.CachedFrames(tmp_path / "cache").frames("copy.avi"), read_video(videos[0]))


def test_records_and_parallel_workers_give_the_same_index(videos, tmp_path):
    records = [VideoRecord(v, 0, v.stem, start_frame=2, end_frame=5) for v in videos]
    fc.build_cache(videos, tmp_path / "a", progress=False, workers=1)
    fc.build_cache(records, tmp_path / "b", progress=False, workers=2)

    def content(index):  # mtimes are the same files'; only entry names and hashes matter here
        return {Path(k).name: (r["entry"], r["entry_sha256"]) for k, r in index["videos"].items()}

    assert content(read_json(tmp_path / "a" / "index.json")) == content(read_json(tmp_path / "b" / "index.json"))


# ============================================================================================ resume
def test_resume_after_kill_decodes_only_unfinished_entries(videos, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    fc.build_cache(videos, cache, progress=False)
    before = read_json(cache / "index.json")
    # A killed build: no index yet, a stale temporary entry, one entry never written, one half-written.
    (cache / "index.json").unlink()
    stale = cache / ".0123abcd.npy.k1ll3d.npy"
    stale.write_bytes(b"partial")
    rec = [before["videos"][fc.source_key(v, cache)] for v in videos]
    (cache / rec[0]["entry"]).unlink()
    corrupt = cache / rec[1]["entry"]
    corrupt.write_bytes(corrupt.read_bytes()[:-7])

    decoded: list[Path] = []
    real_read = fc.read_video
    monkeypatch.setattr(fc, "read_video", lambda p, *a: decoded.append(Path(p)) or real_read(p, *a))
    summary = fc.build_cache(videos, cache, progress=False)
    assert sorted(decoded) == sorted(videos[:2])  # the finished, verified third entry was not decoded again
    assert summary["decoded"] == 2 and summary["reused"] == 1 and summary["stale_temps_removed"] == 1
    assert not stale.exists()
    assert read_json(cache / "index.json") == before
    assert fc.verify_cache(cache) == 3


def test_prune_removes_entries_of_videos_no_longer_listed(videos, tmp_path):
    cache = tmp_path / "cache"
    fc.build_cache(videos, cache, progress=False)
    summary = fc.build_cache(videos[:2], cache, progress=False, prune=True)
    assert summary["pruned"] == 1 and len(_entries(cache)) == 2 and len(list(cache.glob("*.json"))) == 3


# ============================================================================================ verification
def test_verify_names_the_corrupted_entry(videos, tmp_path):
    cache = tmp_path / "cache"
    fc.build_cache(videos, cache, progress=False)
    rec = read_json(cache / "index.json")["videos"][fc.source_key(videos[2], cache)]
    entry = cache / rec["entry"]
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF  # one pixel of the last frame: same size, same header, wrong content
    entry.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"{rec['entry']}: entry corrupted.*v2\.avi"):
        fc.verify_cache(cache)
    entry.write_bytes(bytes(data[:-100]))  # truncated: reading names the entry instead of returning garbage
    for mmap in (False, True):
        with pytest.raises(DataError, match=rf"{rec['entry']}: .*frame cache entry for .*v2\.avi"):
            fc.CachedFrames(cache, mmap=mmap).frames(videos[2])
    entry.unlink()
    with pytest.raises(DataError, match=rf"{rec['entry']}: entry missing"):
        fc.verify_cache(cache)


def _damage(entry: Path, how: str) -> None:
    data = bytearray(entry.read_bytes())
    if how == "flip":  # one byte in the middle of the frame data: same size and header, wrong pixels
        data[len(data) // 2 + 64] ^= 0x01
        entry.write_bytes(bytes(data))
    elif how == "truncate":
        entry.write_bytes(bytes(data[:-100]))
    else:
        entry.unlink()


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("how,problem", [("flip", "entry corrupted"), ("truncate", "entry truncated"),
                                         ("delete", "entry missing")])
def test_reading_a_damaged_entry_names_it_its_video_and_the_rebuild(videos, tmp_path, how, problem, mmap):
    cache = tmp_path / "flav"
    fc.build_cache(videos, cache, progress=False)
    rec = read_json(cache / "index.json")["videos"][fc.source_key(videos[1], cache)]
    _damage(cache / rec["entry"], how)
    frames = fc.CachedFrames(cache, mmap=mmap)
    with pytest.raises(DataError) as err:
        frames.frames(videos[1])
    msg = str(err.value)
    assert msg.startswith(f"{cache / rec['entry']}: {problem}")
    assert f"frame cache entry for video {videos[1]}" in msg
    assert f"scenebias frame-cache --preset PRESET --flavour flav --out {cache}" in msg
    for v in (videos[0], videos[2]):  # the intact entries still read, identical to decoding
        assert torch.equal(frames.frames(v), read_video(v))


def test_entries_are_hashed_once_per_process_and_again_when_rewritten(videos, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    fc.build_cache(videos, cache, progress=False)
    hashed: list[Path] = []
    real_sha = fc.file_sha256
    monkeypatch.setattr(fc, "file_sha256", lambda p: hashed.append(Path(p)) or real_sha(p))
    for _ in range(3):  # a new CachedFrames per job step (frame_cache_for) does not hash again either
        frames = fc.CachedFrames(cache)
        assert all(torch.equal(frames.frames(v), read_video(v)) for v in videos)
    assert len(hashed) == 3
    rec = read_json(cache / "index.json")["videos"][fc.source_key(videos[0], cache)]
    entry = cache / rec["entry"]
    st = entry.stat()
    _damage(entry, "flip")  # after a verified read: the new mtime makes the next read hash it again
    os.utime(entry, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(DataError, match=r"entry corrupted.*v0\.avi"):
        frames.frames(videos[0])


def test_the_rebuild_command_of_a_flavour_repairs_only_the_damaged_entry(tiny_dataset, tmp_path, capsys):
    import json
    import shlex

    from scenebias.cli import main
    from scenebias.plan import load_config
    from scenebias.resolve import split

    cfg = load_config("smoke", [])
    cfg["paths"].update(data=str(tiny_dataset), frame_cache=str(tmp_path / "fc"))
    cfg["data"]["frame_cache"] = True
    cfg_json = ["--config-json", json.dumps(cfg), "--workers", "1", "--quiet"]
    assert main(["frame-cache", "--flavour", "ucf101", *cfg_json]) == 0
    video = split(cfg, "ucf101", "test").records[0].path
    folder = fc.flavour_cache_dir(cfg, "ucf101")
    entry = folder / read_json(folder / "index.json")["videos"][fc.source_key(video, folder)]["entry"]
    _damage(entry, "truncate")
    with pytest.raises(DataError, match=r"entry truncated") as err:
        fc.frame_cache_for(cfg, "ucf101").frames(video)
    command = f"scenebias frame-cache --preset smoke --flavour ucf101 --out {folder}"
    assert str(err.value).endswith(command)
    # the command as given (its --preset standing for this test's config) decodes the one damaged entry
    capsys.readouterr()
    assert main([*shlex.split(command)[1:], *cfg_json]) == 0
    assert "decoded 1," in capsys.readouterr().out
    assert torch.equal(fc.frame_cache_for(cfg, "ucf101").frames(video), read_video(video))


def test_missing_index_and_other_decoder_are_errors(videos, tmp_path):
    with pytest.raises(DataError, match="index.json: frame cache index not found"):
        fc.CachedFrames(tmp_path / "nowhere")
    cache = tmp_path / "cache"
    fc.build_cache(videos, cache, progress=False)
    index = read_json(cache / "index.json")
    write_json(cache / "index.json", {**index, "decoder": "pyav 0.0"})
    with pytest.raises(DataError, match="decoded with 'pyav 0.0'"):
        fc.CachedFrames(cache)


# ============================================================================================ sources
def test_changed_source_is_an_error_touched_source_is_not(videos, tmp_path):
    cache = tmp_path / "cache"
    fc.build_cache(videos, cache, progress=False)
    frames = fc.CachedFrames(cache)
    st = videos[0].stat()
    os.utime(videos[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new mtime: still valid
    assert torch.equal(frames.frames(videos[0]), read_video(videos[0]))
    _noise_video(videos[1], seed=99, frames=13)  # new content, same frame count
    with pytest.raises(DataError, match=r"v1\.avi: video changed since it was cached"):
        frames.frames(videos[1])
    with pytest.raises(DataError, match=r"v1\.avi: video changed"):
        fc.verify_cache(cache, sources=True)
    videos[2].unlink()
    with pytest.raises(DataError, match=r"v2\.avi: video file not found"):
        frames.frames(videos[2])
    with pytest.raises(DataError, match=r"other\.avi: video is not in the frame cache"):
        frames.frames(tmp_path / "videos" / "other.avi")


# ============================================================================================ ClipDataset
@pytest.mark.parametrize("mode,static", [("pair", False), ("triple", False), ("test", False), ("pair", True)])
def test_clip_dataset_items_identical_with_cache(videos, tmp_path, mode, static):
    records = [VideoRecord(v, i, v.stem, start_frame=i, end_frame=None if i else 8) for i, v in enumerate(videos)]
    cache = tmp_path / "cache"
    fc.build_cache(records, cache, progress=False)
    kw = dict(clip_len=4, stride=2, mode=mode, num_test_clips=3, crop_size=8, static=static, seed=3, cache=False)
    plain = ClipDataset(records, **kw)
    cached = ClipDataset(records, frame_cache=fc.CachedFrames(cache, mmap=True), **kw)
    for i in range(len(records)):
        a, b = plain[i], cached[i]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])), (mode, i, k)


def test_cli_builds_a_flavour_cache(tiny_dataset, tmp_path, capsys):
    import json

    from scenebias.cli import main
    from scenebias.plan import load_config

    cfg = load_config("smoke", [])
    cfg["paths"]["data"] = str(tiny_dataset)
    out = tmp_path / "ucf"
    assert main(["frame-cache", "--config-json", json.dumps(cfg), "--flavour", "ucf101", "--out", str(out),
                 "--workers", "1", "--quiet"]) == 0
    assert "decoded" in capsys.readouterr().out
    from scenebias.resolve import split

    paths = {r.path for s in ("train", "test") for r in split(cfg, "ucf101", s).records}
    frames = fc.CachedFrames(out)
    assert len(frames) == len(paths) and all(p in frames for p in paths)
    assert fc.verify_cache(out) == len(paths)


def test_config_helpers_follow_the_knob_and_path(videos, tmp_path):
    cfg = {"preset": "p", "paths": {"frame_cache": str(tmp_path / "fc" / "{preset}")}, "data": {},
           "clip": {"crop_size": 32}}
    assert fc.flavour_cache_dir(cfg, "ucf101") == tmp_path / "fc" / "p" / "ucf101"
    assert fc.frame_cache_for(cfg, "ucf101") is None  # knob off (absent): ClipDataset decodes
    fc.build_cache(videos, tmp_path / "fc" / "p" / "ucf101", progress=False, spec=fc.frame_spec(cfg))
    frames = fc.frame_cache_for({**cfg, "data": {"frame_cache": True}}, "ucf101")
    assert isinstance(frames, fc.CachedFrames) and len(frames) == 3
    # by default the cache sits beside the generated set, not inside it (`generate` replaces that folder)
    assert fc.flavour_cache_dir({"preset": "p", "paths": {}}, "x") == Path("data/frame_cache/p/x")
    assert fc.flavour_cache_dir({"preset": "p", "paths": {"data": "/d/{preset}"}}, "x") == Path("data/frame_cache/p/x")
    beside = {"preset": "p", "paths": {"data": "/d/{preset}", "frame_cache": "{data}-frames"}}
    assert fc.flavour_cache_dir(beside, "x") == Path("/d/p-frames/x")
    for inside in ("{data}/frame_cache", "/d/p", "/d/{preset}/../p/cache"):
        with pytest.raises(ConfigError, match=r"paths.frame_cache: .* lies inside paths.data \(/d/p\)"):
            fc.flavour_cache_dir({"preset": "p", "paths": {"data": "/d/{preset}", "frame_cache": inside}}, "x")
