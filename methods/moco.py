"""MoCo baseline (He et al., CVPR 2020), as the base of FAME (Ding et al., CVPR 2022, §3.1, eq. 1) and
BE (Wang et al., CVPR 2021, §3.2, eq. 5).

Rows: FAME Tables 1–3 "MoCo" / "Baseline"; BE Tables 3–4 "MoCo (baseline)".
Defaults are the FAME code's (τ = 0.1, 128-d, m = 0.999); the queue is sized per profile because it must
stay well below the number of pretraining videos (see `queue_same_video` in the training log).
"""
from __future__ import annotations

from scenebias.plugins import TrainObjective, register_method
from scenebias.train.moco import ENQUEUE_ORDERS, MoCo

# The MoCo options every MoCo-based method (moco+be and its presets, moco+fame, dsm) shares; `enqueue`:
# docs/methods.md, "moco" (after_step: the suite's order; between_passes: the authors' code's).
MOCO_DEFAULTS = {"queue_size": 2048, "momentum": 0.999, "temperature": 0.1, "dim": 128, "shuffle_bn_splits": 2,
                 "enqueue": "after_step"}
MOCO_VARIANTS = {"enqueue": list(ENQUEUE_ORDERS)}


@register_method("moco", paper="FAME §3.1 eq. 1; BE §3.2 eq. 5", defaults=MOCO_DEFAULTS, variants=MOCO_VARIANTS)
class MocoObjective(TrainObjective):
    """MoCo: InfoNCE between two clips of one video, EMA key encoder, queue of negatives."""

    dataset_mode = "pair"

    def __init__(self, backbone, num_classes, queue_size, momentum, temperature, dim, shuffle_bn_splits, enqueue):
        super().__init__(backbone, num_classes)
        del self.backbone  # owned by the MoCo query encoder; exposed through the property below
        self.moco = MoCo(backbone, backbone.feature_dim, dim=dim, queue_size=queue_size, momentum=momentum,
                         temperature=temperature, shuffle_bn_splits=shuffle_bn_splits, enqueue=enqueue)

    @property
    def backbone(self):
        return self.moco.backbone

    def make_views(self, batch, generator):
        """The query and key views (B, C, T, H, W) in [0, 1], before colour augmentation. Variants override this."""
        return batch["views"][:, 0], batch["views"][:, 1]

    def training_loss(self, batch, augment, generator):
        view_a, view_b = self.make_views(batch, generator)[:2]
        return self.moco(augment(view_a), augment(view_b), batch["index"], generator)
