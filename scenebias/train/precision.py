"""Mixed precision and memory layout of the training steps (pretraining and fine-tuning).

Two settings, in `pretrain` and `evaluate.finetune`:

- `precision`: "fp32", "bf16" (the forward pass and the loss under `torch.autocast(device_type,
  dtype=torch.bfloat16)`; the backward pass and the optimiser step outside it, parameters and gradients stay
  fp32; bf16 has fp32's exponent range, so no loss scaling is needed) or "auto";
- `channels_last`: true (the model's 5-D weights and the input clips in `torch.channels_last_3d`, the NDHWC
  layout cuDNN's fast 3-D convolutions use), false, or "auto".

"auto" is bf16 + channels_last_3d on a CUDA device that supports bf16, and fp32 + contiguous elsewhere, so a CPU
run computes exactly what it computed before these settings existed. Augmentation runs in fp32 even inside the
autocast region: colour augmentation turns autocast off for itself (scenebias.data.transforms.colour_augment) and
the loops run the methods' view builders outside it (`fp32_view_builder`).
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, ContextManager, Iterator, Mapping

import torch
from torch import nn

from ..errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
CHANNELS_LAST = ("auto", True, False)


def check_options(where: str, precision: Any, channels_last: Any) -> None:
    """ConfigError naming `where.<key>` unless precision is one of PRECISIONS and channels_last of CHANNELS_LAST."""
    if precision not in PRECISIONS or isinstance(precision, bool):
        raise ConfigError(f"{where}.precision: {precision!r} must be one of {', '.join(map(repr, PRECISIONS))}")
    if not (isinstance(channels_last, bool) or channels_last == "auto"):
        raise ConfigError(f"{where}.channels_last: {channels_last!r} must be true, false or 'auto'")


def check_device(where: str, precision: str, device: str | torch.device) -> None:
    """ConfigError naming `where` when a config asks for bf16 on a CPU. This PyTorch's CPU bf16 3-D convolution
    computes wrong weight gradients where a kernel of 3 frames meets a 2-frame input (the last stage of tiny3d at
    8 frames, of r3d_18 at 16), finite but off by orders of magnitude, or inf: training goes on silently wrong or
    stops at a NaN loss (docs/methods.md, "Precision"). The library functions still accept it, so the tests can
    exercise the autocast wiring of the GPU path on a CPU."""
    if precision == "bf16" and torch.device(device).type == "cpu":
        raise ConfigError(f"{where}: 'bf16' on a CPU: PyTorch's CPU bf16 3-D convolutions compute wrong weight "
                          "gradients for 2-frame inputs (docs/methods.md, \"Precision\"); use 'fp32' "
                          "or 'auto' (fp32 on a CPU, bf16 on a CUDA GPU)")


def _cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """"fp32" or "bf16": "auto" is bf16 on a CUDA device that supports it, fp32 elsewhere. A resolved "fp32" on
    CUDA turns TF32 off for convolutions and matmuls (`ieee_fp32`), so it is the fp32 the papers trained in."""
    resolved = precision if precision != "auto" else (
        "bf16" if _cuda(device) and torch.cuda.is_bf16_supported() else "fp32")
    if resolved == "fp32" and _cuda(device):
        ieee_fp32()
    return resolved


def ieee_fp32() -> None:
    """Full fp32 on CUDA: PyTorch's default runs fp32 convolutions in TF32 (10-bit mantissa) on Ampere and later;
    the papers' V100s had no TF32. The setting is process-wide, and each job is one process."""
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    torch.backends.cuda.matmul.fp32_precision = "ieee"


def resolve_channels_last(channels_last: bool | str, device: str | torch.device) -> bool:
    """True or False: "auto" is channels_last_3d on CUDA, contiguous elsewhere."""
    return _cuda(device) if channels_last == "auto" else bool(channels_last)


def autocast(precision: str, device: str | torch.device) -> ContextManager:
    """The region of the forward pass and the loss: bf16 autocast for a resolved "bf16", nothing for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def fp32_view_builder(objective: nn.Module, device: str | torch.device, enabled: bool = True) -> Iterator[None]:
    """While open, the objective's `make_views` runs outside autocast: view building (FAME's masks, BE's
    distractors, DSM's warps) is data augmentation, and its numbers must not depend on the precision setting
    (under bf16 autocast FAME's blurred seed and posterior maps, convolutions, would run in bf16 and about 1% of
    mask pixels would flip). `training_loss` calls `self.make_views`, so an instance attribute shadows it for the
    duration; the class's method is back on exit."""
    original = getattr(objective, "make_views", None)
    if not enabled or original is None or "make_views" in vars(objective):
        yield
        return
    device_type = torch.device(device).type

    @functools.wraps(original)
    def make_views(*args: Any, **kwargs: Any):
        with torch.autocast(device_type=device_type, enabled=False):
            return original(*args, **kwargs)

    objective.make_views = make_views
    try:
        yield
    finally:
        del objective.make_views


def model_channels_last(model: nn.Module) -> nn.Module:
    """Convert the model's 5-D parameters and buffers (Conv3d weights) to channels_last_3d, in place."""
    return model.to(memory_format=torch.channels_last_3d)


def clips_channels_last(x: torch.Tensor) -> torch.Tensor:
    """A batch of clips (B, C, T, H, W) in channels_last_3d; a batch of views (B, V, C, T, H, W) stored as
    (V, B, T, H, W, C), so that every view `x[:, v]` is a dense channels_last_3d batch. Other tensors (labels,
    indices) come back unchanged."""
    if not torch.is_floating_point(x):
        return x
    if x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    if x.dim() == 6:
        return x.permute(1, 0, 3, 4, 5, 2).contiguous().permute(1, 0, 5, 2, 3, 4)
    return x


def batch_channels_last(batch: Mapping[str, Any]) -> dict[str, Any]:
    """`clips_channels_last` on every tensor of a collated batch."""
    return {k: clips_channels_last(v) if torch.is_tensor(v) else v for k, v in batch.items()}


def describe(precision: str, channels_last: bool) -> str:
    return f"{'bf16 autocast' if precision == 'bf16' else 'fp32'}, {'channels_last_3d' if channels_last else 'contiguous'}"


__all__ = ["PRECISIONS", "CHANNELS_LAST", "check_options", "check_device", "resolve_precision", "resolve_channels_last",
           "autocast", "fp32_view_builder", "model_channels_last", "clips_channels_last", "batch_channels_last",
           "describe"]
