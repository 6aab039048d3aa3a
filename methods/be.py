"""MoCo + BE: Background Erasing (Wang et al., CVPR 2021, §3.2 eqs. 1–2, §3.3.2 eqs. 6–7; Tables 1–4).

The distracting video adds one static frame of the clip to every frame:
    x_d[t] = (1 − λ)·x[t] + λ·x[k],  k a random frame of the same clip,  λ ~ U(0, γ),  γ = 0.3,
so its temporal difference is (1 − λ)·(x[t+1] − x[t]): the motion survives, scaled, while the static
background is perturbed. The distracted clip and an undistracted clip of the same video are the positive
pair (the distractor is applied to one view, before colour augmentation). `positive="frames"` pairs two spatial
crops of the same frames, as BE §3.1 and its loader do (the paper preset); `"starts"` (default, as every other
contrastive method here) two independent start times (docs/methods.md, "moco+be").

Paper vs. code (docs/methods.md, "moco+be"): `lambda_per="video"` draws λ per video (paper, default); `"batch"` draws one
λ for the whole batch (the authors' code). BE Table 4's other distractors replace the static frame:
`inter_frame` (a frame of another video), `gaussian_noise` (one white Gaussian noise image, the same for every
frame), `mixup` (another video, frame by frame), `cutmix` (a box of another video, the same box on every frame).

Hard negative (§3.3.2, eq. 7; `hard_negative: true`, the setting of BE Table 4, "optimized with Eq. 7"):
one other clip of the same video (a different start time: the loader's "triple" mode, view 2) joins the
negatives of its video's queries, so the task becomes clip-level: same background, other motion. One is
drawn per video and step (the paper: "more hard negatives have a similar result"); it goes through the query
encoder, gets its own draw of the colour augmentation, as in BE's code, whose loader augments each of its three
clips separately (the paper's "augmentation a¹" would be the clean view's draw), and is not enqueued
(docs/methods.md, "moco+be"). The loss stays MoCo's symmetric one: the hard negative is one extra logit column in
both query directions.
View 2's start differs from view 0's (the distracted clip); with `positive="starts"` it may coincide with view 1's,
the positive's, and then has the positive's frames under another crop; with `"frames"` it never does, as in BE.
Default off: eq. 6, the suite's plain MoCo + BE.

The distractors are scenebias/augment/distractors.py (`distract`), the hard-negative step
scenebias/train/moco.py (`contrast_with_hard_negative`); this file composes them on `MocoObjective`.
"""
from __future__ import annotations

from scenebias.augment.distractors import DISTRACTORS, GAMMA, distract
from scenebias.plugins import register_method
from scenebias.train.moco import MocoObjective, contrast_with_hard_negative


@register_method("moco+be", parent="moco", paper="BE §3.2–3.3 eqs. 1–2, 6–7; Tables 1–4",
                 defaults={"distractor": "intra_frame", "gamma": GAMMA, "lambda_per": "video", "hard_negative": False,
                           "positive": "starts"},
                 variants={"distractor": list(DISTRACTORS), "lambda_per": ["video", "batch"],
                           "hard_negative": [False, True], "positive": ["starts", "frames"]})
class BackgroundErasingObjective(MocoObjective):
    """MoCo + BE: a clip with a static frame of itself blended in is a positive of the clean clip."""

    def __init__(self, backbone, num_classes, distractor, gamma, lambda_per, hard_negative, positive, **moco):
        super().__init__(backbone, num_classes, **moco)
        self.distractor, self.gamma, self.lambda_per = distractor, gamma, lambda_per
        self.hard_negative = hard_negative
        self.shared_start = positive == "frames"  # BE §3.1: the positive is the same frames under another crop
        if hard_negative:
            self.dataset_mode = "triple"  # view 2: another start time of the same video (eq. 7)

    def make_views(self, batch, generator):
        """(distracted view 0, view 1), plus view 2, the hard negative, when `hard_negative` is on."""
        views = batch["views"]
        distracted = distract(views[:, 0], self.distractor, self.gamma, self.lambda_per, generator)
        return (distracted, views[:, 1], views[:, 2]) if self.hard_negative else (distracted, views[:, 1])

    def training_loss(self, batch, augment, generator):
        if not self.hard_negative:
            return super().training_loss(batch, augment, generator)
        view_a, view_b, negative = self.make_views(batch, generator)
        return contrast_with_hard_negative(self.moco, augment(view_a), augment(view_b), augment(negative),
                                           batch["index"], generator)
