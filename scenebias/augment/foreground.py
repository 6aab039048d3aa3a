"""FAME's foreground-background separation and merge (Ding et al., CVPR 2022, §3.2–3.3, eqs. 2–6; Tables 3, 6).

Separation (one mask per clip, constant over time):
  seed map S = mean_t Σ_c |X[c, t+1] − X[c, t]|, blurred (kernel ⌊0.1·crop⌋ made odd, σ = k/3), min-max
  normalised; foreground colour samples = the top ⌊0.5·HW⌋ pixels of S, background = the bottom ⌊0.1·HW⌋;
  colours of the time-averaged frame in a 10×10×10 HSV-disk histogram, background Laplace-smoothed (+1);
  P(F|x) = P(x|F) / (P(x|F) + P(x|B)), blurred, min-max normalised; the top ⌊β·HW⌋ pixels form the mask M.
Merging (eq. 6): X_merge = X ⊙ M + Y ⊙ (1 − M), Y another clip of the batch, before colour augmentation.

Paper vs. code (docs/methods.md, "moco+fame"): `colour_mode="paper"` (default) is the paper's reading: the hue angle
in radians, truncated 0-based levels (see `foreground_posterior`). `"official-code"` is the authors' FAME module
(Mark12Ding/FAME, moco/loader.py) step by step, see `official_posterior`: kornia's HSV, the hue (already radians)
times 2π again (it wraps about six times), rounded 1-based levels (half to even) in bins h + 10(s'−1) + 100(v'−1),
histograms from torch.topk seed samples normalised by (sum + 1e-8), no epsilon in the posterior, blur kernel
⌊0.1·crop⌋//2·2+1. Table 6 masks (`foreground_mask`'s `mask`): `gauss`, `seed`, `grid`, `fame`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BETA = 0.5                # β: the mask is the top ⌊β·HW⌋ pixels (FAME eq. 4; Table 3 sweeps it)
FOREGROUND_SAMPLES = 0.5  # share of pixels with the largest seed values taken as foreground colours
BACKGROUND_SAMPLES = 0.1  # share with the smallest seed values taken as background colours
COLOUR_LEVELS = 10        # per HSV-disk axis: 10 × 10 × 10 = 1000 colour bins
EPS = 1e-8
# The sample shares, the colour levels and both blurs are the authors' code's; the paper states eqs. 2–4 only.


def blur_kernel(crop: int) -> int:
    """The blur kernel of both blurs (`paper` mode): ⌊0.1·crop⌋ made odd, at least 3."""
    k = int(0.1 * crop)
    return max(k + 1 - k % 2, 3)


def gaussian_blur(maps: torch.Tensor, kernel: int) -> torch.Tensor:
    """Blur (B, H, W) maps with a Gaussian of size `kernel`, σ = kernel / 3 (reflect padding).

    Hand-written on purpose: torchvision's `gaussian_blur` with the same kernel and σ builds its weights
    differently and differs by ~1e-7–3e-7, which can reorder near-tied pixels in the top-⌊β·HW⌋ selection and so
    change FAME's masks and every result computed from them."""
    sigma = kernel / 3
    x = torch.arange(kernel, dtype=maps.dtype, device=maps.device) - (kernel - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).view(1, 1, -1)
    b, h, w = maps.shape
    pad = kernel // 2
    out = F.pad(maps.reshape(b, 1, h, w), (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(out, g.view(1, 1, 1, -1))
    return F.conv2d(out, g.view(1, 1, -1, 1)).reshape(b, h, w)


def min_max(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1)
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo + EPS)).view_as(maps)


def top_fraction_mask(scores: torch.Tensor, beta: float) -> torch.Tensor:
    """1 at exactly the ⌊β·H·W⌋ highest scores of each (H, W) map, 0 elsewhere (no Python loops)."""
    b, h, w = scores.shape
    count = int(math.floor(beta * h * w))
    mask = torch.zeros(b, h * w, dtype=scores.dtype, device=scores.device)
    if count > 0:
        mask.scatter_(1, scores.flatten(1).topk(count, dim=1).indices, 1.0)
    return mask.view(b, h, w)


