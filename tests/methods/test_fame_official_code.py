"""FAME `colour_mode="official-code"`: each step of the authors' mask (Mark12Ding/FAME, moco/loader.py) against values
computed by hand on tiny inputs, and `paper` mode pinned to a hand re-derivation so that it stays as it was.

Expectations are computed here in plain Python / numpy, never by calling the function under test."""
import math

import numpy as np
import pytest
import torch

from scenebias.augment import foreground, pairing
from scenebias.models.backbones import build_backbone
from scenebias.plugins import load_methods

TWO_PI_F32 = float(np.float32(2 * math.pi))


def _pixels(*rgb, dtype=torch.float32):
    """A (1, 3, 1, N) frame of the given RGB pixels."""
    return torch.tensor(rgb, dtype=dtype).T.reshape(1, 3, 1, len(rgb))


def _authors_bin(r, g, b):
    """The authors' bin of one pixel in double precision: kornia's hue (radians), θ = hue·2π, rounded 1-based
    levels round(x·9 + 1) (Python's round is half to even, as torch.round), bin h + 10(s'−1) + 100(v'−1).
    Also returns the pre-rounding values, so callers can skip points on a level boundary."""
    mx, mn = max(r, g, b), min(r, g, b)
    delta = mx - mn
    sat, span = delta / (mx + 1e-8), delta or 1.0
    sextant = (g - b) / span if r == mx else ((b - r) / span + 2 if g == mx else (r - g) / span + 4)
    theta = 2 * math.pi * ((sextant / 6) % 1.0) * 2 * math.pi
    raw = [x * 9 + 1 for x in ((sat * math.cos(theta) + 1) / 2, (sat * math.sin(theta) + 1) / 2, mx)]
    h, s, v = (round(x) for x in raw)
    return h + 10 * (s - 1) + 100 * (v - 1), raw


# ------------------------------------------------------------------------------------------- blur kernel
@pytest.mark.parametrize("crop, kernel", [(8, 1), (19, 1), (20, 3), (32, 3), (112, 11), (224, 23)])
def test_official_blur_kernel_is_floor_tenth_made_odd_without_a_minimum(crop, kernel):
    assert foreground.official_blur_kernel(crop) == kernel  # ⌊0.1·crop⌋ // 2 · 2 + 1
    if kernel == 1:
        x = torch.rand(2, 5, 6, generator=torch.Generator().manual_seed(0))
        assert torch.equal(foreground.gaussian_blur(x, kernel), x)  # a 1-tap Gaussian: no blur at all


# ------------------------------------------------------------------------------------------ HSV and hue
def test_official_hsv_hue_at_zero_just_below_two_pi_and_rounded_onto_two_pi():
    b_ulp = float(np.float32(0.5) + np.float32(2 ** -24))  # the float32 just above 0.5
    hsv = foreground.official_hsv(_pixels((1, 0, 0), (1, 0, 0.01), (1, 0.5, 0.5), (1, 0.5, b_ulp)))[0, :, 0]
    hue, sat, val = hsv.tolist()
    assert hue[0] == 0.0 and hue[2] == 0.0  # red; g == b exactly gives a zero sextant
    assert hue[1] == pytest.approx(2 * math.pi * (1 - 0.01 / 6), rel=1e-6)  # (g − b)/Δ = −0.01, mod 1 wraps
    assert hue[1] < 2 * math.pi
    # b one ulp above g: sextant −2^-23, /6 mod 1 = 1 − 3.3e-9 rounds to 1.0 in float32 -> exactly 2π (kornia 0.6
    # as the authors ran it; kornia 0.9 folds this to 0)
    assert hue[3] == TWO_PI_F32
    assert sat == pytest.approx([1 / (1 + 1e-8), 1 / (1 + 1e-8), 0.5, 0.5])  # Δ / (max + 1e-8)
    assert val == [1.0, 1.0, 1.0, 1.0]


