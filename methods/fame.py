"""MoCo + FAME: Foreground-background Merging (Ding et al., CVPR 2022, §3.2–3.3, eqs. 2–6; Tables 1–6).

The query view is merged with another clip's background (eq. 6, X ⊙ M + Y ⊙ (1 − M)) before colour augmentation; the
mask M is FAME's foreground separation (eqs. 2–5), written out step by step in scenebias/augment/foreground.py.

Paper vs. code (docs/methods.md, "moco+fame"): `colour_mode="paper"` (default) is the paper's reading: the hue angle in radians,
truncated 0-based levels (`foreground_posterior` in the library module). `"official-code"` is the authors' FAME module (Mark12Ding/
FAME, moco/loader.py) step by step (`official_posterior` there): kornia's HSV, the hue (already radians) times 2π again
(it wraps about six times), rounded 1-based levels (half to even) in bins h + 10(s'−1) + 100(v'−1), histograms from
torch.topk seed samples normalised by (sum + 1e-8), no epsilon in the posterior, blur kernel ⌊0.1·crop⌋//2·2+1.
The background partner is `partner`'s in either mode: `"derangement"` (default) never pairs a clip with itself, as
the paper's "background from other videos" (§3.1); `"permutation"` is the code's torch.randperm, which can, so the
authors' module in full is `colour_mode="official-code", partner="permutation"`.
Table 6 masks: `gauss`, `seed`, `grid`, `fame`; Table 4 `background`: `inter` (another video) or `intra`
(another clip of the same video); Table 5 `branches`: merge one view (`single`) or both (`both`).

The separation and the merge are scenebias/augment/foreground.py, the partner scenebias/augment/pairing.py;
this file composes them on `MocoObjective`.
"""
from __future__ import annotations

import torch

from scenebias.augment.foreground import BETA, actor_free_scene, foreground_mask, merge
from scenebias.augment.pairing import derangement
from scenebias.plugins import register_method
from scenebias.train.moco import MocoObjective


@register_method("moco+fame", parent="moco", paper="FAME §3.2–3.3 eqs. 2–6; Tables 1–6",
                 defaults={"beta": BETA, "mask": "fame", "background": "inter", "branches": "single",
                           "colour_mode": "paper", "partner": "derangement"},
                 variants={"mask": ["fame", "gauss", "seed", "grid", "oracle"], "background": ["inter", "intra"],
                           "branches": ["single", "both"], "colour_mode": ["paper", "official-code"],
                           "partner": ["derangement", "permutation"]})
class FameObjective(MocoObjective):
    """MoCo + FAME: the foreground of one clip merged onto the background of another, as a positive.

    `mask="oracle"` is the suite's positive control, not a paper row: the merge of eq. 6 with the generator's
    ground-truth actor mask of every frame instead of the estimated one (generated data only), the upper
    bound of what a perfect foreground mask gives; β does not apply to it."""

    def __init__(self, backbone, num_classes, beta, mask, background, branches, colour_mode, partner, **moco):
        super().__init__(backbone, num_classes, **moco)
        self.beta, self.mask, self.background = beta, mask, background
        self.branches, self.colour_mode, self.partner = branches, colour_mode, partner
        self.needs_masks = self.needs_ground_truth({"mask": mask})

    @classmethod
    def needs_ground_truth(cls, options):
        return options["mask"] == "oracle"

    def fame(self, clips: torch.Tensor, other_clips: torch.Tensor, generator: torch.Generator,
             masks: torch.Tensor | None = None, other_masks: torch.Tensor | None = None) -> torch.Tensor:
        """Merge each clip's foreground onto a background clip: another video's (`inter`) or `other_clips`,
        the second clip of the same video (`intra`). `masks`, `other_masks` (B, T, H, W): the oracle's ground truth
        of `clips` and `other_clips`."""
        m = masks if self.mask == "oracle" else foreground_mask(clips, self.mask, self.beta, self.colour_mode)
        if self.background == "intra":
            background, background_masks = other_clips, other_masks
        else:
            n = clips.shape[0]
            code = self.partner == "permutation"  # the FAME code's randperm: a clip may keep its own background
            partner = (torch.randperm(n, generator=generator) if code else derangement(n, generator)).to(clips.device)
            background, background_masks = clips[partner], (masks[partner] if masks is not None else None)
        if self.mask == "oracle":  # a perfect separation pastes the actor onto the partner's scene, minus its actor
            background = actor_free_scene(background, background_masks)
        return merge(clips, background, m)

    def make_views(self, batch, generator):
        views, masks = batch["views"], batch.get("masks")
        if self.needs_masks and masks is None:
            raise ValueError("moco+fame with mask='oracle' needs batches with ground-truth 'masks' "
                             "(a ClipDataset with actor_masks)")
        a, b = views[:, 0], views[:, 1]
        mask_a, mask_b = (masks[:, 0], masks[:, 1]) if self.needs_masks else (None, None)
        merged_a = self.fame(a, b, generator, mask_a, mask_b)
        return merged_a, (self.fame(b, a, generator, mask_b, mask_a) if self.branches == "both" else b)
