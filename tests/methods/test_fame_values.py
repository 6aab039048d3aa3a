"""FAME's separation (`colour_mode="paper"`) against values computed by hand on a tiny clip (docs/methods.md, "moco+fame",
FAME steps 1–5): the seed map, the Gaussian kernel, the colour bins, the foreground/background samples, the
histograms, the posterior and the final mask. Expectations are literal numbers (derived in the comments) or come
from the small NumPy/colorsys re-implementation below, never from the functions under test.

Only the paper's colour mode is pinned here; `official-code` binning is tested where it is implemented."""
from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch

from scenebias.augment import foreground


# --------------------------------------------------------------------------- independent reference (NumPy)
def _np_kernel(k: int) -> np.ndarray:
    sigma = k / 3
    x = np.arange(k) - (k - 1) / 2
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _np_blur(m: np.ndarray, k: int) -> np.ndarray:
    """2-D Gaussian blur by an explicit double sum over a reflect-padded map (no convolution routine)."""
    g, p = _np_kernel(k), k // 2
    padded = np.pad(m, p, mode="reflect")  # reflect without repeating the edge: [x1, x0, x1, ...]
    h, w = m.shape
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = sum(g[a] * g[b] * padded[i + a, j + b] for a in range(k) for b in range(k))
    return out