# ------------------------------------------------------------------------------- levels and bin indices
def test_official_bins_of_hand_computed_pixels():
    pixels = [(1, 0, 0), (1, 0, 0.01), (0.5, 0.5, 0.5), (0, 0, 0), (1, 1, 1), (1, 0.5, 0.5),
              (1, 0.5, float(np.float32(0.5) + np.float32(2 ** -24))), (0.75, 0.375, 0.375)]
    # by hand: red: hx = 1 -> round(10) = 10, hy = 0.5 -> round(5.5) = 6, v -> 10: 10 + 50 + 900 = 960.
    # (1, 0, 0.01): θ = 2π(1 − 0.01/6)·2π ≡ 1.7136 rad: hx = 0.4288 -> round(4.86) = 5, hy = 0.9949 -> 10: 995.
    # grey 0.5: hx = hy = v = 0.5 -> round(5.5) = 6 each (half to even; round(4.5) + 1 would give 5): 556.
    # black: 6, 6, v' = 1: 56. white: 6, 6, 10: 956. (1, .5, .5): s = .5, θ = 0: hx = .75 -> round(7.75) = 8: 958.
    # hue 2π (b one ulp above g): θ = 4π² ≡ 1.7793 rad: hx = 0.4483 -> 5, hy = 0.7446 -> round(7.70) = 8: 975.
    # (.75, .375, .375): s = .5, hx = .75 -> 8, hy -> 6, v = .75 -> round(7.75) = 8: 8 + 50 + 700 = 758.
    expected = [960, 995, 556, 56, 956, 958, 975, 758]
    assert [_authors_bin(*p)[0] for p in pixels] == expected  # the double-precision derivation agrees
    assert foreground.official_colour_bins(_pixels(*pixels)).flatten().tolist() == expected
    assert foreground.colour_bins(_pixels(*pixels), "official-code").flatten().tolist() == expected


def test_official_level_rounds_half_to_even():
    v = np.float32(1 / 6)
    pre = np.float32(v * np.float32(9)) + np.float32(1)
    assert pre == np.float32(2.5)  # float32: 9·fl(1/6) rounds to exactly 1.5
    # grey (v, v, v): hx = hy = 0.5 -> 6, 6; v' = round(2.5) = 2 (half to even; half up would give 3): 156
    assert foreground.official_colour_bins(_pixels((float(v),) * 3)).item() == 6 + 10 * 5 + 100 * 1


