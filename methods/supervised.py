"""Supervised reference rows: a classifier trained with the pretraining set's labels.

- `supervised`: FAME Table 1/2 and BE Table 3 "Supervised" rows (ImageNet/Kinetics-supervised in the papers;
  here, labels of the pretraining flavour).
- with `static: true` it is the static-video classifier of BE §4.4 / Figure 4: one frame repeated T times,
  trained from scratch; its per-class accuracy measures each class's static (scene) bias.
- trained on the unbiased copy of the pretraining set it is the suite's motion-learnability calibration row.

Augmentation: the fine-tuning protocol's (crop, flip, normalisation), as supervised training is in both papers;
MoCo v2's colour stack (grayscale, hue jitter) erases most of what tells the generated actor from its scene and
kept supervised motion learning at chance (docs/calibration-study.md).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from scenebias.plugins import TrainObjective, register_method


@register_method("supervised", paper="BE §4.4 Fig. 4 (static classifier); FAME/BE supervised rows",
                 defaults={"static": False, "dropout": 0.5})
class SupervisedObjective(TrainObjective):
    """Supervised cross-entropy on one clip per video (optionally a static clip)."""

    dataset_mode = "single"
    augmentation = "finetune"  # a classifier trains as the fine-tuning protocol does, not with MoCo's colour stack

    def __init__(self, backbone, num_classes, static, dropout):
        super().__init__(backbone, num_classes)
        self.static = static
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(backbone.feature_dim, num_classes))

    def classifier(self):
        return nn.Sequential(self.backbone, self.head)

    def training_loss(self, batch, augment, generator):
        logits = self.head(self.backbone(augment(batch["clip"])))
        accuracy = (logits.argmax(dim=1) == batch["label"]).float().mean()
        return F.cross_entropy(logits, batch["label"]), {"train_acc": accuracy}
