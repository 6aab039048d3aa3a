"""Which other clip of the batch a clip is mixed with (FAME's background partner, BE's "other video")."""
from __future__ import annotations

import torch


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation with no fixed point (n ≥ 2): a uniformly random cyclic shift of a shuffled order."""
    order = torch.randperm(n, generator=generator)
    shift = int(torch.randint(1, n, (), generator=generator)) if n > 1 else 0
    partner = torch.empty_like(order)
    partner[order] = order.roll(shift)
    return partner

