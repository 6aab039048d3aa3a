"""ClipDataset: modes, determinism, temporal consistency, test-clip placement."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from scenebias.data.datasets import ClipDataset, item_generator, uniform_clip_starts
from scenebias.data.formats import VideoRecord, read_split
from scenebias.data.transforms import colour_augment
from scenebias.data.video import write_video
from scenebias.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def counter_video(tmp_path_factory) -> Path:
    """31 frames; frame t is uniform grey 8*t, so a decoded frame tells its index."""
    t = np.arange(31, dtype=np.uint8) * 8
    frames = np.broadcast_to(t[:, None, None, None], (31, 32, 32, 3)).copy()
    return write_video(tmp_path_factory.mktemp("counter") / "c.avi", frames, fps=25)


def _frame_ids(clip: torch.Tensor) -> list[int]:
    """(C, T, H, W) -> the frame index of each time step."""
    return [int(round(float(clip[:, j].mean()) * 255 / 8)) for j in range(clip.shape[1])]


def _ucf(tiny_dataset, flavour="ucf101", subset="train"):
    return read_split("ucf101", tiny_dataset / flavour, subset).records


# ============================================================================================ shapes
def test_modes_shapes(tiny_dataset):
    recs = _ucf(tiny_dataset)[:3]
    pair = ClipDataset(recs, clip_len=8, stride=2, mode="pair", crop_size=24)[1]
    assert pair["views"].shape == (2, 3, 8, 24, 24) and pair["views"].dtype == torch.float32
    assert 0.0 <= float(pair["views"].min()) and float(pair["views"].max()) <= 1.0
    assert pair["label"] == recs[1].label and pair["index"] == 1
    single = ClipDataset(recs, clip_len=4, mode="single", crop_size=16)[2]
    assert single["clip"].shape == (3, 4, 16, 16) and single["index"] == 2
    test = ClipDataset(recs, clip_len=8, mode="test", num_test_clips=5, crop_size=28)[0]
    assert test["clips"].shape == (5, 3, 8, 28, 28)
    batch = next(iter(DataLoader(ClipDataset(recs, clip_len=4, mode="pair"), batch_size=3)))
    assert batch["views"].shape == (3, 2, 3, 4, 32, 32) and batch["label"].tolist() == [r.label for r in recs]


def test_bad_arguments(tiny_dataset, tmp_path):
    recs = _ucf(tiny_dataset)[:1]
    with pytest.raises(ConfigError, match="mode"):
        ClipDataset(recs, clip_len=8, mode="train")
    with pytest.raises(ConfigError, match="clip_len"):
        ClipDataset(recs, clip_len=0)
    ds = ClipDataset([VideoRecord(tmp_path / "gone.avi", 0, "gone")], clip_len=4)
    with pytest.raises(DataError, match="gone.avi"):
        ds[0]


# ============================================================================================ determinism
def test_deterministic_in_seed_epoch_index(tiny_dataset):
    recs = _ucf(tiny_dataset)[:4]
    a = ClipDataset(recs, clip_len=8, stride=2, mode="pair", seed=3)
    b = ClipDataset(recs, clip_len=8, stride=2, mode="pair", seed=3, cache=False)
    for i in (2, 0, 3):  # order does not matter
        assert torch.equal(a[i]["views"], b[i]["views"])
    x = a[1]["views"]
    a.set_epoch(1)
    assert not torch.equal(a[1]["views"], x)
    a.set_epoch(0)
    assert torch.equal(a[1]["views"], x)
    c = ClipDataset(recs, clip_len=8, stride=2, mode="pair", seed=4)
    assert not torch.equal(c[1]["views"], x)
    assert not torch.equal(x[0], x[1])  # the two views differ (own start frame and augmentation)


def test_worker_count_does_not_change_batches(tiny_dataset):
    ds = ClipDataset(_ucf(tiny_dataset)[:6], clip_len=4, stride=2, mode="pair", seed=7)
    ds.set_epoch(2)
    b0 = [b["views"] for b in DataLoader(ds, batch_size=2, num_workers=0)]
    b2 = [b["views"] for b in DataLoader(ds, batch_size=2, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(b0, b2))


def test_item_generator_pure():
    a = torch.rand(4, generator=item_generator(0, 1, 2))
    assert torch.equal(a, torch.rand(4, generator=item_generator(0, 1, 2)))
    assert not torch.equal(a, torch.rand(4, generator=item_generator(0, 2, 1)))
    torch.manual_seed(0)
    x = torch.rand(1)
    torch.manual_seed(0)
    item_generator(5, 5, 5)
    assert torch.equal(torch.rand(1), x)  # the global RNG is untouched


# ============================================================================================ consistency
def test_static_video_stays_frame_identical(tiny_dataset):
    """Frames of an identical-frame video stay identical through spatial + colour augmentation,
    while different seeds give different crops."""
    recs = _ucf(tiny_dataset, "ucf101_static", "test")
    outs = []
    for seed in (0, 1):
        ds = ClipDataset(recs, clip_len=8, stride=2, mode="pair", seed=seed)
        views = torch.stack([ds[i]["views"] for i in range(len(recs))]).flatten(0, 1)  # (2N, C, T, H, W)
        assert all(torch.equal(views[:, :, 0], views[:, :, t]) for t in range(8))
        aug = colour_augment(views, torch.Generator().manual_seed(seed))
        assert all(torch.equal(aug[:, :, 0], aug[:, :, t]) for t in range(8))
        outs.append(views)
    assert not torch.equal(outs[0], outs[1])


def test_static_mode_repeats_one_frame(tiny_dataset):
    recs = _ucf(tiny_dataset)[:3]
    for mode, key in (("pair", "views"), ("single", "clip"), ("test", "clips")):
        x = ClipDataset(recs, clip_len=8, mode=mode, static=True, num_test_clips=3)[0][key]
        t_dim = x.dim() - 3
        first = x.select(t_dim, 0)
        assert all(torch.equal(first, x.select(t_dim, t)) for t in range(8)), mode


# ============================================================================================ frame indices
def test_test_mode_start_frames(counter_video):
    rec = VideoRecord(counter_video, 0, "c")
    assert uniform_clip_starts(31, 7, 5) == [0, 6, 12, 18, 24]
    clips = ClipDataset([rec], clip_len=4, stride=2, mode="test", num_test_clips=5)[0]["clips"]
    assert [_frame_ids(c) for c in clips] == [[s, s + 2, s + 4, s + 6] for s in (0, 6, 12, 18, 24)]
    static = ClipDataset([rec], clip_len=4, stride=2, mode="test", num_test_clips=5, static=True)[0]["clips"]
    assert [_frame_ids(c) for c in static] == [[s + 3] * 4 for s in (0, 6, 12, 18, 24)]  # window centres
    one = ClipDataset([rec], clip_len=4, stride=2, mode="test", num_test_clips=1)[0]["clips"]
    assert [_frame_ids(c) for c in one] == [[12, 14, 16, 18]]


def test_random_clips_use_consecutive_strided_frames(counter_video):
    ds = ClipDataset([VideoRecord(counter_video, 0, "c")], clip_len=5, stride=3, mode="pair", scale=(1.0, 1.0))
    starts = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        for view in ds[0]["views"]:
            ids = _frame_ids(view)
            assert ids == [ids[0] + 3 * j for j in range(5)] and 0 <= ids[0] <= 31 - 13
            starts.add(ids[0])
    assert len(starts) > 5


def test_short_video_loops_and_record_range(counter_video):
    rec = VideoRecord(counter_video, 0, "c", start_frame=4, end_frame=8)  # 5 frames: 4..8
    clip = ClipDataset([rec], clip_len=8, mode="test", num_test_clips=1)[0]["clips"][0]
    assert _frame_ids(clip) == [4, 5, 6, 7, 8, 4, 5, 6]
    rec = VideoRecord(counter_video, 0, "c", start_frame=10, end_frame=99)  # end clamped to the video
    ds = ClipDataset([rec], clip_len=2, mode="test", num_test_clips=2)
    assert ds.frames(0).shape[0] == 21
    assert [_frame_ids(c) for c in ds[0]["clips"]] == [[10, 11], [29, 30]]
    with pytest.raises(DataError, match="start_frame 40"):
        ClipDataset([VideoRecord(counter_video, 0, "c", start_frame=40)], clip_len=2)[0]


def test_cache(counter_video):
    rec = VideoRecord(counter_video, 0, "c")
    ds = ClipDataset([rec], clip_len=2)
    assert ds.frames(0) is ds.frames(0)
    nc = ClipDataset([rec], clip_len=2, cache=False)
    assert nc.frames(0) is not nc.frames(0) and torch.equal(nc.frames(0), ds.frames(0))


def test_shared_start_gives_two_crops_of_the_same_frames_and_a_negative_elsewhere(counter_video):
    """BE's positive pair (positive: frames): views 0 and 1 start at the same frame; view 2, the hard negative,
    never does. Without it the two views start independently (sometimes apart)."""
    shared = ClipDataset([VideoRecord(counter_video, 0, "c")], clip_len=4, stride=2, mode="triple",
                         scale=(1.0, 1.0), shared_start=True)
    plain = ClipDataset([VideoRecord(counter_video, 0, "c")], clip_len=4, stride=2, mode="triple",
                        scale=(1.0, 1.0))
    apart = 0
    for epoch in range(10):
        shared.set_epoch(epoch)
        plain.set_epoch(epoch)
        first, second, negative = (_frame_ids(v)[0] for v in shared[0]["views"])
        assert first == second and negative != first
        a, b, _ = (_frame_ids(v)[0] for v in plain[0]["views"])
        apart += a != b
    assert apart > 0