def seed_map(clips: torch.Tensor) -> torch.Tensor:
    """S = mean over t of Σ_c |X[c, t+1] − X[c, t]| for clips (B, C, T, H, W) -> (B, H, W)."""
    return (clips[:, :, 1:] - clips[:, :, :-1]).abs().sum(dim=1).mean(dim=1)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> hue in radians [0, 2π), saturation and value in [0, 1]."""
    r, g, b = rgb.unbind(1)
    value, argmax = rgb.max(dim=1)
    delta = value - rgb.min(dim=1).values
    saturation = delta / (value + EPS)
    safe = delta + EPS
    hue = torch.where(argmax == 0, ((g - b) / safe) % 6,
                      torch.where(argmax == 1, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(delta > 0, hue, torch.zeros_like(hue)) * (math.pi / 3)
    return torch.stack([hue, saturation, value], dim=1)


def colour_bins(mean_frame: torch.Tensor, colour_mode: str) -> torch.Tensor:
    """Colour-bin index of each pixel of the time-averaged frames (B, 3, H, W) -> (B, H, W): in [0, 1000) for
    `paper` (truncated 0-based levels of the HSV disk), the authors' [1, 999] for `official-code`."""
    if colour_mode == "official-code":
        return official_colour_bins(mean_frame)
    hue, sat, val = rgb_to_hsv(mean_frame.clamp(0, 1)).unbind(1)
    hx, hy = (sat * torch.cos(hue) + 1) / 2, (sat * torch.sin(hue) + 1) / 2
    q = [(c * COLOUR_LEVELS).long().clamp(0, COLOUR_LEVELS - 1) for c in (hx, hy, val)]
    return (q[0] * COLOUR_LEVELS + q[1]) * COLOUR_LEVELS + q[2]


# ------------------------------------------------- colour_mode="official-code": the authors' FAME module, step by step
def official_blur_kernel(crop: int) -> int:
    """The authors' kernel ⌊0.1·crop⌋//2·2+1: the same as `blur_kernel` from 20 px up, 1 (no blur) below."""
    return int(0.1 * crop) // 2 * 2 + 1


def official_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """kornia's rgb_to_hsv, which the authors call: (B, 3, H, W) -> hue 2π·((h6 / 6) mod 1) in [0, 2π], h6 the
    sextant hue over the channel range (a zero range divides by 1; the first channel wins a tie for the max),
    saturation range / (max + 1e-8), value max. Float rounding of the mod can give exactly 2π."""
    value, argmax = rgb.max(dim=1)
    delta = value - rgb.min(dim=1).values
    rc, gc, bc = (value.unsqueeze(1) - rgb).unbind(1)
    span = torch.where(delta == 0, torch.ones_like(delta), delta)
    sextant = torch.stack([bc - gc, (rc - bc) + 2 * span, (gc - rc) + 4 * span], dim=1) / span.unsqueeze(1)
    hue = 2 * math.pi * ((sextant.gather(1, argmax.unsqueeze(1)).squeeze(1) / 6) % 1)
    return torch.stack([hue, delta / (value + EPS), value], dim=1)


