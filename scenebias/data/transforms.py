"""Clip transforms built on `torchvision.transforms.v2.functional`, with explicitly sampled parameters.

Every random parameter is drawn from a caller-supplied `torch.Generator` (never the global RNG), and
each clip's parameters are applied identically to all of its frames (temporally consistent), as in the
FAME / MoCo video code.

Layouts: a clip is (C, T, H, W) float in [0, 1]; a batch is (B, C, T, H, W). The spatial helpers take
(T, C, H, W) frame stacks (the layout torchvision treats as a batch of images) and are used by
`ClipDataset`. Colour augmentation runs on batches, apart from the dataset, because FAME merges the
clips of a batch before colour augmentation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as F

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


# ============================================================================================ spatial
@dataclass(frozen=True)
class CropParams:
    top: int
    left: int
    height: int
    width: int
    flip: bool = False


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator, lo: int, hi_exclusive: int) -> int:
    return int(torch.randint(lo, hi_exclusive, (), generator=g))


def sample_resized_crop(height: int, width: int, generator: torch.Generator,
                        scale: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """RandomResizedCrop's parameter sampling (torchvision's algorithm: 10 tries, then a central crop),
    drawn from `generator`. Returns (top, left, h, w)."""
    area = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(generator, scale[0], scale[1])
        aspect = math.exp(_uniform(generator, log_r[0], log_r[1]))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = _randint(generator, 0, height - h + 1)
            left = _randint(generator, 0, width - w + 1)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_spatial(height: int, width: int, generator: torch.Generator, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
                   flip_p: float = 0.5) -> CropParams:
    """Random resized crop + horizontal flip parameters for one clip."""
    top, left, h, w = sample_resized_crop(height, width, generator, scale, ratio)
    flip = float(torch.rand((), generator=generator)) < flip_p
    return CropParams(top, left, h, w, flip)


def apply_spatial(frames: torch.Tensor, params: CropParams, size: int) -> torch.Tensor:
    """(T, C, H, W) -> (T, C, size, size): the same crop (+ flip) on every frame."""
    out = F.resized_crop(frames, params.top, params.left, params.height, params.width, [size, size],
                         antialias=True)
    return F.horizontal_flip(out) if params.flip else out


def resize_center_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(T, C, H, W) -> (T, C, size, size): resize the short side to `size`, then a centre crop."""
    h, w = frames.shape[-2:]
    if min(h, w) != size:
        frames = F.resize(frames, [size], antialias=True)
    return F.center_crop(frames, [size, size])


# ============================================================================================ colour
def blur_kernel_size(crop: int) -> int:
    """floor(0.1 * crop) made odd, at least 3 (FAME / MoCo v2)."""
    k = int(0.1 * crop)
    if k % 2 == 0:
        k += 1
    return max(k, 3)


def colour_augment(x: torch.Tensor, generator: torch.Generator, jitter: tuple[float, float, float, float] =
                   (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8, p_gray: float = 0.2, p_blur: float = 0.5,
                   sigma: tuple[float, float] = (0.1, 2.0)) -> torch.Tensor:
    """Per clip, temporally consistent colour augmentation of a batch (B, C, T, H, W) float in [0, 1].

    For each clip: ColorJitter(brightness, contrast, saturation, hue) with probability p_jitter (factors
    drawn once per clip, the four ops in a random order as torchvision does), grayscale with probability
    p_gray, Gaussian blur with probability p_blur (kernel floor(0.1*crop) made odd, sigma ~ U(0.1, 2) drawn
    per clip). A fixed number of values is drawn per clip, so clip b's parameters do not depend on the
    outcomes for earlier clips.
    """
    if x.dim() != 5:
        raise ValueError(f"colour_augment expects (B, C, T, H, W); got shape {tuple(x.shape)}")
    b_, c_, s_, h_ = jitter
    k = blur_kernel_size(int(x.shape[-2]))
    out = []
    for clip in x:
        u = torch.rand(8, generator=generator).tolist()
        order = torch.randperm(4, generator=generator).tolist()
        frames = clip.permute(1, 0, 2, 3)  # (T, C, H, W)
        if u[0] < p_jitter:
            factors = [1 - b_ + 2 * b_ * u[1], 1 - c_ + 2 * c_ * u[2], 1 - s_ + 2 * s_ * u[3], -h_ + 2 * h_ * u[4]]
            for op in order:
                if op == 0:
                    frames = F.adjust_brightness(frames, factors[0])
                elif op == 1:
                    frames = F.adjust_contrast(frames, factors[1])
                elif op == 2:
                    frames = F.adjust_saturation(frames, factors[2])
                else:
                    frames = F.adjust_hue(frames, factors[3])
        if u[5] < p_gray:
            frames = F.rgb_to_grayscale(frames, num_output_channels=3)
        if u[6] < p_blur:
            sig = sigma[0] + (sigma[1] - sigma[0]) * u[7]
            frames = F.gaussian_blur(frames, [k, k], [sig, sig])
        out.append(frames.permute(1, 0, 2, 3))
    return torch.stack(out).clamp_(0.0, 1.0)


# ============================================================================================ normalise
def _stats(x: torch.Tensor, values: tuple[float, float, float]) -> torch.Tensor:
    if x.dim() == 5:
        shape = (1, 3, 1, 1, 1)
        ch = x.shape[1]
    elif x.dim() == 4:
        shape = (3, 1, 1, 1)
        ch = x.shape[0]
    else:
        raise ValueError(f"expected (B, C, T, H, W) or (C, T, H, W); got shape {tuple(x.shape)}")
    if ch != 3:
        raise ValueError(f"expected 3 channels; got {ch} (shape {tuple(x.shape)})")
    return torch.tensor(values, dtype=x.dtype, device=x.device).view(shape)


def normalize(x: torch.Tensor, mean=KINETICS_MEAN, std=KINETICS_STD) -> torch.Tensor:
    """(x - mean) / std over the channel dim of (B, C, T, H, W) or (C, T, H, W) (Kinetics statistics)."""
    return (x - _stats(x, mean)) / _stats(x, std)


def denormalize(x: torch.Tensor, mean=KINETICS_MEAN, std=KINETICS_STD) -> torch.Tensor:
    return x * _stats(x, std) + _stats(x, mean)
