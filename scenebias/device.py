"""Where networks and their inputs live: the one place that puts a module or a batch on a device.

The rule: a function that runs a network on inputs moves the network to the inputs' device itself
(`to_device(model, device)` on entry, `to_device(batch, device)` per batch), so no caller can leave a model
behind while its clips move. Callers never place models for it: the device can change inside (under torchrun
fine-tuning and pretraining run on cuda:LOCAL_RANK, not the configured "cuda"), and moving a module that is
already there costs nothing. Model files load on the CPU (scenebias.models.files.load_model).
"""
from __future__ import annotations

from typing import Mapping, TypeVar

import torch
from torch import nn

from .errors import ConfigError

Placed = TypeVar("Placed", bound=nn.Module | torch.Tensor | Mapping)


def to_device(value: Placed, device: torch.device | str, dtype: torch.dtype | None = None) -> Placed:
    """`value` on `device`: a module moved in place (and returned), a tensor copied there (`dtype`: converted on
    the way), a mapping (a collated batch) with every tensor value moved, dtypes kept, and the other values kept."""
    device = torch.device(device)
    if isinstance(value, nn.Module):
        return value.to(device)
    if isinstance(value, torch.Tensor):
        # from pinned memory the copy overlaps the next step; reads back to the CPU stay synchronous
        return value.to(device=device, dtype=dtype, non_blocking=device.type == "cuda")
    if isinstance(value, Mapping):
        if dtype is not None:
            raise TypeError("to_device: dtype converts one tensor, not a batch whose entries differ in type")
        return {k: to_device(v, device) if torch.is_tensor(v) else v for k, v in value.items()}
    raise TypeError(f"to_device places a module, a tensor or a mapping of tensors; got {type(value).__name__}")


def pin_memory(device: torch.device | str) -> bool:
    """Whether loaders feeding `device` should pin their batches: on CUDA only (pinning is useless elsewhere)."""
    return torch.device(device).type == "cuda"



def resolve_device(cfg: Mapping) -> str:
    """The config's `device` (cpu | cuda | auto) as a device name; cuda asked for and absent is an error."""
    wanted = cfg.get("device", "cpu")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but no CUDA device is available; use 'cpu' or 'auto'")
    return wanted


__all__ = ["to_device", "pin_memory", "resolve_device"]
