"""BE Table 4's distractors, exact values (`distract`, scenebias/augment/distractors.py). The clips are built so
that every pixel names its video, frame and position: x[i, c, t, h, w] = i + t/10 + c/100 + (h·W + w)/10⁴
(float64). The output
of a blend (1 − λ)·x + λ·d then gives λ back from the temporal step ((1 − λ)/10 per frame) and the distractor
d from the rest, so partner, frame and λ are read from the output, not replayed from the generator."""
from __future__ import annotations

import math

import pytest
import torch

from scenebias.augment import distractors

B, C, T, H, W = 5, 3, 4, 6, 7


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _coded(b=B, t=T, h=H, w=W) -> torch.Tensor:
    i = torch.arange(b, dtype=torch.float64).view(b, 1, 1, 1, 1)
    c = torch.arange(C, dtype=torch.float64).view(1, C, 1, 1, 1) / 100
    f = torch.arange(t, dtype=torch.float64).view(1, 1, t, 1, 1) / 10
    p = torch.arange(h * w, dtype=torch.float64).view(1, 1, 1, h, w) / 1e4
    return i + f + c + p


def _decode_blend(clips: torch.Tensor, out: torch.Tensor):
    """λ per video and the distractor d = (out − (1 − λ)x)/λ, for outputs of (1 − λ)·x + λ·d with d static."""
    step = (out[:, 0, 1, 0, 0] - out[:, 0, 0, 0, 0]) / 0.1  # = 1 − λ: d has no temporal step
    lam = 1 - step
    d = (out - (1 - lam.view(-1, 1, 1, 1, 1)) * clips) / lam.view(-1, 1, 1, 1, 1)
    return lam, d


@pytest.mark.parametrize("seed", range(6))
def test_inter_frame_blends_one_frame_of_another_video(seed):
    clips = _coded()
    out = distractors.distract(clips, "inter_frame", 0.3, "video", _gen(seed))
    lam, d = _decode_blend(clips, out)
    assert ((lam > 1e-3) & (lam < 0.3)).all()  # λ ~ U(0, γ) per video (a λ under 1e-3 would not decode)
    assert lam.unique().numel() == B
    partners = []
    for i in range(B):
        # d is one frame k of one other video p, the same on every frame, pixel for pixel
        code = float(d[i, 0, 0, 0, 0])
        p, k = int(math.floor(code + 1e-6)), round((code - math.floor(code + 1e-6)) * 10)
        assert p != i and 0 <= p < B and 0 <= k < T
        torch.testing.assert_close(d[i], clips[p, :, k:k + 1].expand(C, T, H, W), atol=1e-9, rtol=0)
        # and the output is exactly (1 − λ)·x + λ·x_p[k]
        expected = (1 - lam[i]) * clips[i] + lam[i] * clips[p, :, k:k + 1]
        torch.testing.assert_close(out[i], expected, atol=1e-12, rtol=0)
        partners.append(p)
    assert sorted(partners) == list(range(B))  # a derangement: every video lends its frame exactly once
    # the motion is the clip's own, scaled by 1 − λ (the distractor is static)
    torch.testing.assert_close(out.diff(dim=2), (1 - lam).view(-1, 1, 1, 1, 1) * clips.diff(dim=2))


def test_the_static_frame_is_drawn_at_random():
    """Over 20 draws of 5 videos, intra_frame (BE) and inter_frame blend in every frame index of the clip."""
    clips = _coded()
    for distractor in ("intra_frame", "inter_frame"):
        frames = set()
        for seed in range(20):
            lam, d = _decode_blend(clips, distractors.distract(clips, distractor, 0.3, "video", _gen(seed)))
            for i in range(B):
                code = float(d[i, 0, 0, 0, 0])
                frames.add(round((code - math.floor(code + 1e-6)) * 10))
                if distractor == "intra_frame":  # BE itself: a frame of the clip's own video
                    assert math.floor(code + 1e-6) == i
        assert frames == set(range(T)), distractor


@pytest.mark.parametrize("seed", range(4))
def test_gaussian_noise_is_one_noise_image_blended_into_every_frame(seed):
    clips = _coded()
    out = distractors.distract(clips, "gaussian_noise", 0.3, "video", _gen(seed))
    lam, d = _decode_blend(clips, out)
    assert ((lam > 1e-3) & (lam < 0.3)).all() and lam.unique().numel() == B
    # the same noise image on every frame of a video ...
    torch.testing.assert_close(d, d[:, :, :1].expand_as(d), atol=1e-9, rtol=0)
    noise = d[:, :, 0]
    # ... that is noise, not a frame of any video: it does not carry the coded pattern
    for i in range(B):
        for p in range(B):
            for k in range(T):
                assert (noise[i] - clips[p, :, k]).abs().max() > 0.05
    # one image per video, per channel and per pixel
    for i in range(B):
        for j in range(i):
            assert (noise[i] - noise[j]).abs().max() > 0.05
    inside = noise[0][(noise[0] > 1e-6) & (noise[0] < 1 - 1e-6)]  # the values not clipped to [0, 1]
    assert (noise[:, 0] - noise[:, 1]).abs().max() > 0.05 and inside.unique().numel() == inside.numel() > C * H * W // 2