def test_official_bins_on_a_colour_grid_stay_in_1_to_999():
    steps = [k / 8 for k in range(9)]
    rgb = [(r, g, b) for r in steps for g in steps for b in steps]
    bins = foreground.official_colour_bins(_pixels(*rgb)).flatten().tolist()
    checked = 0
    for colour, got in zip(rgb, bins):
        want, raw = _authors_bin(*colour)
        if all(abs(x % 1 - 0.5) > 1e-4 or x % 1 == 0.5 for x in raw):  # skip float32/float64 boundary cases
            assert got == want, colour
            checked += 1
    assert checked > 600
    assert 1 <= min(bins) and max(bins) <= 999  # levels reach 10, never 11; h = s' = 10 would need s > 1
    levels = [((x - 1) % 10 + 1, (x - 1) // 10 % 10 + 1, (x - 1) // 100 + 1) for x in bins]
    assert max(max(t) for t in levels) == 10 and min(min(t) for t in levels) == 1


# --------------------------------------------- histograms, posterior, min-max and the β cut on a 4×5 clip
GREY, RED, DARK = (0.5, 0.5, 0.5), (0.75, 0.375, 0.375), (0.25, 0.25, 0.25)  # bins 556, 758, 256


def _hand_clip():
    """4×5 pixels, two frames (float64). Pixel p moves by ±p/256 on every channel, so the seed map is 6p/256:
    distinct, increasing with p; the time average is the colour itself (dyadic values, exact). Foreground samples
    = the top ⌊0.5·20⌋ = 10 (p = 10..19), background = the bottom ⌊0.1·20⌋ = 2 (p = 0, 1). Crop 4 -> kernel 1."""
    colours = [GREY] + [DARK] * 9 + [GREY] * 6 + [RED] * 4
    mean = torch.tensor(colours, dtype=torch.float64).T.reshape(3, 4, 5)
    shift = (torch.arange(20, dtype=torch.float64) / 256).reshape(1, 4, 5)
    return torch.stack([mean - shift, mean + shift], dim=1).unsqueeze(0)  # (1, 3, 2, 4, 5)


def _hand_soft_mask(hist_eps=1e-8, posterior_eps=0.0, min_max_eps=1e-8):
    """The authors' placement by default: histograms / (sum + 1e-8), no epsilon in the posterior, min-max
    (x − min) / (max − min + 1e-8). Keyed by bin: 556 grey, 758 red, 256 dark."""
    # P(x|F): fg bins 556 ×6, 758 ×4 over (10 + eps); P(x|B): 1 per bin + {556: 1, 256: 1}, sum 1002, over (1002 + eps)
    pf = {556: 6 / (10 + hist_eps), 758: 4 / (10 + hist_eps), 256: 0.0}
    pb = {556: 2 / (1002 + hist_eps), 758: 1 / (1002 + hist_eps), 256: 2 / (1002 + hist_eps)}
    post = {k: pf[k] / (pb[k] + pf[k] + posterior_eps) for k in pf}
    top = max(post.values())  # the red bin; the min is 0 (dark pixels: P(x|F) = 0)
    return {k: (v - 0.0) / (top - 0.0 + min_max_eps) for k, v in post.items()}


def test_official_posterior_histograms_and_epsilons_by_hand():
    clip = _hand_clip()
    bins = foreground.official_colour_bins(clip.mean(dim=2)).flatten().tolist()
    assert bins == [556] + [256] * 9 + [556] * 6 + [758] * 4
    soft = _hand_soft_mask()
    expected = torch.tensor([soft[556]] + [soft[256]] * 9 + [soft[556]] * 6 + [soft[758]] * 4,
                            dtype=torch.float64).view(1, 4, 5)
    got = foreground.official_posterior(clip)
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(foreground.foreground_posterior(clip, "official-code"), expected, rtol=1e-13, atol=0)
    assert 1 - got[0, 3, 4].item() == pytest.approx(1e-8 / (1e-8 + 0.4 / (0.4 + 0.4 / 401)), rel=1e-3)  # b/(b+eps)
    # each other epsilon placement misses that expectation by several times rtol 1e-13
    for other in (dict(hist_eps=0.0), dict(posterior_eps=1e-8), dict(min_max_eps=0.0)):
        assert abs(_hand_soft_mask(**other)[556] - soft[556]) > 5e-13, other


def test_official_mask_tie_at_the_beta_cut():
    clip = _hand_clip()
    m = foreground.foreground_mask(clip, "fame", 0.5, "official-code").flatten()
    # ⌊0.5·20⌋ = 10 pixels: the 4 red ones (highest), then 6 of the 7 tied grey ones; no dark pixel
    assert m.sum().item() == 10
    assert m[16:].tolist() == [1.0] * 4
    grey = [0] + list(range(10, 16))
    assert sum(m[grey].tolist()) == 6
    assert m[1:10].sum().item() == 0


def test_min_max_epsilon_on_the_max_of_the_shifted_map_only():
    x = torch.tensor([[[3.0, 3.0 + 2 ** -26]]], dtype=torch.float64)
    lo_gap = 2 ** -26
    torch.testing.assert_close(foreground.min_max(x), torch.tensor([[[0.0, lo_gap / (lo_gap + 1e-8)]]],
                                                             dtype=torch.float64), rtol=1e-15, atol=0)
    assert torch.equal(foreground.min_max(torch.full((1, 2, 2), 0.7)), torch.zeros(1, 2, 2))  # flat map: 0, not NaN


# ------------------------------------------------------------------------------------------------ partner
def _objective(colour_mode, partner):
    spec = load_methods().get("moco+fame")
    return spec.build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16, "beta": 0.0,
                                                            "colour_mode": colour_mode, "partner": partner})


def _partners(objective, seed, n=8):
    clips = (torch.arange(n, dtype=torch.float32) / 8).view(n, 1, 1, 1, 1).expand(n, 3, 2, 8, 8).contiguous()
    out = objective.fame(clips, clips, torch.Generator().manual_seed(seed))  # β = 0: all background
    return (out[:, 0, 0, 0, 0] * 8).round().long().tolist()


def test_official_code_partner_is_the_partner_option():
    """The colour mode chooses the mask only; `partner` chooses the background: `permutation` is the authors'
    plain randperm (a clip can keep its own background), `derangement` the paper's "other videos"."""
    fixed_point = False
    code = _objective("official-code", "permutation")
    paper_partner = _objective("official-code", "derangement")
    for seed in range(10):
        want = torch.randperm(8, generator=torch.Generator().manual_seed(seed)).tolist()
        assert _partners(code, seed) == want
        fixed_point |= any(i == p for i, p in enumerate(want))
        got = _partners(paper_partner, seed)
        assert got == pairing.derangement(8, torch.Generator().manual_seed(seed)).tolist()
        assert all(i != p for i, p in enumerate(got))
    assert fixed_point  # a clip can be its own background, as in the authors' code