def _np_min_max(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / (m.max() - m.min() + 1e-8)


def _np_bin(rgb) -> int:
    """The paper's bin of one colour: hue angle θ in radians, hx = (S cos θ + 1)/2, hy = (S sin θ + 1)/2,
    V; each cut into 10 equal levels (floor, the top edge in level 9); bin = (hx·10 + hy)·10 + V."""
    h, s, v = colorsys.rgb_to_hsv(*(float(c) for c in rgb))
    theta = 2 * math.pi * h
    levels = [min(int(math.floor(10 * c)), 9) for c in ((s * math.cos(theta) + 1) / 2,
                                                          (s * math.sin(theta) + 1) / 2, v)]
    return (levels[0] * 10 + levels[1]) * 10 + levels[2]


# ----------------------------------------------------------------------------------------- the tiny clip
RED, GREEN, BLUE, GREY = (0.9, 0.1, 0.1), (0.1, 0.6, 0.2), (0.15, 0.2, 0.85), (0.5, 0.5, 0.5)
# Each pixel keeps its colour on frames 0 and 2 and is darkened by the factor (1 - amp) on frame 1, so its hue
# and saturation never change and its motion is amp · (sum of its channels) per frame step.
AMP = np.array([[0.300, 0.280, 0.260, 0.240],
                [0.220, 0.200, 0.180, 0.160],
                [0.012, 0.014, 0.006, 0.004],
                [0.016, 0.010, 0.008, 0.002]])
# colours: the two top rows move (red, one blue pixel); below them a static red block, green, one grey pixel
LAYOUT = [[RED, RED, RED, BLUE],
          [RED, RED, RED, RED],
          [RED, RED, GREEN, GREEN],
          [RED, RED, GREEN, GREY]]


def _clip(layout=LAYOUT) -> torch.Tensor:
    colours = np.array(layout, dtype=float).transpose(2, 0, 1)  # (3, 4, 4)
    frames = np.stack([colours, colours * (1 - AMP), colours])  # (T=3, 3, 4, 4)
    return torch.tensor(frames.transpose(1, 0, 2, 3)[None], dtype=torch.float32)  # (1, 3, 3, 4, 4)


# S = mean_t Σ_c |X[c,t+1] − X[c,t]| = (amp·ΣRGB + amp·ΣRGB) / 2 = amp · ΣRGB:
# red ΣRGB = 1.1, blue 1.2, green 0.9, grey 1.5
SEED = np.array([[0.300 * 1.1, 0.280 * 1.1, 0.260 * 1.1, 0.240 * 1.2],
                 [0.220 * 1.1, 0.200 * 1.1, 0.180 * 1.1, 0.160 * 1.1],
                 [0.012 * 1.1, 0.014 * 1.1, 0.006 * 0.9, 0.004 * 0.9],
                 [0.016 * 1.1, 0.010 * 1.1, 0.008 * 0.9, 0.002 * 1.5]])
# Bins of the time-averaged colours (mean = colour · (1 − amp/3); hue and saturation as the colour's):
#  red   hue 0, S = 0.8/0.9:            hx = (0.889 + 1)/2 = 0.944 -> 9, hy = 0.5 -> 5, V ∈ [0.81, 0.9) -> 8: 958
#  blue  hue 235.7°, S = 0.7/0.85:      hx = 0.268 -> 2, hy = 0.160 -> 1, V = 0.85·0.92 = 0.782 -> 7:       217
#  green hue 132°, S = 0.5/0.6:         hx = 0.221 -> 2, hy = 0.810 -> 8, V ≈ 0.599 -> 5:                  285
#  grey  S = 0:                         hx = hy = 0.5 -> 5, 5, V = 0.5·(1 − 0.002/3) = 0.4997 -> 4:        554
BINS = np.array([[958, 958, 958, 217],
                 [958, 958, 958, 958],
                 [958, 958, 285, 285],
                 [958, 958, 285, 554]])
# Samples (16 pixels): the ⌊0.5·16⌋ = 8 largest blurred seeds are the two top rows (7 red, 1 blue), the
# ⌊0.1·16⌋ = 1 smallest is the grey corner. Histograms: fg[958] = 7, fg[217] = 1 (sum 8); bg = 1 everywhere
# (Laplace) + 1 at 554 (sum 1000 + 1). P(F|x) = p_f / (p_f + p_b):
#  red   (7/8) / (7/8 + 1/1001) = 0.998860,  blue (1/8) / (1/8 + 1/1001) = 0.992072,
#  green 0 / (0 + 1/1001) = 0,               grey 0 / (0 + 2/1001) = 0
P_RED, P_BLUE = (7 / 8) / (7 / 8 + 1 / 1001), (1 / 8) / (1 / 8 + 1 / 1001)
POSTERIOR = np.array([[P_RED, P_RED, P_RED, P_BLUE],
                      [P_RED, P_RED, P_RED, P_RED],
                      [P_RED, P_RED, 0.0, 0.0],
                      [P_RED, P_RED, 0.0, 0.0]])
# The blurred posterior is largest on the left column and the top row (red on both sides); the top 8 are the
# top row, (1,0), (1,1) and the rest of the left column, so the static red block joins the mask and the moving
# (1,2), (1,3) leave it: the colour model, not the seed map alone, decides (the seed mask is the two top rows).
MASK = np.array([[1, 1, 1, 1],
                 [1, 1, 0, 0],
                 [1, 0, 0, 0],
                 [1, 0, 0, 0]], dtype=float)
SEED_MASK = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float)


# ------------------------------------------------------------------------------------------------ helpers
@pytest.mark.parametrize("crop, kernel", [(4, 3), (16, 3), (29, 3), (30, 3), (40, 5), (56, 5), (60, 7),
                                          (70, 7), (112, 11), (128, 13), (160, 17), (224, 23)])
def test_blur_kernel_is_a_tenth_of_the_crop_made_odd(crop, kernel):
    # ⌊0.1·crop⌋, +1 when even, at least 3: 112 -> 11 (odd stays), 128 -> 12 -> 13, 224 -> 22 -> 23
    assert foreground.blur_kernel(crop) == kernel


