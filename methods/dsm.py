"""DSM-style: decoupling the scene and the motion (Wang et al., "Enhancing Unsupervised Video Representation
Learning by Decoupling the Scene and the Motion", AAAI 2021; docs/methods.md, section "dsm").

Rows: FAME Table 1, "DSM (Wang et al. 2021a)": I3D, Kinetics-400, 16 frames at 224², fine-tuned,
UCF101 74.8 / HMDB51 52.5. The BE paper does not compare with DSM.

Positive: the anchor clip (view 0) with a spatial local warp, which keeps the motion and disturbs the
appearance. Each clip gets 1–3 local warps (count drawn per clip); warp j pushes the content near its centre
c_j along its shift s_j, with the authors' falloff:
    δ(p) = Σ_j STRENGTH · s_j · φ(‖p − c_j‖ / ‖s_j‖),   φ(u) = 1 / (1 + 3u⁴),
and the warped frame at p samples the input at p − δ(p) (bilinear, border clamped). The same warp is applied
to every frame of a clip, so a static clip stays static and no motion is invented.
Negative: view 2, another clip of the same video at a different start time (same scene, other motion).

Losses (`loss`):
- `infonce` (default): MoCo InfoNCE over [positive, queue, intra-video negative], the negative encoded by the
  query encoder and not enqueued (the same step as BE's eq. 7, `scenebias.train.moco.contrast_with_hard_negative`).
  Symmetric like the suite's MoCo: anchor → warped key and warped → anchor key, both keys enqueued.
- `triplet`: max(0, d(a, p) − d(a, n) + margin) on L2-normalised query-encoder features, margin 0.5, summed
  over the intra-video negative (view 2) and an inter-video one (the next video's view 2 in the batch), and
  averaged over both anchor roles (anchor and warped clip). The EMA encoder and queue are unused here.

Code vs. this file (docs/methods.md, "dsm": facts carry over, the implementation is ours):
- The code's ranges are pixels of a 224 crop: centres 60–140, shift components 10–20 (both positive); here
  they are fractions of the crop side, so a 112 crop gets half the pixels. The code centres the falloff on
  c + s (70–160 px); here on c (60–140 px).
- The code draws one warp per call for the whole batch, loops over pixels with truncated integer offsets and
  applies the warps one after another; here each clip draws its own warps, their displacements add (the
  two agree where warps do not overlap) and one batched bilinear `grid_sample` applies them.
- The code's anchor and positive are the same frames with independent crops; the suite's views 0 and 1 have
  independent start times, so the positive is the anchor's own crop, warped (colour augmentation is still
  drawn per view). View 1 is unused.
- The code's InfoNCE is one-directional (warped clip = query, clean clip = key). Its triplet loss
  (nn.TripletMarginLoss, margin 0.5, warped clip as anchor) takes the inter-video negative from the reversed
  batch, which pairs the middle clip of an odd batch with itself; here the next video (roll by one) is never
  the clip itself for B ≥ 2, and both clips take the anchor role.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from scenebias.plugins import register_method
from scenebias.train.moco import MocoObjective, contrast_with_hard_negative

WARPS = (1, 3)                  # local warps per clip, drawn uniformly (code: np.random.randint(1, 4))
CENTRE = (60 / 224, 140 / 224)  # warp centre, fraction of the crop side (code: 60–140 px of 224)
SHIFT = (10 / 224, 20 / 224)    # each shift component, fraction of the crop side (code: 10–20 px of 224)
STRENGTH = 0.5                  # content at the centre moves by half the shift (code: 0.5 / (3u⁴ + 1))
FALLOFF = 3.0                   # φ(u) = 1 / (1 + 3u⁴), u = distance / ‖shift‖
MARGIN = 0.5                    # triplet margin (code: nn.TripletMarginLoss(margin=0.5))


def warp_params(b: int, h: int, w: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres and shifts (B, WARPS[1], 2) in pixels as (y, x); unused warps of a clip have a zero shift."""
    most = WARPS[1]
    size = torch.tensor([h, w], dtype=torch.float32)
    count = torch.randint(WARPS[0], most + 1, (b, 1), generator=generator)
    centres = (CENTRE[0] + (CENTRE[1] - CENTRE[0]) * torch.rand(b, most, 2, generator=generator)) * size
    shifts = (SHIFT[0] + (SHIFT[1] - SHIFT[0]) * torch.rand(b, most, 2, generator=generator)) * size
    return centres, shifts * (torch.arange(most) < count)[..., None]


