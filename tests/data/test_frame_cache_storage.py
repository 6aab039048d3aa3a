"""Frame cache at the loader's size: frames resized once (never upscaled), stored raw or as per-frame JPEG, the
frame spec in entry names and the index, the decoding loader seeing the same frames, and a bounded in-memory
cache in ClipDataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from scenebias.data import frame_cache as fc
from scenebias.data.datasets import ClipDataset, MemoryCache
from scenebias.data.formats import VideoRecord
from scenebias.data.video import read_video, write_video
from scenebias.errors import ConfigError, DataError
from scenebias.io import read_json


def _smooth_video(path: Path, seed: int, frames: int = 10, height: int = 48, width: int = 64) -> Path:
    """Moving blurred noise: decodes to detail a resize or JPEG visibly changes, unlike a flat picture."""
    rng = np.random.default_rng(seed)
    base = torch.from_numpy(rng.integers(0, 256, (3, height // 4, width // 4), dtype=np.uint8))
    big = F.resize(base, [height * 2, width * 2], antialias=True).permute(1, 2, 0).numpy()
    clip = np.stack([np.roll(big, 3 * t, axis=1)[:height, :width] for t in range(frames)])
    return write_video(path, clip, fps=25)


@pytest.fixture
def videos(tmp_path) -> list[Path]:
    return [_smooth_video(tmp_path / "videos" / f"v{i}.avi", seed=i, frames=9 + 2 * i) for i in range(3)]


SMALL = fc.FrameSpec(short_side=24)
JPEG = fc.FrameSpec(short_side=24, storage="jpeg", jpeg_quality=85)


# ============================================================================================ the spec
def test_frame_spec_from_config():
    def spec(data=None, **clip):
        return fc.frame_spec({"data": {"frames": data} if data is not None else {}, "clip": clip})

    assert spec(crop_size=112) == fc.FrameSpec(128)  # the papers' 128 px for 112-px crops
    assert spec(crop_size=112, crop_size_by_backbone={"i3d": 224}).short_side == 256  # the largest crop decides
    assert spec(crop_size=32).short_side == 37
    assert spec({"short_side": None}, crop_size=112).short_side is None
    assert spec({"short_side": 160, "storage": "jpeg"}, crop_size=112) == fc.FrameSpec(160, "jpeg", 90)
    with pytest.raises(ConfigError, match=r"data.frames.storage: 'png' is not one of"):
        spec({"storage": "png"}, crop_size=112)
    with pytest.raises(ConfigError, match=r"data.frames.jpeg_quality: 101"):
        spec({"storage": "jpeg", "jpeg_quality": 101}, crop_size=112)
    assert fc.FrameSpec(128, "raw", 50).key == fc.FrameSpec(128).key  # raw frames do not depend on the quality


def test_generated_presets_keep_their_frames_byte_identical(tiny_dataset, tmp_path):
    """The smoke and default presets resize nothing: their 32-px frames are below the 37-px short side."""
    from scenebias.plan import load_config

    for preset in ("smoke", "default"):
        assert fc.frame_spec(load_config(preset, [])) == fc.FrameSpec(37)
    videos = sorted((tiny_dataset / "ucf101").rglob("*.avi"))[:3]
    fc.build_cache(videos, tmp_path / "cache", progress=False, spec=fc.FrameSpec(37))
    frames = fc.CachedFrames(tmp_path / "cache", spec=fc.FrameSpec(37))
    for v in videos:
        decoded = read_video(v)
        assert fc.resize_short_side(decoded, 37) is decoded
        assert torch.equal(frames.frames(v), decoded)


# ============================================================================================ resizing
def test_cache_resizes_with_the_library_and_never_upscales(videos, tmp_path):
    cache = tmp_path / "cache"
    summary = fc.build_cache(videos, cache, progress=False, spec=SMALL)
    assert summary["frames"] == "short side 24, raw"
    frames = fc.CachedFrames(cache)
    for v in videos:
        want = F.resize(read_video(v).permute(0, 3, 1, 2), [24], antialias=True).permute(0, 2, 3, 1)
        got = frames.frames(v)
        assert got.shape[1:] == (24, 32, 3) and torch.equal(got, want)
    index = read_json(cache / "index.json")
    assert index["frames"] == {"short_side": 24, "storage": "raw", "jpeg_quality": 90}
    assert index["videos"][fc.source_key(videos[0], cache)]["shape"] == [9, 24, 32, 3]
    big = fc.FrameSpec(short_side=400)
    assert torch.equal(big.prepare(read_video(videos[0])), read_video(videos[0]))  # 48 px stays 48 px


def test_resizing_while_decoding_equals_resizing_after(videos, monkeypatch):
    """read_video(short_side=...) resizes every RESIZE_CHUNK frames (bounded memory) to the same frames."""
    from scenebias.data import video as video_module

    monkeypatch.setattr(video_module, "RESIZE_CHUNK", 4)  # 13 frames: chunks of 4, 4, 4 and 1
    whole = fc.resize_short_side(read_video(videos[2]), 24)
    assert whole.shape == (13, 24, 32, 3) and torch.equal(read_video(videos[2], short_side=24), whole)
    assert torch.equal(JPEG.load(videos[2]).decode(), JPEG.prepare(read_video(videos[2])).decode())


def test_a_new_short_side_gets_new_entries_and_a_stale_spec_is_an_error(videos, tmp_path):
    cache = tmp_path / "flav"
    fc.build_cache(videos, cache, progress=False, spec=SMALL)
    first = {p.name for p in cache.glob("*.npy")}
    other = fc.FrameSpec(short_side=16)
    with pytest.raises(DataError, match=r"holds frames at short side 24, raw, but the config asks for short side "
                                        r"16, raw .*scenebias frame-cache --preset PRESET --flavour flav"):
        fc.CachedFrames(cache, spec=other)
    summary = fc.build_cache(videos, cache, progress=False, spec=other, prune=True)
    assert summary["decoded"] == 3 and summary["pruned"] == 3  # new names: nothing of the 24-px build reused
    assert not first & {p.name for p in cache.glob("*.npy")}
    assert fc.CachedFrames(cache, spec=other).frames(videos[1]).shape[1:3] == (16, 21)


def test_a_cache_of_the_former_format_names_the_rebuild(videos, tmp_path):
    from scenebias.io import write_json

    cache = tmp_path / "ucf101"
    fc.build_cache(videos, cache, progress=False, spec=SMALL)
    index = read_json(cache / "index.json")
    write_json(cache / "index.json", {k: v for k, v in index.items() if k != "frames"} | {"format": 1})
    with pytest.raises(DataError, match=r"index.json: not a frame cache index of format 2; rebuild it: "
                                        r"scenebias frame-cache --preset PRESET --flavour ucf101"):
        fc.CachedFrames(cache)


# ============================================================================================ JPEG storage
def test_jpeg_entries_are_smaller_and_equal_to_the_decoding_loader(videos, tmp_path):
    fc.build_cache(videos, tmp_path / "raw", progress=False, spec=SMALL)
    fc.build_cache(videos, tmp_path / "jpeg", progress=False, spec=JPEG)
    raw_bytes = sum(p.stat().st_size for p in (tmp_path / "raw").glob("*.npy"))
    jpeg_bytes = sum(p.stat().st_size for p in (tmp_path / "jpeg").glob("*.jpgs"))
    assert not list((tmp_path / "jpeg").glob("*.npy")) and jpeg_bytes < raw_bytes / 2
    frames = fc.CachedFrames(tmp_path / "jpeg", spec=JPEG)
    for v in videos:
        resized = fc.FrameSpec(short_side=24).prepare(read_video(v))
        got = frames.frames(v)
        assert torch.equal(got, JPEG.prepare(read_video(v)).decode())  # what a loader without the cache sees
        assert 0 < (got.float() - resized.float()).abs().mean() < 12  # lossy (24-px frames, 4:2:0), but close
    assert fc.verify_cache(tmp_path / "jpeg", sources=True) == 3


def test_jpeg_frames_decode_only_what_is_indexed(videos, monkeypatch):
    import torchvision.io

    video = JPEG.prepare(read_video(videos[2]))
    full = video.decode()
    assert isinstance(video, fc.JpegFrames) and video.shape == full.shape and len(video) == 13
    decoded: list[int] = []
    real = torchvision.io.decode_jpeg
    monkeypatch.setattr(torchvision.io, "decode_jpeg", lambda imgs, **kw: decoded.append(len(imgs)) or real(imgs, **kw))
    sub = video[3:11]
    assert decoded == [] and sub.shape[0] == 8  # slicing decodes nothing
    idx = torch.tensor([4, 4, 0, 7, 4])
    assert torch.equal(sub[idx], full[3:11][idx]) and decoded == [3]  # three distinct frames, decoded once each
    assert torch.equal(sub[5], full[8])
    with pytest.raises(IndexError, match="out of range for 8 frames"):
        sub[torch.tensor([8])]


@pytest.mark.parametrize("how,problem", [("flip", "entry corrupted"), ("truncate", "entry truncated"),
                                         ("delete", "entry missing")])
def test_a_damaged_jpeg_entry_names_itself_its_video_and_the_rebuild(videos, tmp_path, how, problem):
    cache = tmp_path / "flav"
    fc.build_cache(videos, cache, progress=False, spec=JPEG)
    rec = read_json(cache / "index.json")["videos"][fc.source_key(videos[1], cache)]
    entry = cache / rec["entry"]
    data = bytearray(entry.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x01
        entry.write_bytes(bytes(data))
    elif how == "truncate":
        entry.write_bytes(bytes(data[:-50]))
    else:
        entry.unlink()
    with pytest.raises(DataError) as err:
        fc.CachedFrames(cache).frames(videos[1])
    msg = str(err.value)
    assert msg.startswith(f"{entry}: {problem}") and f"frame cache entry for video {videos[1]}" in msg
    assert f"scenebias frame-cache --preset PRESET --flavour flav --out {cache}" in msg
    assert fc.build_cache(videos, cache, progress=False, spec=JPEG)["decoded"] == 1  # the rebuild redoes that one


@pytest.mark.parametrize("mode,static", [("pair", False), ("triple", False), ("test", False), ("single", True)])
@pytest.mark.parametrize("spec", [SMALL, JPEG], ids=["raw", "jpeg"])
def test_clip_dataset_items_identical_cached_or_decoded(videos, tmp_path, mode, static, spec):
    records = [VideoRecord(v, i, v.stem, start_frame=i, end_frame=None if i else 7) for i, v in enumerate(videos)]
    fc.build_cache(records, tmp_path / "cache", progress=False, spec=spec)
    kw = dict(clip_len=4, stride=2, mode=mode, num_test_clips=3, crop_size=16, static=static, seed=3)
    decoding = ClipDataset(records, frame_spec=spec, **kw)
    cached = ClipDataset(records, frame_cache=fc.CachedFrames(tmp_path / "cache"), **kw)
    assert cached.frame_spec == spec  # taken from the cache
    for i in range(len(records)):
        a, b = decoding[i], cached[i]
        for k in a:
            assert torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])), (mode, i, k)
    with pytest.raises(DataError, match=r"holds frames at .* but the dataset asks for as decoded, raw"):
        ClipDataset(records, frame_cache=fc.CachedFrames(tmp_path / "cache"), frame_spec=fc.AS_DECODED, **kw)


def test_actor_masks_follow_the_resized_frames(videos):
    rec = VideoRecord(videos[0], 0, "v0")
    full = np.zeros((9, 48, 64), dtype=bool)
    full[:, 12:36, 16:40] = True
    ds = ClipDataset([rec], clip_len=4, mode="pair", crop_size=16, frame_spec=SMALL, actor_masks=lambda r: full)
    masks = ds.masks(0)
    assert masks.shape == (9, 24, 32) and masks[:, 6:18, 8:20].all() and masks.sum() == 9 * 12 * 12
    assert ds[0]["masks"].shape == (2, 4, 16, 16)


# ============================================================================================ memory
def test_memory_cache_keeps_the_most_recent_within_its_budget():
    cache = MemoryCache(budget=100)
    for key in "abc":
        cache.put(key, key.upper(), 40)
    assert cache.get("a") is None and cache.bytes == 80  # a went first: 120 > 100
    cache.get("b")  # b is now the most recent: c goes next
    cache.put("d", "D", 40)
    assert (cache.get("c"), cache.get("b"), cache.get("d")) == (None, "B", "D")
    cache.put("huge", "H", 101)
    assert cache.get("huge") is None and cache.bytes == 80  # larger than the whole budget: not kept
    assert len(MemoryCache(budget=0)) == 0 and MemoryCache(budget=None).budget is None


def test_clip_dataset_memory_stays_in_budget_and_items_do_not_change(videos):
    records = [VideoRecord(v, 0, v.stem) for v in videos]
    one_video = 13 * 24 * 32 * 3  # the largest of the three at 24 px
    unbounded = ClipDataset(records, clip_len=4, mode="pair", crop_size=16, frame_spec=SMALL)
    bounded = ClipDataset(records, clip_len=4, mode="pair", crop_size=16, frame_spec=SMALL, cache_bytes=one_video)
    for epoch in range(2):
        for ds in (unbounded, bounded):
            ds.set_epoch(epoch)
        for i in range(3):
            assert torch.equal(unbounded[i]["views"], bounded[i]["views"])
            assert bounded._cache.bytes <= one_video and len(bounded._cache) == 1
    assert len(unbounded._cache) == 3
    kept = {}
    for spec in (SMALL, JPEG):
        ds = ClipDataset(records, clip_len=4, mode="pair", crop_size=16, frame_spec=spec, cache_bytes=2 * one_video)
        for i in range(3):
            ds[i]
        kept[spec.storage] = len(ds._cache)
    assert kept == {"raw": 2, "jpeg": 3}  # compressed frames: all three fit where two raw videos did


def test_stages_pass_the_config_frames_and_budget(tiny_dataset):
    from scenebias.plan import load_config
    from scenebias.resolve import clip_dataset, split

    cfg = load_config("smoke", overrides={"paths": {"data": str(tiny_dataset)},
                                          "data": {"memory_cache_mb": 2, "frames": {"storage": "jpeg"}}})
    ds = clip_dataset(cfg, split(cfg, "ucf101", "train").records, "pair", seed=0)
    assert ds.frame_spec == fc.FrameSpec(37, "jpeg", 90) and ds._cache.budget == 2 * 2 ** 20
    assert isinstance(ds.frames(0), fc.JpegFrames)