def test_gaussian_blur_of_a_delta_is_the_outer_product_of_the_kernel():
    # k = 3, σ = 1: weights e^{-1/2}, 1, e^{-1/2} over their sum 1 + 2e^{-1/2} = 2.213061
    w_side, w_mid = math.exp(-0.5) / (1 + 2 * math.exp(-0.5)), 1 / (1 + 2 * math.exp(-0.5))
    assert (w_side, w_mid) == pytest.approx((0.274069, 0.451863), abs=1e-6)
    delta = torch.zeros(1, 5, 5)
    delta[0, 2, 2] = 1.0
    out = foreground.gaussian_blur(delta, 3)[0].double().numpy()
    expected = np.zeros((5, 5))
    expected[1:4, 1:4] = np.outer([w_side, w_mid, w_side], [w_side, w_mid, w_side])
    np.testing.assert_allclose(out, expected, atol=1e-7)
    # at a corner, reflect padding mirrors without repeating the edge: row −1 is row 1, so the corner keeps
    # only w_mid² and its neighbours get w_side·w_mid (not w_side + w_mid, as edge replication would give)
    corner = torch.zeros(1, 4, 4)
    corner[0, 0, 0] = 1.0
    out = foreground.gaussian_blur(corner, 3)[0].double().numpy()
    expected = np.zeros((4, 4))
    expected[:2, :2] = [[w_mid * w_mid, w_mid * w_side], [w_side * w_mid, w_side * w_side]]
    np.testing.assert_allclose(out, expected, atol=1e-7)


@pytest.mark.parametrize("kernel, size", [(3, 6), (5, 7), (7, 9)])
def test_gaussian_blur_matches_an_explicit_sum(kernel, size):
    rng = np.random.default_rng(kernel)
    maps = rng.random((2, size, size + 1))
    out = foreground.gaussian_blur(torch.tensor(maps, dtype=torch.float64), kernel).numpy()
    for b in range(2):
        np.testing.assert_allclose(out[b], _np_blur(maps[b], kernel), rtol=1e-12, atol=1e-12)
    # a constant map stays constant (the weights sum to 1)
    flat = foreground.gaussian_blur(torch.full((1, size, size), 0.7, dtype=torch.float64), kernel)
    np.testing.assert_allclose(flat.numpy(), 0.7, rtol=1e-12)


def test_min_max_normalises_each_map_on_its_own():
    maps = torch.tensor([[[2.0, 4.0], [6.0, 3.0]], [[-1.0, -1.0], [1.0, 0.0]]], dtype=torch.float64)
    out = foreground.min_max(maps).numpy()
    # (x − min) / (max − min + 1e-8): map 1 spans 2..6, map 2 spans −1..1
    np.testing.assert_allclose(out[0], [[0.0, 0.5], [1.0, 0.25]], atol=1e-8)
    np.testing.assert_allclose(out[1], [[0.0, 0.0], [1.0, 0.5]], atol=1e-8)
    flat = foreground.min_max(torch.full((1, 2, 2), 3.0))  # no spread: zeros, not NaN (the eps)
    assert torch.equal(flat, torch.zeros(1, 2, 2))


def test_top_fraction_mask_marks_exactly_the_largest_scores():
    scores = torch.tensor([[[0.1, 0.9, 0.3], [0.8, 0.2, 0.7], [0.4, 0.6, 0.5]],
                           [[9.0, 1.0, 2.0], [3.0, 8.0, 4.0], [5.0, 6.0, 7.0]]])
    m = foreground.top_fraction_mask(scores, 0.5)  # ⌊0.5·9⌋ = 4 ones per map
    assert m.tolist() == [[[0, 1, 0], [1, 0, 1], [0, 1, 0]],    # 0.9, 0.8, 0.7, 0.6
                          [[1, 0, 0], [0, 1, 0], [0, 1, 1]]]    # 9, 8, 7, 6
    assert foreground.top_fraction_mask(scores, 0.3).sum(dim=(1, 2)).tolist() == [2, 2]  # ⌊2.7⌋
    assert foreground.top_fraction_mask(scores, 0.1).sum().item() == 0  # ⌊0.9⌋ = 0: an empty mask
    assert foreground.top_fraction_mask(scores, 1.0).sum(dim=(1, 2)).tolist() == [9, 9]


