"""Method plugins: the papers' properties stated exactly, and a contract every registered method meets."""
import math

import pytest
import torch

from scenebias.augment import distractors, foreground, pairing


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------ FAME
@pytest.mark.parametrize("mask", ["fame", "seed", "gauss"])
@pytest.mark.parametrize("beta", [0.3, 0.5, 0.7])
def test_fame_mask_has_floor_beta_hw_ones(mask, beta):
    clips = torch.rand(3, 3, 6, 20, 24, generator=_gen())
    m = foreground.foreground_mask(clips, mask, beta)
    assert m.shape == (3, 20, 24)
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert (m.sum(dim=(1, 2)) == math.floor(beta * 20 * 24)).all()


def test_grid_marks_exactly_8_of_16_cells():
    clips = torch.rand(2, 3, 5, 32, 32, generator=_gen(1))
    m = foreground.grid_mask(clips)
    cells = m.view(2, 4, 8, 4, 8).mean(dim=(2, 4))
    assert set(cells.unique().tolist()) <= {0.0, 1.0}
    assert (cells.sum(dim=(1, 2)) == 8).all()


def test_merge_is_x_m_plus_y_one_minus_m_constant_over_time():
    x, y = torch.rand(2, 3, 4, 8, 8, generator=_gen(2)), torch.rand(2, 3, 4, 8, 8, generator=_gen(3))
    m = (torch.rand(2, 8, 8, generator=_gen(4)) > 0.5).float()
    out = foreground.merge(x, y, m)
    expected = x * m[:, None, None] + y * (1 - m[:, None, None])
    assert torch.equal(out, expected)
    fg = m.bool()[:, None, None].expand_as(x)
    assert torch.equal(out[fg], x[fg]) and torch.equal(out[~fg], y[~fg])  # same pixels on every frame


def test_derangement_never_pairs_a_clip_with_itself():
    for n in (2, 3, 7, 64):
        for seed in range(50):
            p = pairing.derangement(n, _gen(seed))
            assert sorted(p.tolist()) == list(range(n))
            assert (p != torch.arange(n)).all()


def test_seed_map_of_static_clip_is_zero_and_finds_a_moving_square():
    static = torch.rand(1, 3, 1, 16, 16, generator=_gen(5)).expand(1, 3, 6, 16, 16)
    assert foreground.seed_map(static).abs().max() == 0
    clip = torch.zeros(1, 3, 6, 32, 32)
    clip[:, 1] = 0.3  # a green background
    for t in range(6):
        clip[0, 0, t, 10:18, 4 + 3 * t: 12 + 3 * t] = 1.0  # a red square moving right
    truth = torch.zeros(32, 32, dtype=torch.bool)
    for t in range(6):
        truth[10:18, 4 + 3 * t: 12 + 3 * t] = True
    m = foreground.foreground_mask(clip, "fame", beta=truth.float().mean().item()).bool()[0]
    iou = (m & truth).sum() / (m | truth).sum()
    assert iou > 0.6


def test_hue_wrap_of_official_code_differs_from_paper():
    frame = torch.tensor([0.9, 0.5, 0.1]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    # paper: hue (0.5 − 0.1)/(0.9 − 0.1) = 0.5 sextant -> θ = π/6; S = 0.8/0.9; hx = (0.889·cos 30° + 1)/2 = 0.885
    # -> level 8, hy = (0.889·sin 30° + 1)/2 = 0.722 -> 7, V = 0.9 -> 9: bin (8·10 + 7)·10 + 9 = 879
    assert foreground.colour_bins(frame, "paper").unique().tolist() == [879]
    # the official code's θ = 2π·(π/6) = 3.29 rad lands on the other side of the disk: another bin
    assert not torch.equal(foreground.colour_bins(frame, "paper"), foreground.colour_bins(frame, "official-code"))


# -------------------------------------------------------------------------------------------------- BE
def test_be_is_one_minus_lambda_x_plus_lambda_static_frame_and_scales_motion():
    clips = torch.rand(4, 3, 6, 8, 8, generator=_gen(6))
    out = distractors.distract(clips, "intra_frame", distractors.GAMMA, "video", _gen(7))
    g = _gen(7)  # replay the draws
    lam = distractors.mixing_weights(4, distractors.GAMMA, "video", g)
    k = torch.randint(0, 6, (4,), generator=g)
    assert (lam >= 0).all() and (lam <= distractors.GAMMA).all() and lam.unique().numel() == 4
    for i in range(4):
        expected = (1 - lam[i]) * clips[i] + lam[i] * clips[i, :, k[i]].unsqueeze(1)
        torch.testing.assert_close(out[i], expected)
        torch.testing.assert_close(out[i].diff(dim=1), (1 - lam[i]) * clips[i].diff(dim=1))


def test_be_lambda_per_batch_is_shared():
    lam = distractors.mixing_weights(5, 0.3, "batch", _gen(8))
    assert lam.unique().numel() == 1


def test_mixup_and_cutmix_exact_on_constructed_inputs():
    a, b_ = torch.zeros(1, 3, 4, 8, 8), torch.ones(1, 3, 4, 8, 8)
    clips = torch.cat([a, b_])
    mixed = distractors.distract(clips, "mixup", 0.3, "video", _gen(9))
    lam = distractors.mixing_weights(2, 0.3, "video", _gen(9))
    torch.testing.assert_close(mixed[0], torch.full_like(a[0], float(lam[0])))  # 0·(1−λ) + 1·λ
    torch.testing.assert_close(mixed[1], torch.full_like(a[0], 1 - float(lam[1])))
    cut = distractors.distract(clips, "cutmix", 0.3, "video", _gen(10))
    assert set(cut[0].unique().tolist()) <= {0.0, 1.0} and cut[0].sum() > 0  # a patch of the other video
    assert torch.equal(cut[0][:, 0], cut[0][:, -1])  # the same box on every frame
    assert torch.equal(cut[0].bool(), (1 - cut[1]).bool())  # the other clip got the complementary patch