def test_paper_mode_partner_unchanged():
    assert load_methods().get("moco+fame").defaults["colour_mode"] == "paper"
    assert load_methods().get("moco+fame").defaults["partner"] == "derangement"
    paper = _objective("paper", "derangement")
    for seed in range(10):
        got = _partners(paper, seed)
        assert got == pairing.derangement(8, torch.Generator().manual_seed(seed)).tolist()
        assert all(i != p for i, p in enumerate(got))
    perm = _objective("paper", "permutation")
    assert _partners(perm, 3) == torch.randperm(8, generator=torch.Generator().manual_seed(3)).tolist()


# ----------------------------------------------------------------------------- paper mode, by hand (numpy)
def _paper_bins_np(frame):
    """Paper reading: hue in radians, hx = (s cos h + 1)/2, hy = (s sin h + 1)/2, ⌊x·10⌋ clamped to 9."""
    r, g, b = frame
    mx, mn = frame.max(0), frame.min(0)
    delta = mx - mn
    safe = delta + 1e-8
    hue = np.where(frame.argmax(0) == 0, ((g - b) / safe) % 6,
                   np.where(frame.argmax(0) == 1, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = np.where(delta > 0, hue, 0) * (math.pi / 3)
    sat = delta / (mx + 1e-8)
    q = [np.clip(np.floor(x * 10), 0, 9).astype(int)
         for x in ((sat * np.cos(hue) + 1) / 2, (sat * np.sin(hue) + 1) / 2, mx)]
    return (q[0] * 10 + q[1]) * 10 + q[2], [x * 10 for x in ((sat * np.cos(hue) + 1) / 2,
                                                             (sat * np.sin(hue) + 1) / 2, mx)]


def _blur_np(x, k=3):
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-t ** 2 / (2 * (k / 3) ** 2))
    g /= g.sum()
    p = np.pad(x, k // 2, mode="reflect")
    rows = sum(g[i] * p[:, i:i + x.shape[1]] for i in range(k))
    return sum(g[i] * rows[i:i + x.shape[0], :] for i in range(k))


def _min_max_np(x):
    return (x - x.min()) / (x.max() - x.min() + 1e-8)


def test_paper_bins_of_hand_computed_pixels():
    # red: hue 0 -> hx = 1 -> ⌊10⌋ clamped 9, hy = .5 -> 5, v 9: 959; grey .5: 555; black: 550;
    # green: hue 2π/3 -> hx = .25 -> 2, hy = .933 -> 9: 299; blue: hue 4π/3 -> hx 2, hy = .067 -> 0: 209
    px = _pixels((1, 0, 0), (0.5, 0.5, 0.5), (0, 0, 0), (0, 1, 0), (0, 0, 1))
    assert foreground.colour_bins(px, "paper").flatten().tolist() == [959, 555, 550, 299, 209]


def test_paper_posterior_and_mask_equal_a_numpy_rederivation():
    clip = torch.rand(1, 3, 3, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = clip[0].numpy()
    seed = np.abs(np.diff(x, axis=1)).sum(0).mean(0)
    seeds = _min_max_np(_blur_np(seed)).ravel()
    bins, raw = _paper_bins_np(x.mean(1))
    assert all(abs(v % 1) > 1e-4 and abs(v % 1 - 1) > 1e-4 for a in raw for v in a.ravel() if v < 10)
    bins = bins.ravel()
    assert foreground.colour_bins(clip.mean(dim=2), "paper").flatten().tolist() == bins.tolist()
    order = np.argsort(-seeds, kind="stable")
    fg, bg = bins[order[:32]], bins[order[-6:]]  # ⌊0.5·64⌋, ⌊0.1·64⌋
    hist_fg, hist_bg = np.bincount(fg, minlength=1000), np.bincount(bg, minlength=1000) + 1.0
    p_fg, p_bg = (hist_fg / hist_fg.sum())[bins], (hist_bg / hist_bg.sum())[bins]
    post = _min_max_np(_blur_np((p_fg / (p_fg + p_bg + 1e-8)).reshape(8, 8)))
    got = foreground.foreground_posterior(clip, "paper")
    np.testing.assert_allclose(got[0].double().numpy(), post, rtol=0, atol=1e-5)
    cut = np.sort(post.ravel())[::-1]
    assert cut[31] - cut[32] > 1e-4  # no near-tie at the β = 0.5 cut
    want = (post >= cut[31]).astype(np.float32)
    assert np.array_equal(foreground.foreground_mask(clip, "fame", 0.5, "paper")[0].numpy(), want)