def local_warp(clips: torch.Tensor, centres: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Warp clips (B, C, T, H, W) with per-clip local warps (centres, shifts: (B, J, 2) pixels, (y, x)),
    the same warp on every frame: one bilinear grid_sample over the (B, C·T, H, W) batch."""
    b, c, t, h, w = clips.shape
    centres, shifts = centres.to(clips), shifts.to(clips)
    ys = torch.arange(h, dtype=clips.dtype, device=clips.device)
    xs = torch.arange(w, dtype=clips.dtype, device=clips.device)
    pixels = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)             # (H, W, 2)
    dist4 = (pixels - centres[:, :, None, None]).pow(2).sum(-1).pow(2)               # (B, J, H, W)
    radius4 = shifts.pow(2).sum(-1).pow(2)[:, :, None, None]
    falloff = radius4 / (radius4 + FALLOFF * dist4 + 1e-12)  # = φ(dist / ‖s‖); 0 for a zero shift
    source = pixels - STRENGTH * (shifts[:, :, None, None] * falloff[..., None]).sum(1)  # (B, H, W, 2)
    scale = torch.tensor([max(h - 1, 1), max(w - 1, 1)], dtype=clips.dtype, device=clips.device)
    grid = (2 * source / scale - 1).flip(-1)  # grid_sample wants (x, y) in [-1, 1]
    out = F.grid_sample(clips.reshape(b, c * t, h, w), grid, mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out.view(b, c, t, h, w).clamp(0, 1)  # bilinear is convex; the clamp only removes rounding


def random_local_warp(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """DSM's positive: 1–3 random local warps per clip, scaled to the crop size."""
    return local_warp(clips, *warp_params(clips.shape[0], clips.shape[3], clips.shape[4], generator))


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
                 ) -> torch.Tensor:
    """Mean over the batch of max(0, ‖a − p‖ − ‖a − n‖ + margin) for features (B, d)."""
    return F.relu((anchor - positive).norm(dim=1) - (anchor - negative).norm(dim=1) + margin).mean()


def dsm_triplet(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DSM's triplet objective on L2-normalised features (B, d): the intra-video negative (another time of the
    same video) plus an inter-video one (the next video's), for both anchor roles, averaged over the roles."""
    other = negative.roll(1, dims=0)
    loss = sum(triplet_loss(x, y, n, margin) for x, y in ((anchor, positive), (positive, anchor))
               for n in (negative, other)) / 2
    with torch.no_grad():
        pos = (anchor * positive).sum(1)
        hard = torch.stack([(anchor * negative).sum(1), (positive * negative).sum(1)])
        inter = torch.stack([(anchor * other).sum(1), (positive * other).sum(1)])
        stats = {"instance_acc": (pos > torch.maximum(hard, inter)).float().mean(), "pos_sim": pos.mean(),
                 "neg_sim": inter.mean(), "hard_neg_sim": hard.mean()}
    return loss, stats


@register_method("dsm", parent="moco", paper="DSM (Wang et al., AAAI 2021); FAME Table 1 'DSM' row",
                 defaults={"loss": "infonce", "margin": MARGIN}, variants={"loss": ["infonce", "triplet"]})
class DsmObjective(MocoObjective):
    """DSM-style: a locally warped clip is a positive, another moment of the same video a negative."""

    dataset_mode = "triple"

    def __init__(self, backbone, num_classes, loss, margin, **moco):
        super().__init__(backbone, num_classes, **moco)
        self.loss, self.margin = loss, margin

    def make_views(self, batch, generator):
        """(anchor = view 0, its local warp = the positive, view 2 = the temporal negative)."""
        anchor = batch["views"][:, 0]
        return anchor, random_local_warp(anchor, generator), batch["views"][:, 2]

    def training_loss(self, batch, augment, generator):
        anchor, positive, negative = (augment(x) for x in self.make_views(batch, generator))
        if self.loss == "triplet":
            a, p, n = (F.normalize(self.moco.encoder_q(x), dim=1) for x in (anchor, positive, negative))
            return dsm_triplet(a, p, n, self.margin)
        return contrast_with_hard_negative(self.moco, anchor, positive, negative, batch["index"], generator)
