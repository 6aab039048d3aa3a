"""DSM's local warp and losses, and BE's eq. 7 hard negative: the papers' properties stated exactly."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import scenebias_methods.dsm as dsm
from scenebias.data.datasets import ClipDataset
from scenebias.data.formats import VideoRecord
from scenebias.models.backbones import build_backbone
from scenebias.plugins import get_method


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _batch(b=4, views=3, seed=1):
    return {"views": torch.rand(b, views, 3, 4, 16, 16, generator=_gen(seed)),
            "label": torch.arange(b) % 3, "index": torch.arange(b)}


def _build(name, queue_size=64, **options):
    return get_method(name).build(build_backbone("tiny3d", width=4), 3, {"queue_size": queue_size, **options})


# ------------------------------------------------------------------------------------------- the warp
def test_warp_with_zero_shift_is_the_identity():
    clips = torch.rand(3, 3, 4, 20, 24, generator=_gen())
    centres, shifts = dsm.warp_params(3, 20, 24, _gen(1))
    out = dsm.local_warp(clips, centres, torch.zeros_like(shifts))
    torch.testing.assert_close(out, clips, atol=1e-5, rtol=0)  # up to float rounding of the sampling grid


def test_same_warp_on_every_frame_so_a_static_clip_stays_static():
    frame = torch.rand(4, 3, 1, 32, 32, generator=_gen(2))
    static = frame.expand(4, 3, 6, 32, 32)
    centres, shifts = dsm.warp_params(4, 32, 32, _gen(3))
    shifts = shifts * 4  # a strong warp, so "static" is not just "unchanged"
    out = dsm.local_warp(static, centres, shifts)
    assert (out - static).abs().max() > 0.05
    assert out.diff(dim=2).abs().max() == 0  # frame-to-frame differences of a static clip stay zero
    # a moving clip: warping the whole clip equals warping each frame alone with the same warp
    moving = torch.rand(4, 3, 5, 32, 32, generator=_gen(4))
    whole = dsm.local_warp(moving, centres, shifts)
    for t in range(5):
        torch.testing.assert_close(whole[:, :, t: t + 1], dsm.local_warp(moving[:, :, t: t + 1], centres, shifts))


def test_warp_displaces_content_near_the_centre_and_leaves_far_pixels():
    size, shift_x = 64, 8.0
    ramp = (torch.arange(size, dtype=torch.float32) / (size - 1)).expand(size, size)  # value = x / 63
    clip = ramp.expand(1, 3, 2, size, size)
    centres = torch.tensor([[[32.0, 32.0]]])
    shifts = torch.tensor([[[0.0, shift_x]]])  # push right by 8 px: the centre shows x = 32 − 0.5·8
    out = dsm.local_warp(clip, centres, shifts)[0, 0, 0]
    torch.testing.assert_close(out[32, 32], torch.tensor((32 - dsm.STRENGTH * shift_x) / (size - 1)))
    assert out[32, 32] < ramp[32, 32] - 3.9 / (size - 1)  # content moved right by ~4 px at the centre
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    far = ((ys - 32) ** 2 + (xs - 32) ** 2).float().sqrt() > 3 * shift_x
    # φ(3) = 1/244: at 3‖s‖ the content moves by < 0.02 px
    assert (out - ramp)[far].abs().max() < 0.02 / (size - 1)


def test_warp_stays_in_unit_range_and_parameters_scale_with_the_crop():
    clips = (torch.rand(8, 3, 3, 40, 40, generator=_gen(5)) > 0.5).float()  # only 0s and 1s
    out = dsm.random_local_warp(clips, _gen(6))
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, clips)
    smooth = torch.rand(8, 3, 3, 40, 40, generator=_gen(7))
    centres, shifts = dsm.warp_params(8, 40, 40, _gen(8))
    out = dsm.local_warp(smooth, centres, shifts * 10)
    assert out.min() >= 0 and out.max() <= 1
    for crop in (112, 224):
        centres, shifts = dsm.warp_params(500, crop, crop, _gen(9))
        active = shifts.abs().sum(-1) > 0
        assert set(active.sum(1).tolist()) == {1, 2, 3}  # 1–3 warps, drawn per clip
        assert (centres >= 60 / 224 * crop).all() and (centres < 140 / 224 * crop).all()
        assert (shifts[active] >= 10 / 224 * crop).all() and (shifts[active] < 20 / 224 * crop).all()


# ------------------------------------------------------------------------------------ the hard negative
def test_triple_mode_third_clip_is_the_same_video_at_another_start():
    """Frame t of video v has red = 8·t and green = 40·v, so a clip tells its video and start frame."""
    n_frames = 30
    videos = [torch.stack([torch.full((16, 16), 8 * t) for t in range(n_frames)]) for _ in range(2)]
    videos = [torch.stack([v, torch.full_like(v, 40 * i), torch.zeros_like(v)], dim=-1).to(torch.uint8)
              for i, v in enumerate(videos)]
    records = [VideoRecord(Path(f"mem{i}.avi"), i, f"v{i}") for i in range(2)]
    ds = ClipDataset(records, clip_len=4, stride=2, mode="triple", crop_size=8, scale=(0.5, 1.0))
    ds.frames = lambda index: videos[index]  # in-memory videos
    starts = max(n_frames - ds.span, 0) + 1
    seen = set()
    for epoch in range(15):
        ds.set_epoch(epoch)
        for index in range(2):
            views = ds[index]["views"]
            assert views.shape == (3, 3, 4, 8, 8)
            red = (views[:, 0].mean(dim=(2, 3)) * 255 / 8).round().long()  # (view, t): frame ids
            green = (views[:, 1].mean(dim=(2, 3)) * 255 / 40).round().long()
            assert (green == index).all()  # all three clips come from this video
            assert (red.diff(dim=1) == 2).all()  # consecutive frames at stride 2
            assert red[2, 0] != red[0, 0]  # the hard negative starts elsewhere than the anchor
            seen.add(int(red[2, 0]))
    assert len(seen) > starts // 2  # and it is spread over the video, not a fixed offset
    g = _gen(10)
    assert all(ds._random_start(n_frames, g, avoid=a) != a for a in range(starts) for _ in range(20))


class _Spy:
    """Wraps MoCo.contrast and records its arguments."""

    def __init__(self, moco):
        self.calls, self.inner = [], moco.contrast
        moco.contrast = self

    def __call__(self, q, k, video_index, extra_negatives=None):
        self.calls.append((q.detach(), k.detach(), extra_negatives))
        return self.inner(q, k, video_index, extra_negatives=extra_negatives)


@pytest.mark.parametrize("name,options", [("moco+be", {"hard_negative": True}), ("dsm", {})])
def test_hard_negative_is_one_extra_logit_column_and_is_not_enqueued(name, options):
    torch.manual_seed(0)
    objective = _build(name, **options)
    assert objective.dataset_mode == "triple"
    moco, b = objective.moco, 4
    queue_before = moco.queue.clone()
    spy = _Spy(moco)
    batch = _batch(b)
    loss, stats = objective.training_loss(batch, lambda x: x, _gen(2))
    assert {"instance_acc", "pos_sim", "neg_sim", "hard_neg_sim"} <= set(stats)
    # both query directions get exactly one extra negative per query: (B, 1, d), the normalised view 2
    assert len(spy.calls) == 2
    with torch.no_grad():
        expected_n = F.normalize(moco.encoder_q(batch["views"][:, 2]), dim=1)
    total = 0.0
    for q, k, extra in spy.calls:
        assert extra.shape == (b, 1, moco.queue.shape[1])
        torch.testing.assert_close(extra[:, 0], expected_n, atol=1e-5, rtol=1e-5)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue_before.T, (q * extra[:, 0]).sum(1, keepdim=True)],
                           dim=1) / moco.tau
        assert logits.shape == (b, 1 + moco.queue.shape[0] + 1)
        total += F.cross_entropy(logits, torch.zeros(b, dtype=torch.long)) / 2
        without, _ = spy.inner(q, k, batch["index"].clone().fill_(-2))
        with_it, _ = spy.inner(q, k, batch["index"].clone().fill_(-2), extra_negatives=extra.detach())
        assert with_it > without  # removing the column changes (lowers) the loss
    torch.testing.assert_close(loss.detach(), torch.as_tensor(total), atol=1e-5, rtol=1e-5)
    # not enqueued: the pointer advances by 2B (the two key views), not 3B; the rest of the queue is untouched
    assert int(moco.queue_ptr) == 2 * b
    assert torch.equal(moco.queue[2 * b:], queue_before[2 * b:])
    assert moco.queue_video[: 2 * b].tolist() == batch["index"].tolist() * 2
    assert (moco.queue[: 2 * b] @ expected_n.T).max() < 0.9999  # no key equals a hard-negative feature


def test_be_default_is_unchanged_pair_mode():
    objective = _build("moco+be")
    assert objective.dataset_mode == "pair" and type(objective).dataset_mode == "pair"
    views = objective.make_views(_batch(views=2), _gen(3))
    assert len(views) == 2


def test_make_views_shapes_ranges_and_roles():
    batch = _batch()
    for name, options in (("dsm", {}), ("moco+be", {"hard_negative": True})):
        views = _build(name, **options).make_views(batch, _gen(4))
        assert len(views) == 3
        for v in views:
            assert v.shape == (4, 3, 4, 16, 16) and v.dtype == torch.float32 and 0 <= v.min() and v.max() <= 1
        assert torch.equal(views[2], batch["views"][:, 2])  # the hard negative is view 2 as sampled
    anchor, positive, _ = _build("dsm").make_views(batch, _gen(4))
    assert torch.equal(anchor, batch["views"][:, 0])
    torch.testing.assert_close(positive, dsm.random_local_warp(anchor, _gen(4)))


# ---------------------------------------------------------------------------------------- the triplet
def test_triplet_loss_equals_hand_computed_value():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p = torch.tensor([[0.6, 0.8], [0.6, 0.8]])
    n = torch.tensor([[0.0, 1.0], [0.8, 0.6]])
    # row 0: √0.8 − √2 + 0.5 < 0 → 0; row 1: √0.8 − √0.4 + 0.5
    expected = (0.0 + math.sqrt(0.8) - math.sqrt(0.4) + 0.5) / 2
    assert float(dsm.triplet_loss(a, p, n, 0.5)) == pytest.approx(expected, abs=1e-6)
    assert float(dsm.triplet_loss(a, p, n, 0.5)) == pytest.approx(
        float(torch.nn.TripletMarginLoss(margin=0.5)(a, p, n)), abs=1e-5)
    # the DSM objective: intra (n) + inter (the next video's n: rows swapped), both anchor roles, halved
    loss, _ = dsm.dsm_triplet(a, p, n, 0.5)
    other = n.flip(0)  # roll by one of a batch of two
    by_hand = sum(dsm.triplet_loss(x, y, m, 0.5) for x, y in ((a, p), (p, a)) for m in (n, other)) / 2
    d = lambda u, v: (u - v).norm(dim=1)  # noqa: E731
    manual = sum(F.relu(d(x, y) - d(x, m) + 0.5).mean() for x, y in ((a, p), (p, a)) for m in (n, other)) / 2
    torch.testing.assert_close(loss, by_hand)
    torch.testing.assert_close(loss, manual)
    assert float(dsm.dsm_triplet(a, p, n, 0.0)[0]) < float(loss)  # the margin counts


# ------------------------------------------------------------------------------------ training steps
@pytest.mark.parametrize("name,options", [("dsm", {"loss": "infonce"}), ("dsm", {"loss": "triplet"}),
                                          ("moco+be", {"hard_negative": True})])
def test_training_step_is_finite_and_deterministic(name, options):
    def step(seed):
        torch.manual_seed(seed)
        objective = _build(name, queue_size=16, **options)
        loss, stats = objective.training_loss(_batch(), lambda x: x.clamp(0, 1) * 0.9 + 0.05, _gen(5))
        loss.backward()
        grads = [p.grad for p in objective.backbone.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert torch.isfinite(loss) and all(math.isfinite(float(v)) for v in stats.values())
        assert {"instance_acc", "pos_sim", "neg_sim", "hard_neg_sim"} <= set(stats)
        return loss.detach(), {k: v.detach() for k, v in stats.items()}

    (loss_a, stats_a), (loss_b, stats_b) = step(0), step(0)
    assert torch.equal(loss_a, loss_b) and all(torch.equal(stats_a[k], stats_b[k]) for k in stats_a)
    assert not torch.equal(loss_a, step(1)[0])
