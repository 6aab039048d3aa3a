"""Random initialisation: no pretraining (FAME Table 2 / BE Table 3 "Random init" / "Scratch" rows)."""
from __future__ import annotations

from scenebias.plugins import TrainObjective, register_method


@register_method("random_init", paper="FAME Table 2; BE Table 3 (scratch)", defaults={})
class RandomInit(TrainObjective):
    """Random initialisation: the backbone as initialised from the seed, never trained."""

    dataset_mode = "none"