@pytest.mark.parametrize("seed", range(3))
def test_gaussian_noise_is_standard_normal_in_the_normalised_input_space(seed):
    """BE's code draws its noise with torch.randn on normalised clips: in pixel values that is N(μ_c, σ_c²) with the
    input normalisation's statistics, clipped to [0, 1]; replayed here from the generator (λ, then the
    derangement `distract` always draws, then the noise)."""
    from scenebias.augment.pairing import derangement
    from scenebias.data.transforms import KINETICS_MEAN, KINETICS_STD

    clips = _coded()
    out = distractors.distract(clips, "gaussian_noise", 0.3, "video", _gen(seed))
    g = _gen(seed)
    lam = torch.rand(B, generator=g) * 0.3
    derangement(B, g)
    z = torch.randn(B, C, 1, H, W, generator=g, dtype=torch.float64)
    mean = torch.tensor(KINETICS_MEAN, dtype=torch.float64).view(1, C, 1, 1, 1)
    std = torch.tensor(KINETICS_STD, dtype=torch.float64).view(1, C, 1, 1, 1)
    noise = (mean + std * z).clamp(0, 1)
    lam = lam.to(torch.float64).view(-1, 1, 1, 1, 1)
    torch.testing.assert_close(out, (1 - lam) * clips + lam * noise, atol=1e-12, rtol=0)


def test_gaussian_noise_has_the_input_statistics_and_stays_an_image():
    """Over many pixels the noise image's mean and spread are the normalisation's (not U(0, 1)'s 0.5 and 0.29)."""
    from scenebias.data.transforms import KINETICS_MEAN, KINETICS_STD

    clips = torch.zeros(8, C, 2, 64, 64)
    noise = distractors.gaussian_noise(clips, _gen(0))
    assert noise.shape == (8, C, 1, 64, 64) and noise.dtype == clips.dtype
    assert float(noise.min()) >= 0.0 and float(noise.max()) <= 1.0
    clipped = ((noise == 0) | (noise == 1)).float().mean()
    assert 0.005 < float(clipped) < 0.06  # the tails past 0 and 1, about 3 %
    for c in range(C):
        assert float(noise[:, c].mean()) == pytest.approx(KINETICS_MEAN[c], abs=0.01)
        assert float(noise[:, c].std()) == pytest.approx(KINETICS_STD[c], abs=0.015)  # a little less: clipped


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_box_area_is_the_batch_mean_lambda(seed):
    # constant-per-video clips: inside the box the values are the partner's, outside the clip's own
    b, h, w = 4, 32, 40
    clips = torch.arange(b, dtype=torch.float64).view(b, 1, 1, 1, 1).expand(b, C, T, h, w).contiguous()
    gamma = 0.3
    out = distractors.distract(clips, "cutmix", gamma, "video", _gen(seed))
    lam = torch.rand(b, generator=_gen(seed)) * gamma  # λ ~ U(0, γ): the first draw of `distract`
    side_h, side_w = round(h * math.sqrt(float(lam.mean()))), round(w * math.sqrt(float(lam.mean())))
    changed = out != clips
    box = changed[0, 0, 0]
    rows, cols = box.any(dim=1).nonzero().flatten(), box.any(dim=0).nonzero().flatten()
    top, bottom, left, right = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    # one rectangle, the same for every video, channel and frame
    assert box[top:bottom, left:right].all() and int(box.sum()) == (bottom - top) * (right - left)
    assert (changed == box.expand_as(changed)).all()
    # its size: round(side·√mean λ), cut only where it leaves the frame at the bottom or the right
    assert bottom - top == (side_h if bottom < h else min(side_h, h - top))
    assert right - left == (side_w if right < w else min(side_w, w - left))
    assert (bottom - top) <= side_h and (right - left) <= side_w
    # inside: another video's pixels (a derangement), the same video for the whole box
    partners = out[:, 0, 0, top, left]
    assert (partners != torch.arange(b, dtype=torch.float64)).all()
    assert sorted(partners.tolist()) == list(range(b))
    for i in range(b):
        assert (out[i, :, :, top:bottom, left:right] == partners[i]).all()


def test_lambda_shared_across_the_batch_with_lambda_per_batch():
    for distractor in ("intra_frame", "inter_frame", "mixup", "gaussian_noise"):
        for seed in range(3):
            lam_batch = _decode(distractor, "batch", seed)
            lam_video = _decode(distractor, "video", seed)
            assert torch.allclose(lam_batch, lam_batch[0].expand(B), atol=1e-9), distractor
            assert 1e-3 < float(lam_batch[0]) < 0.3
            assert lam_video.unique().numel() == B, distractor  # per video: five different λ
            # the shared λ is the first uniform draw of the generator (float32), scaled by γ
            assert float(lam_batch[0]) == pytest.approx(float(torch.rand((), generator=_gen(seed)) * 0.3), abs=1e-9)


def _decode(distractor, per, seed):
    if distractor != "mixup":
        clips = _coded()
        return _decode_blend(clips, distractors.distract(clips, distractor, 0.3, per, _gen(seed)))[0]
    # mixup blends a whole other video, which moves too: fit out_i = (1 − λ)·x_i + λ·x_p by least squares for
    # every candidate p on random clips; exactly one partner fits without residual
    clips = torch.rand(B, C, T, H, W, generator=_gen(100 + seed), dtype=torch.float64)
    out = distractors.distract(clips, "mixup", 0.3, per, _gen(seed))
    lam = []
    for i in range(B):
        fits = []
        for p in range(B):
            if p == i:
                continue
            u, v = (out[i] - clips[i]).flatten(), (clips[p] - clips[i]).flatten()
            l = float(u @ v / (v @ v))
            if (u - l * v).abs().max() < 1e-9:
                fits.append(l)
        assert len(fits) == 1
        lam.append(fits[0])
    return torch.tensor(lam, dtype=torch.float64)


def test_unknown_distractor_is_named():
    with pytest.raises(ValueError, match="'static_frame'"):
        distractors.distract(_coded(), "static_frame", 0.3, "video", _gen(0))