# --------------------------------------------------------------------------------------------- the clip
def test_seed_map_of_the_tiny_clip_is_amp_times_channel_sum():
    np.testing.assert_allclose(foreground.seed_map(_clip())[0].double().numpy(), SEED, rtol=1e-5, atol=1e-7)
    # consecutive differences only: frames (dark, bright, bright) move once in two steps -> half the map
    clip = _clip()
    shuffled = clip[:, :, [1, 0, 2]]
    np.testing.assert_allclose(foreground.seed_map(shuffled)[0].double().numpy(), SEED / 2, rtol=1e-5, atol=1e-7)
    one_step = clip[:, :, :2]  # one difference: amp · ΣRGB as well (mean over 1 step)
    np.testing.assert_allclose(foreground.seed_map(one_step)[0].double().numpy(), SEED, rtol=1e-5, atol=1e-7)
    still = clip[:, :, [0, 2, 0]]  # frames 0 and 2 are equal: no motion at all
    assert foreground.seed_map(still).abs().max().item() == 0.0


@pytest.mark.parametrize("rgb, expected", [
    ((1.0, 0.0, 0.0), 959),   # hue 0, S 1: hx = 1 -> level 10, clamped to 9; hy = 0.5 -> 5; V = 1 -> 9
    ((0.0, 1.0, 0.0), 299),   # hue 2π/3: hx = (−0.5 + 1)/2 = 0.25 -> 2; hy = (0.866 + 1)/2 = 0.933 -> 9; V -> 9
    ((0.0, 0.0, 1.0), 209),   # hue 4π/3: hx = 0.25 -> 2; hy = (−0.866 + 1)/2 = 0.067 -> 0; V -> 9
    ((0.5, 0.5, 0.5), 555),   # grey: S = 0, so hx = hy = 0.5 -> 5, 5; V = 0.5 -> 5
    ((0.0, 0.0, 0.0), 550),   # black: S = 0 (eps, no NaN); V = 0 -> 0
    ((0.75, 0.5, 0.25), 767),  # hue π/6, S 2/3: hx = 0.789 -> 7, hy = 0.667 -> 6; V = 0.75 -> 7.5 floors to 7
    ((0.85, 0.25, 0.65), 728),  # red max, g < b: hue (−0.4/0.6) mod 6 = 5.33 -> 320°; hx 0.770 -> 7, hy 0.273 -> 2
])
def test_colour_bins_paper_mode_by_hand(rgb, expected):
    frame = torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert foreground.colour_bins(frame, "paper").unique().tolist() == [expected]
    assert _np_bin(rgb) == expected  # the reference agrees with the hand derivation


def test_colour_bins_paper_mode_against_colorsys():
    rng = np.random.default_rng(3)
    rgb = rng.random((3, 12, 12))
    got = foreground.colour_bins(torch.tensor(rgb[None], dtype=torch.float32), "paper")[0].numpy()
    checked = 0
    for i in range(12):
        for j in range(12):
            h, s, v = colorsys.rgb_to_hsv(*rgb[:, i, j])
            levels = 10 * np.array([(s * math.cos(2 * math.pi * h) + 1) / 2, (s * math.sin(2 * math.pi * h) + 1) / 2, v])
            if np.abs(levels - np.round(levels)).min() < 1e-4:
                continue  # float32 may fall on either side of a level boundary
            assert got[i, j] == _np_bin(rgb[:, i, j]), (i, j, rgb[:, i, j])
            checked += 1
    assert checked > 130