def official_colour_bins(mean_frame: torch.Tensor) -> torch.Tensor:
    """The authors' colour bins (B, 3, H, W) -> (B, H, W): θ = hue·2π (the hue is already in radians),
    hx = (s·cos θ + 1)/2, hy = (s·sin θ + 1)/2; per axis the rounded 1-based level round(x·9 + 1) in 1..10
    (torch.round: half to even, so a grey pixel's hx = 0.5 gives round(5.5) = 6); bin h + 10(s'−1) + 100(v'−1).
    The index lies in [1, 999]: h = s' = 10 would need s > 1, so the code's 1000-bin histograms never overflow
    (bin 0 stays empty). Clamping to [0, 1] first changes nothing for valid pixels and keeps v' ≤ 10 otherwise."""
    hue, sat, val = official_hsv(mean_frame.clamp(0, 1)).unbind(1)
    theta = hue * 2 * math.pi
    hx, hy = (sat * torch.cos(theta) + 1) / 2, (sat * torch.sin(theta) + 1) / 2
    h, s, v = (torch.round(c * (COLOUR_LEVELS - 1) + 1) for c in (hx, hy, val))
    return (h + (s - 1) * COLOUR_LEVELS + (v - 1) * COLOUR_LEVELS ** 2).long()


def official_likelihood(bins: torch.Tensor, samples: torch.Tensor, smoothing: float,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """P(x | ·) per pixel (B, HW) as the authors compute it: a 1000-bin histogram of the bins of the sampled pixels
    (B, K), plus `smoothing` in every bin, divided by (its sum + 1e-8)."""
    hist = torch.full((bins.shape[0], COLOUR_LEVELS ** 3), float(smoothing), dtype=dtype, device=bins.device)
    hist.scatter_add_(1, bins.gather(1, samples), torch.ones(samples.shape, dtype=dtype, device=bins.device))
    return (hist / (hist.sum(dim=1, keepdim=True) + EPS)).gather(1, bins)


def official_posterior(clips: torch.Tensor) -> torch.Tensor:
    """The authors' soft mask (FAME eqs. 3–5 as their code computes them) for clips (B, C, T, H, W) -> (B, H, W).

    Where it differs from `paper` (`foreground_posterior`): bins from `official_colour_bins`; foreground and
    background samples are torch.topk of the seed map (largest ⌊0.5·HW⌋, smallest ⌊0.1·HW⌋), not an argsort, so
    ties resolve as the code's; histograms are divided by (sum + 1e-8); P(F|x) = P(x|F) / (P(x|B) + P(x|F)) with no
    epsilon (P(x|B) > 0 thanks to the +1 smoothing); the blur kernel is `official_blur_kernel`. The min-max is the
    same: (x − min) / (max(x − min) + 1e-8), the epsilon on the max of the shifted map only."""
    b, _, _, h, w = clips.shape
    kernel = official_blur_kernel(min(h, w))
    seeds = min_max(gaussian_blur(seed_map(clips), kernel)).flatten(1)
    bins = official_colour_bins(clips.mean(dim=2)).flatten(1)
    fg = seeds.topk(int(FOREGROUND_SAMPLES * h * w), dim=1).indices
    bg = seeds.topk(int(BACKGROUND_SAMPLES * h * w), dim=1, largest=False).indices
    dtype = torch.promote_types(torch.float32, seeds.dtype)  # the code's float32; float64 stays float64
    p_fg, p_bg = official_likelihood(bins, fg, 0.0, dtype), official_likelihood(bins, bg, 1.0, dtype)
    return min_max(gaussian_blur((p_fg / (p_bg + p_fg)).view(b, h, w), kernel))


def foreground_posterior(clips: torch.Tensor, colour_mode: str = "paper") -> torch.Tensor:
    """P(F | colour) per pixel (B, H, W) from colour histograms of the seed map's extremes (FAME eqs. 3–5), blurred
    and min-max normalised; `official-code` is `official_posterior`, the authors' code."""
    if colour_mode == "official-code":
        return official_posterior(clips)
    b, _, _, h, w = clips.shape
    kernel = blur_kernel(min(h, w))
    seeds = min_max(gaussian_blur(seed_map(clips), kernel)).flatten(1)
    bins = colour_bins(clips.mean(dim=2), colour_mode).flatten(1)
    order = seeds.argsort(dim=1, descending=True)
    n_fg, n_bg = int(FOREGROUND_SAMPLES * h * w), int(BACKGROUND_SAMPLES * h * w)
    n_bins = COLOUR_LEVELS ** 3
    hist_fg = torch.zeros(b, n_bins, device=clips.device).scatter_add_(
        1, bins.gather(1, order[:, :n_fg]), torch.ones(b, n_fg, device=clips.device))
    hist_bg = torch.ones(b, n_bins, device=clips.device).scatter_add_(  # Laplace smoothing: +1 per bin
        1, bins.gather(1, order[:, -n_bg:]), torch.ones(b, n_bg, device=clips.device))
    p_fg = (hist_fg / hist_fg.sum(dim=1, keepdim=True)).gather(1, bins)
    p_bg = (hist_bg / hist_bg.sum(dim=1, keepdim=True)).gather(1, bins)
    posterior = (p_fg / (p_fg + p_bg + EPS)).view(b, h, w)
    return min_max(gaussian_blur(posterior, kernel))


def gaussian_prior(b: int, h: int, w: int, device=None) -> torch.Tensor:
    """Table 6 `gauss`: a centred 2-D Gaussian (σ = a quarter of the side)."""
    y = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2
    x = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2
    g = torch.exp(-(y[:, None] ** 2 / (2 * (h / 4) ** 2) + x[None, :] ** 2 / (2 * (w / 4) ** 2)))
    return g.expand(b, h, w)


def grid_mask(clips: torch.Tensor, cells: int = 4) -> torch.Tensor:
    """Table 6 `grid`: a 4×4 grid; the 8 cells with the largest seed-map sums are foreground."""
    b, _, _, h, w = clips.shape
    sums = F.adaptive_avg_pool2d(seed_map(clips).unsqueeze(1), cells).flatten(1)
    chosen = torch.zeros_like(sums).scatter_(1, sums.topk(cells * cells // 2, dim=1).indices, 1.0)
    return F.interpolate(chosen.view(b, 1, cells, cells), size=(h, w), mode="nearest").squeeze(1)


def foreground_mask(clips: torch.Tensor, mask: str = "fame", beta: float = BETA,
                    colour_mode: str = "paper") -> torch.Tensor:
    """The binary foreground mask M (B, H, W) of each clip, constant over time."""
    b, _, _, h, w = clips.shape
    if mask == "grid":
        return grid_mask(clips)
    if mask == "gauss":
        scores = gaussian_prior(b, h, w, clips.device)
    elif mask == "seed":
        scores = min_max(gaussian_blur(seed_map(clips), blur_kernel(min(h, w))))
    else:
        scores = foreground_posterior(clips, colour_mode)
    return top_fraction_mask(scores, beta)


def merge(foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """FAME eq. 6: X ⊙ M + Y ⊙ (1 − M); a (B, H, W) mask is broadcast over channels and time, a (B, T, H, W)
    one (the oracle's per-frame actor masks) over channels."""
    m = (mask[:, None, None] if mask.dim() == 3 else mask[:, None]).to(foreground.dtype)
    return foreground * m + background * (1 - m)


def actor_free_scene(clips: torch.Tensor, actor_masks: torch.Tensor) -> torch.Tensor:
    """The scene of each clip without its actor (B, C, T, H, W): per pixel the mean over the frames where the
    ground-truth actor mask is off (exact for the generator's static scenes, whose actor moves), the clip's mean
    where the actor covers a pixel in every frame. The oracle's background: a perfect separation pastes the actor
    onto the partner's scene, not onto the partner's scene *and actor*."""
    free = (~actor_masks).unsqueeze(1).to(clips.dtype)  # (B, 1, T, H, W)
    seen = free.sum(dim=2, keepdim=True)
    scene = (clips * free).sum(dim=2, keepdim=True) / seen.clamp_min(1)
    scene = torch.where(seen > 0, scene, clips.mean(dim=2, keepdim=True))
    return scene.expand_as(clips)

