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

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as nn_functional
import torchvision.transforms.v2.functional as F

from ..errors import ConfigError

# Input statistics (`normalize`): Kinetics' for training and every protocol; ImageNet's where FAME's retrieval script
# (main_retrieve.py) and BE's data transforms use them (retrieval's `input_stats: imagenet`)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


JITTER_OPS = ("brightness", "contrast", "saturation", "hue")  # ColorJitter's four ops, in factor-column order
# The colour stack's stages in the suite's order (the default); the FAME code runs grayscale before the jitter.
COLOUR_STAGES = ("jitter", "grayscale", "blur")


@dataclass(frozen=True)
class ColourParams:
    """One batch's colour-augmentation draws, a row per clip (CPU tensors).

    `factors[:, j]` is the factor of JITTER_OPS[j] (hue: a shift in turns), `order[b]` the order in which clip b
    applies the four ops (a permutation of 0..3), `sigma` the blur's standard deviation in pixels.
    """
    jitter: torch.Tensor   # (B,) bool
    factors: torch.Tensor  # (B, 4) float
    order: torch.Tensor    # (B, 4) long
    gray: torch.Tensor     # (B,) bool
    blur: torch.Tensor     # (B,) bool
    sigma: torch.Tensor    # (B,) float


def sample_colour_params(batch: int, generator: torch.Generator, jitter: tuple[float, float, float, float] =
                         (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8, p_gray: float = 0.2, p_blur: float = 0.5,
                         sigma: tuple[float, float] = (0.1, 2.0)) -> ColourParams:
    """Every clip's draws at once (MoCo v2 / FAME video augmentation): ColorJitter with probability p_jitter,
    factors U(1 − a, 1 + a) for brightness, contrast, saturation and U(−a, a) for hue, the four ops in a uniformly
    random order (the argsort of uniforms), as torchvision's ColorJitter; grayscale with probability p_gray;
    Gaussian blur with probability p_blur, sigma ~ U(sigma). Two tensors are drawn from `generator` whatever the
    outcomes, so clip b's draws do not depend on the other clips' outcomes."""
    u = torch.rand(batch, 8, generator=generator)
    order = torch.rand(batch, 4, generator=generator).argsort(dim=1)
    spread = torch.tensor(jitter, dtype=torch.float32)
    centre = torch.tensor([1.0, 1.0, 1.0, 0.0])
    return ColourParams(jitter=u[:, 0] < p_jitter, factors=centre - spread + 2 * spread * u[:, 1:5], order=order,
                        gray=u[:, 5] < p_gray, blur=u[:, 6] < p_blur,
                        sigma=sigma[0] + (sigma[1] - sigma[0]) * u[:, 7])


def _per_clip(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(n,) per-clip values shaped to broadcast over a (n, T, C, H, W) frame stack (or its (n, T, H, W) planes)."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def _blend(image: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's `_blend` with a factor per clip: factor·image + (1 − factor)·other, clamped to [0, 1], as one
    lerp (exactly `image` where the factor is 1)."""
    return torch.lerp(other, image, _per_clip(factor, image)).clamp_(0.0, 1.0)


def _brightness(frames: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (frames * _per_clip(factor, frames)).clamp_(0.0, 1.0)  # a blend with black


def _contrast(frames: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with each frame's mean grey level (torchvision's adjust_contrast, frame by frame)."""
    return _blend(frames, F.rgb_to_grayscale(frames).mean(dim=(-3, -2, -1), keepdim=True), factor)


def _saturation(frames: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(frames, F.rgb_to_grayscale(frames), factor)


def _hue(frames: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift the HSV hue by `shift` turns per clip (torchvision's adjust_hue): the hexcone hue h (in sixths of a
    turn) from RGB, shifted, and RGB back as v − (v − min)·clamp(min(k, 4 − k), 0, 1) with k = (n + h) mod 6;
    value and span are unchanged by the shift. Elementwise on the channel planes, in place where possible:
    the temporaries are what costs on a CPU."""
    r, g, b = frames.unbind(dim=-3)
    top = torch.maximum(torch.maximum(r, g), b)
    span = torch.minimum(r, g)
    span = torch.sub(top, torch.minimum(span, b, out=span), out=span)
    sector = torch.where(r == top, g - b, torch.where(g == top, (b - r).add_(span, alpha=2),
                                                     (r - g).add_(span, alpha=4)))
    # grey pixels (span 0) have sector 0 and any hue: span multiplies it away below
    sixths = sector.div_(span.clamp_min(1e-12)).add_(_per_clip(6 * shift, sector))
    # n = 5, 3, 1 made on the device (a tensor from a Python list would be a blocking host-to-device copy)
    n = (5 - 2 * torch.arange(3, dtype=frames.dtype, device=frames.device)).view(3, 1, 1)
    k = (n + sixths.unsqueeze(-3)).remainder_(6.0)
    weight = torch.minimum(k, 4 - k).clamp_(0.0, 1.0)
    return torch.sub(top.unsqueeze(-3), weight.mul_(span.unsqueeze(-3)))


_JITTER = (_brightness, _contrast, _saturation, _hue)  # JITTER_OPS' functions


def _grayscale(frames: torch.Tensor) -> torch.Tensor:
    return F.rgb_to_grayscale(frames, num_output_channels=3)


def _blur(frames: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """Gaussian blur of every frame with its clip's sigma: torchvision's kernel (softmax of −x²/2σ²) and reflect
    padding, applied separably as depthwise convolutions over all (clip, frame, channel) planes at once."""
    n, t, c, h, w = frames.shape
    taps = torch.arange(kernel, dtype=frames.dtype, device=frames.device) - (kernel - 1) / 2
    weights = torch.softmax(-taps.square() / (2 * sigma.square()[:, None]), dim=1)  # (n, kernel)
    weights = weights.repeat_interleave(t * c, dim=0)  # one kernel per plane
    pad = kernel // 2
    planes = nn_functional.pad(frames.reshape(1, n * t * c, h, w), [pad, pad, pad, pad], mode="reflect")
    planes = nn_functional.conv2d(planes, weights.view(-1, 1, 1, kernel), groups=n * t * c)
    planes = nn_functional.conv2d(planes, weights.view(-1, 1, kernel, 1), groups=n * t * c)
    return planes.view(n, t, c, h, w)


def check_stages(stages: Sequence[str]) -> None:
    """`stages` must name each of COLOUR_STAGES once (any order)."""
    if sorted(stages) != sorted(COLOUR_STAGES):
        raise ValueError(f"colour stages {list(stages)!r}: expected each of {list(COLOUR_STAGES)} once")


def _colour_ops(params: ColourParams, stages: Sequence[str] = COLOUR_STAGES) -> list[tuple[str, torch.Tensor]]:
    """apply_colour's batched operations in order, each with the (CPU) indices of the clips it touches, stage by
    stage in `stages` order: the jitter stage is op `order[b, s]` at step s for every clip with jitter on;
    grayscale and blur are one operation each; empty ones left out."""
    check_stages(stages)
    by_stage = {"jitter": [(JITTER_OPS[op], params.jitter & (params.order[:, step] == op))
                           for step in range(4) for op in range(4)],
                "grayscale": [("grayscale", params.gray)], "blur": [("blur", params.blur)]}
    masks = [pair for stage in stages for pair in by_stage[stage]]
    return [(name, mask.nonzero().flatten()) for name, mask in masks if bool(mask.any())]


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host to device without waiting for the device's queued work (a pinned buffer and an asynchronous copy)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def apply_colour(x: torch.Tensor, params: ColourParams, kernel: int,
                 stages: Sequence[str] = COLOUR_STAGES) -> torch.Tensor:
    """Apply drawn parameters to a batch (B, C, T, H, W) in [0, 1] (kernel: the blur's size), the stages in
    `stages` order.

    Each operation runs once per step on all the clips that need it (gathered, processed as one batch, put back),
    so the work is that of the per-clip loop without the loop; the indices and per-clip values reach the device
    in two asynchronous copies. The result has the input's memory format (channels_last_3d stays so).
    """
    batch = x.shape[0]
    ops = _colour_ops(params, stages)
    values = _to_device(torch.cat([params.factors, params.sigma[:, None]], dim=1).to(x.dtype), x.device)
    rows = _to_device(torch.cat([index for _, index in ops]) if ops else torch.zeros(0, dtype=torch.long), x.device)
    # (B, T, C, H, W), torchvision's layout (a clip's frames as a batch); a copy, since the ops write into it
    frames = x.transpose(1, 2).clone(memory_format=torch.contiguous_format)
    start = 0
    for name, index in ops:
        clips = rows[start: start + index.numel()]  # a view: no host-device round trip
        start += index.numel()
        whole = index.numel() == batch  # every clip: skip the gather and the scatter
        part = frames if whole else frames.index_select(0, clips)
        per_clip = values if whole else values.index_select(0, clips)
        if name == "grayscale":
            part = _grayscale(part)
        elif name == "blur":
            part = _blur(part, per_clip[:, 4], kernel)
        else:
            column = JITTER_OPS.index(name)
            part = _JITTER[column](part, per_clip[:, column])
        frames = part if whole else frames.index_copy_(0, clips, part)
    return torch.clamp(frames.transpose(1, 2), 0.0, 1.0, out=torch.empty_like(x))


BLUR_REFERENCE_CROP = 224  # MoCo v2 / FAME draw the blur's sigma from U(0.1, 2.0) px for 224-px crops


def blur_sigma_range(crop: int, sigma_at_reference: tuple[float, float] = (0.1, 2.0)) -> tuple[float, float]:
    """The blur's sigma range in pixels of a `crop`-px clip: the papers' (0.1, 2.0) px at 224 px, scaled with the
    crop, so the blur removes the same share of the image's detail at any size (at 32 px: 0.014-0.29 px; the
    unscaled 2 px would blur a 32-px frame as a 14-px blur blurs a 224-px one)."""
    factor = crop / BLUR_REFERENCE_CROP
    return (sigma_at_reference[0] * factor, sigma_at_reference[1] * factor)


def colour_augment(x: torch.Tensor, generator: torch.Generator, jitter: tuple[float, float, float, float] =
                   (0.4, 0.4, 0.4, 0.1), p_jitter: float = 0.8, p_gray: float = 0.2, p_blur: float = 0.5,
                   sigma: tuple[float, float] = (0.1, 2.0), stages: Sequence[str] = COLOUR_STAGES,
                   scale_sigma: bool = True) -> torch.Tensor:
    """Per clip, temporally consistent colour augmentation of a batch (B, C, T, H, W) float in [0, 1].

    For each clip: ColorJitter(brightness, contrast, saturation, hue) with probability p_jitter (factors
    drawn once per clip, the four ops in a random order as torchvision does), grayscale with probability
    p_gray, Gaussian blur with probability p_blur (kernel floor(0.1*crop) made odd, sigma ~ U(0.1, 2) px at a
    224-px crop, scaled with the crop: `blur_sigma_range`; `scale_sigma=False`: U(0.1, 2) px at any crop, as the
    FAME code's `Augment_GPU_pre`) drawn per clip. The three stages run in `stages`
    order: the suite's jitter, grayscale, blur by default; ("grayscale", "jitter", "blur") is the FAME code's,
    where a gray clip can still change brightness and contrast but stays gray. All clips' parameters are drawn
    at once (`sample_colour_params`, the same draws for any order) and applied batched (`apply_colour`), in fp32
    even under autocast (augmentation is not part of the mixed-precision forward).
    """
    if x.dim() != 5:
        raise ValueError(f"colour_augment expects (B, C, T, H, W); got shape {tuple(x.shape)}")
    sigma = blur_sigma_range(int(x.shape[-2]), sigma) if scale_sigma else tuple(sigma)
    params = sample_colour_params(x.shape[0], generator, jitter, p_jitter, p_gray, p_blur, sigma)
    with torch.autocast(device_type=x.device.type, enabled=False):
        return apply_colour(x, params, blur_kernel_size(int(x.shape[-2])), stages)


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
    return _constant(tuple(values), x.dtype, x.device).view(shape)


@functools.lru_cache(maxsize=64)
def _constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small constant tensor, made once per device: on a GPU each fresh one would be a blocking host-to-device
    copy in every training step. Never an inference-mode tensor, which autograd could not save later."""
    with torch.inference_mode(False):
        return torch.tensor(values, dtype=dtype, device=device)


def normalize(x: torch.Tensor, mean=KINETICS_MEAN, std=KINETICS_STD) -> torch.Tensor:
    """(x - mean) / std over the channel dim of (B, C, T, H, W) or (C, T, H, W) (Kinetics statistics)."""
    return (x - _stats(x, mean)) / _stats(x, std)


def denormalize(x: torch.Tensor, mean=KINETICS_MEAN, std=KINETICS_STD) -> torch.Tensor:
    return x * _stats(x, std) + _stats(x, mean)


def augment_factory(generator: torch.Generator, augmentation: str = "contrastive",
                    colour: dict | None = None):
    """One step's batch augmentation for a method's declared `augmentation` (TrainObjective.augmentation):
    "contrastive" is MoCo v2's colour stack (jitter, grayscale, blur; `colour` overrides its parameters and the
    order of its `stages`, the preset's `pretrain.colour`) then normalisation; "finetune" is the fine-tuning
    protocol's: its colour augmentation when `colour` is given (the preset's `evaluate.finetune.colour`, complete),
    then normalisation (its crop and flip happen in the dataset, as for every method)."""

    if augmentation == "contrastive":
        kw = dict(colour or {})
        if "jitter" in kw:
            kw["jitter"] = tuple(kw["jitter"])
        return lambda x: normalize(colour_augment(x, generator, **kw))
    if augmentation == "finetune":
        if colour is None:
            return normalize
        return lambda x: normalize(colour_augment(x, generator, **colour))
    raise ConfigError(f"augmentation {augmentation!r}: expected 'contrastive' or 'finetune'")