def test_tiny_clip_bins_samples_posterior_and_mask_by_hand():
    clip = _clip()
    mean = clip.mean(dim=2)
    assert foreground.colour_bins(mean, "paper")[0].tolist() == BINS.tolist()
    assert [[_np_bin(mean[0, :, i, j].double().numpy()) for j in range(4)] for i in range(4)] == BINS.tolist()
    # the samples: the blurred, normalised seed map has a clear gap between its 8th and 9th largest values and
    # a unique minimum at the grey corner (so the samples do not depend on how ties are broken)
    seeds = _np_min_max(_np_blur(SEED, 3))
    ranked = np.sort(seeds.ravel())[::-1]
    assert ranked[7] - ranked[8] > 0.3 and ranked[-2] - ranked[-1] > 0.005
    assert set(np.argsort(-seeds.ravel())[:8]) == set(range(8)) and seeds.argmin() == 15
    got_seeds = foreground.min_max(foreground.gaussian_blur(foreground.seed_map(clip), 3))
    np.testing.assert_allclose(got_seeds[0].double().numpy(), seeds, atol=1e-5)
    # the posterior: blurred and normalised hand posterior; exact to float32 round-off
    assert (P_RED, P_BLUE) == pytest.approx((0.998860, 0.992072), abs=1e-6)
    expected = _np_min_max(_np_blur(POSTERIOR, 3))
    got = foreground.foreground_posterior(clip, "paper")[0].double().numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)
    # colours come from the time-averaged frame: with the dark frame first the mean colours are the same, and
    # the seed map is halved (one step of motion in two), which the min-max undoes, so nothing changes; the first
    # frame alone would put the moving reds in other value levels (0.9·0.7 = 0.63 -> 6, 0.9·0.78 = 0.70 -> 7)
    reordered = foreground.foreground_posterior(clip[:, :, [1, 0, 2]], "paper")[0].double().numpy()
    np.testing.assert_allclose(reordered, expected, atol=2e-6)
    # without the background's Laplace smoothing P(x|B) = 0 for red and blue, both posteriors would be 1 and the
    # blurred top-right corner would equal its neighbour (both 1.0); with it, blue (0.99207) pulls the corner down
    assert got[0, 3] < got[0, 2] - 5e-4
    # the mask: top ⌊0.5·16⌋ = 8 of that map; a clear gap between the 8th and 9th values
    ranked = np.sort(expected.ravel())[::-1]
    assert ranked[7] - ranked[8] > 0.1
    assert foreground.foreground_mask(clip, "fame", 0.5, "paper")[0].numpy().tolist() == MASK.tolist()
    assert foreground.foreground_mask(clip, "seed", 0.5)[0].numpy().tolist() == SEED_MASK.tolist()
    # β = 0.25: the top 4 of the same map: (0,0), (1,0), (2,0), (3,0) and (0,1) tie at the maximum 1.0, so only
    # the count and membership in that set are determined
    small = foreground.foreground_mask(clip, "fame", 0.25, "paper")[0].numpy()
    assert small.sum() == 4 and set(np.flatnonzero(small)) <= {0, 1, 4, 8, 12}


def test_posterior_is_per_clip_in_a_batch():
    """Each clip of a batch gets its own samples and histograms. The second clip has a red pixel where the first
    has the blue one: its 8 foreground samples are all red, P(red|x) = 1 / (1 + 1/1001) on every red pixel and 0
    elsewhere. Pooled histograms would change the first clip's blue level (1/16 vs 15/16 instead of 1/8 vs 7/8)."""
    second = [row[:] for row in LAYOUT]
    second[0][3] = RED
    both = torch.cat([_clip(), _clip(second)])
    post = foreground.foreground_posterior(both, "paper").double().numpy()
    np.testing.assert_allclose(post[0], _np_min_max(_np_blur(POSTERIOR, 3)), atol=2e-6)
    p_red_only = 1 / (1 + 1 / 1001)
    posterior2 = np.where(np.array(BINS) == 285, 0.0, p_red_only)
    posterior2[3, 3] = 0.0  # grey
    np.testing.assert_allclose(post[1], _np_min_max(_np_blur(posterior2, 3)), atol=2e-6)
    assert not np.allclose(post[0], post[1], atol=1e-4)
