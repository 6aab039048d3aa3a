"""The one training step. Pretraining (scenebias.train.loop) and fine-tuning (scenebias.evaluate.finetune) prepare
their model and take every optimisation step here, so precision, memory layout and the order of forward pass,
backward pass and optimiser step are decided in one place (scenebias.train.precision has the options)."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from . import precision as amp


def prepare(model: nn.Module, precision: str, channels_last: bool | str, device: str | torch.device
            ) -> tuple[str, bool]:
    """The resolved (precision, channels_last) for `device`, with `model` put in channels_last_3d where that is on.
    Call it before an optimiser or DDP sees the parameters."""
    precision = amp.resolve_precision(precision, device)
    channels_last = amp.resolve_channels_last(channels_last, device)
    if channels_last:
        amp.model_channels_last(model)
    return precision, channels_last


def optimisation_step(forward_loss: Callable[[], tuple[torch.Tensor, Any]], optimizer: torch.optim.Optimizer,
                      precision: str, device: str | torch.device, where: str | None = None,
                      loss_weight: float = 1.0) -> tuple[torch.Tensor, Any]:
    """`forward_loss()` -> (loss, extras) under `amp.autocast(precision, device)`, then the backward pass of
    `loss x loss_weight` and the optimiser step outside it (in fp32). Returns the unweighted loss and the extras.

    `where` (e.g. "epoch 3 step 7"): a non-finite loss raises FloatingPointError naming it, before the backward
    pass; None checks nothing."""
    with amp.autocast(precision, device):
        loss, extras = forward_loss()
    if where is not None and not torch.isfinite(loss):  # under torchrun this rank's failure stops the other ranks
        raise FloatingPointError(f"loss became {loss.item()} at {where}")
    optimizer.zero_grad(set_to_none=True)
    (loss * loss_weight if loss_weight != 1.0 else loss).backward()
    optimizer.step()
    return loss, extras
