"""Class activation maps (CAMs) of pretrained backbones, and how much of their energy lands on the actor.

What the papers show:
- BE (Wang et al., CVPR 2021, §4.7, Figs. 6–7): "small modifications on CAM": the feature map before the global
  average pool (512×4×4×4 for their 16×224² clips) averaged over channels and resized to the input. No classifier
  is involved; this is `energy_cam`, the default here because MoCo, MoCo+BE and MoCo+FAME have no head.
- FAME (Ding et al., CVPR 2022, §4.4, Fig. 4): CAM (Zhou et al., CVPR 2016) of a linear classifier on the frozen
  backbone, Σ_k w_k^c A_k for class c. For a linear head on globally average-pooled features, Grad-CAM (Selvaraju
  et al., ICCV 2017, eqs. 1–2) weighs channel k by the mean over positions of ∂y^c/∂A_k = w_k^c / #positions, i.e.
  the same map up to a positive factor; `grad_cam` therefore reproduces FAME's CAM for a linear head and also
  works for deeper heads. Class c is the predicted one unless a target is given.
Both maps are ReLU'd, trilinearly upsampled to the clip's T×H×W and min-max scaled per clip to [0, 1] (cam − min,
then / max, as CAM's reference code does; a constant map becomes zero). The scaling matters for the shares below:
the channel mean of post-ReLU features has a large positive floor everywhere, and dividing by the maximum only
would leave that floor in, pulling every share towards the mask's area whatever the model attends to.

The quantitative companion (no paper could measure it: real videos have no actor masks; the generated set has
one per frame): `energy_inside` = Σ cam·mask / Σ cam, the share of a clip's CAM energy inside
- the ground-truth actor masks, frame by frame (`cam_in_actor`), and
- FAME's foreground mask of the same clip (methods/fame.py `foreground_mask`, constant over time;
  `cam_in_fame_mask`).
A CAM spread evenly over the clip scores the masks' area share (`actor_area`, `fame_mask_area` in the CSV): that
is chance level, to read each number against.

Clips, as in scenebias.analysis.mask_quality: the test-mode middle window of each test video (cfg["clip"]
clip_len, stride; short side resized to crop_size, centre crop), in [0, 1] for FAME's mask and Kinetics-normalised
for the model, as every evaluation protocol feeds it. The same test-split indices are used for every model and
every flavour, so the rows for ucf101 and ucf101_swapped show the same actor in front of its own and of a swapped
scene.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from matplotlib.lines import Line2D
from tqdm import tqdm

from ..augment.foreground import foreground_mask
from ..config import data_dir
from ..data.sources import is_generated
from ..data.datasets import ClipDataset
from ..data.frame_cache import frame_spec
from ..device import to_device
from ..errors import ConfigError, DataError
from ..evaluate.protocol import kinetics_normalize
from ..io import atomic_path
from ..plugins import get_method
from ..report.plotting import pyplot
from ..device import resolve_device
from ..models.files import load_model
from ..resolve import split
from .mask_quality import annotation_path, clip_and_truth, select_videos, test_clip
from .stats import mean_ci

Normalize = Callable[[torch.Tensor], torch.Tensor]

FAME_BETA = 0.5
"""FAME's default foreground share β (FAME §4.1; methods/fame.py defaults)."""
MAX_VIDEOS = 200
"""Test videos measured per flavour (evenly spaced over the class-sorted split, so every class is in)."""
BATCH = 32
"""Clips per forward pass (bounds memory at large crops)."""
COLUMNS = ["model", "clip", "cam_in_actor", "cam_in_fame_mask", "flavour", "video", "label", "cam",
           "actor_area", "fame_mask_area"]
"""Per-clip CSV: `clip` is the index into the flavour's test split (the same for every model)."""
SUMMARY_COLUMNS = ["model", "flavour", "cam", "clips", "cam_in_actor_mean", "cam_in_actor_ci95",
                   "cam_in_fame_mask_mean", "cam_in_fame_mask_ci95", "actor_area", "fame_mask_area"]


# ------------------------------------------------------------------------------------------- maps
def last_feature_map(model: nn.Module, x: torch.Tensor, within: nn.Module | None = None
                     ) -> tuple[torch.Tensor, Any]:
    """Run `model(x)`; return (the last 5-D tensor a module of `within` (default `model`) output, model's output).

    Forward hooks fire when a module finishes, so the last 5-D output is the outermost module that still
    returns a (B, D, t, h, w) map: the trunk of a scenebias Backbone, i.e. its last conv block, whatever the
    architecture (tiny3d, r3d_18, r2plus1d_18, c3d, i3d, i3d_r50)."""
    captured: list[torch.Tensor] = []

    def keep(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 5:
            captured[:] = [output]

    handles = [m.register_forward_hook(keep) for m in (within if within is not None else model).modules()]
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    if not captured:
        name = type(within if within is not None else model).__name__
        raise ValueError(f"{name} produced no 5-D (B, D, T, H, W) feature map on input {tuple(x.shape)}")
    return captured[0], out


def normalise_maps(cam: torch.Tensor) -> torch.Tensor:
    """Min-max scale each map (dim 0 indexes maps) to [0, 1]; a constant map becomes all zeros."""
    shape = (-1, *([1] * (cam.dim() - 1)))
    flat = cam.flatten(1)
    low, span = flat.amin(dim=1).view(shape), (flat.amax(dim=1) - flat.amin(dim=1)).view(shape)
    return torch.where(span > 0, (cam - low) / span.clamp(min=torch.finfo(cam.dtype).tiny), torch.zeros_like(cam))


def upsample(cam: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(B, 1, t, h, w) -> (B, T, H, W), trilinear."""
    return F.interpolate(cam, size=tuple(size), mode="trilinear", align_corners=False)[:, 0]


def energy_cam(features: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """BE §4.7: channel mean of the (B, D, t, h, w) feature map, ReLU, upsampled to `size` (T, H, W), min-max."""
    return normalise_maps(upsample(features.mean(dim=1, keepdim=True).relu(), size))


def grad_cam(features: torch.Tensor, gradients: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): α_k = mean over positions of ∂y^c/∂A_k (eq. 1), ReLU(Σ_k α_k A_k)
    (eq. 2), upsampled to `size` (T, H, W), min-max. For a linear head on pooled features this is CAM (FAME Fig. 4)."""
    weights = gradients.mean(dim=(2, 3, 4), keepdim=True)
    return normalise_maps(upsample((weights * features).sum(dim=1, keepdim=True).relu(), size))


def activation_map(backbone: nn.Module, clip: torch.Tensor, classifier: nn.Module | None = None,
                   target: torch.Tensor | int | None = None, normalize: Normalize = kinetics_normalize
                   ) -> torch.Tensor:
    """CAM of clips (B, 3, T, H, W) or one clip (3, T, H, W) in [0, 1] -> (B, T, H, W) or (T, H, W) in [0, 1].

    Without `classifier`: the feature-energy CAM (`energy_cam`) of `backbone`'s last 5-D feature map. With
    `classifier` (a clips -> logits module that runs `backbone`, e.g. a method's `classifier()`): Grad-CAM on
    that same map for class `target` (default: each clip's predicted class). Models run in eval mode (BN running
    statistics, no dropout), as at test time; their train/eval mode is restored afterwards. They are moved to the
    clips' device (in place).
    """
    single = clip.dim() == 4
    x = normalize((clip[None] if single else clip).float())
    modules = [to_device(m, x.device) for m in [backbone] + ([classifier] if classifier is not None else [])]
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        if classifier is None:
            with torch.no_grad():
                features, _ = last_feature_map(backbone, x)
            cam = energy_cam(features, x.shape[2:])
        else:
            with torch.enable_grad():
                # the input asks for gradients so the map has a graph even when the weights are frozen
                features, logits = last_feature_map(classifier, x.detach().requires_grad_(True), within=backbone)
                if logits.dim() != 2:
                    raise ValueError(f"classifier must return (B, classes) logits; got {tuple(logits.shape)}")
                if target is None:
                    classes = logits.argmax(dim=1)
                else:
                    classes = torch.as_tensor(target, device=logits.device).long().expand(logits.shape[0])
                score = logits.gather(1, classes[:, None]).sum()  # clips are independent in eval mode
                (gradients,) = torch.autograd.grad(score, features)
            cam = grad_cam(features.detach(), gradients, x.shape[2:])
    finally:
        for m, mode in zip(modules, was_training):
            m.train(mode)
    return cam[0] if single else cam


def energy_inside(cam: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of each clip's CAM energy inside `mask`: Σ cam·mask / Σ cam, for cam (B, T, H, W) and a mask
    (B, T, H, W) per frame or (B, H, W) for every frame. NaN for an all-zero CAM (no energy to place)."""
    m = mask.to(cam.dtype)
    if m.dim() == cam.dim() - 1:
        m = m[:, None]
    inside = (cam * m).flatten(1).sum(dim=1)
    total = cam.flatten(1).sum(dim=1)
    return torch.where(total > 0, inside / total.clamp(min=torch.finfo(cam.dtype).tiny),
                       torch.full_like(total, math.nan))


# ------------------------------------------------------------------------------------------- data
@dataclass
class ClipSet:
    """The measured clips of one flavour: `indices` into its test split, clips (N, 3, T, S, S) in [0, 1],
    ground-truth actor masks (N, T, S, S; None on a real dataset, which has none) and FAME foreground masks
    (N, S, S), both bool."""
    flavour: str
    indices: list[int]
    videos: list[str]
    labels: list[str]
    clips: torch.Tensor
    actor: torch.Tensor | None
    fame: torch.Tensor


def load_clips(cfg: dict[str, Any], flavour: str, indices: Sequence[int], beta: float = FAME_BETA,
               colour_mode: str = "paper", progress: bool = False) -> ClipSet:
    """Test-split videos `indices` of `flavour`: clip, ground truth (generated flavours only) and FAME mask (see
    the module docstring)."""
    test = split(cfg, flavour, "test")
    if not indices:
        raise DataError(f"{data_dir(cfg) / flavour}: no test clips chosen for the activation maps")
    if max(indices) >= len(test.records):
        raise DataError(f"{data_dir(cfg) / flavour}: the test split has {len(test.records)} videos; "
                        f"clip index {max(indices)} does not exist")
    records = [test.records[i] for i in indices]
    c = cfg["clip"]
    truth = is_generated(cfg, flavour)
    # a real video is seen as the models saw it (resized, stored as configured); generated frames stay as
    # decoded, the size their actor masks have
    frames = {} if truth else {"frame_spec": frame_spec(cfg)}
    dataset = ClipDataset(records, clip_len=c["clip_len"], stride=c["stride"], mode="test", num_test_clips=1,
                          crop_size=c["crop_size"], cache=False, **frames)
    root = data_dir(cfg) / flavour
    pairs = [clip_and_truth(dataset, i, annotation_path(root, r)) if truth else (test_clip(dataset, i), None)
             for i, r in enumerate(_progress(records, progress, f"clips {flavour}"))]
    clips = torch.stack([p[0] for p in pairs])
    fame = torch.cat([foreground_mask(clips[lo:lo + BATCH], "fame", beta, colour_mode).bool()
                      for lo in range(0, len(clips), BATCH)])
    return ClipSet(flavour, list(indices), [r.video_id for r in records],
                   [test.class_names[r.label] for r in records], clips,
                   torch.stack([p[1] for p in pairs]) if truth else None, fame)


def classifier_of(model: dict[str, Any]) -> nn.Module:
    """The clips -> logits module of a loaded model file (scenebias.models.files.load_model) that has a head;
    its backbone is `model["backbone_module"]` itself. Rebuilt as the `classifier` protocol does."""
    if model["head"] is None:
        raise ConfigError(f"Grad-CAM needs a classifier head, but a {model['method']!r} model has none "
                          f"(use the feature-energy CAM)")
    backbone = model["backbone_module"]
    objective = get_method(model["method"]).build(backbone, model["num_classes"], model["options"])
    objective.load_state_dict({"backbone." + k: v for k, v in model["backbone"].items()}
                              | {"head." + k.split(".", 1)[1]: v for k, v in model["head"].items()}, strict=True)
    return objective.classifier()


# ------------------------------------------------------------------------------------------- measuring
def model_cams(backbone: nn.Module, clips: torch.Tensor, classifier: nn.Module | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """`activation_map` over clips (N, 3, T, H, W) in batches of BATCH, computed on `device`; the maps on the CPU."""
    return torch.cat([activation_map(backbone, to_device(clips[lo:lo + BATCH], device), classifier).cpu()
                      for lo in range(0, len(clips), BATCH)])


def score_clips(label: str, cams: torch.Tensor, clipset: ClipSet, cam: str) -> pd.DataFrame:
    """One row per clip: CAM energy share in the actor and in FAME's mask, next to their area shares (chance);
    the actor's columns are NaN where the flavour has no ground truth."""
    none = torch.full((len(clipset.indices),), float("nan"))
    actor = clipset.actor
    return pd.DataFrame({
        "model": label, "clip": clipset.indices,
        "cam_in_actor": (none if actor is None else energy_inside(cams, actor)).numpy(),
        "cam_in_fame_mask": energy_inside(cams, clipset.fame).numpy(),
        "flavour": clipset.flavour, "video": clipset.videos, "label": clipset.labels, "cam": cam,
        "actor_area": (none if actor is None else actor.float().flatten(1).mean(dim=1)).numpy(),
        "fame_mask_area": clipset.fame.float().flatten(1).mean(dim=1).numpy()})[COLUMNS]


def summarise_cams(per_clip: pd.DataFrame) -> pd.DataFrame:
    """Per model × flavour: mean and 95% Student-t CI over clips of both shares, and the mean area shares."""
    rows = []
    for (model, flavour, cam), g in per_clip.groupby(["model", "flavour", "cam"], sort=False):
        row: dict[str, Any] = {"model": model, "flavour": flavour, "cam": cam, "clips": len(g)}
        for col in ("cam_in_actor", "cam_in_fame_mask"):
            row[f"{col}_mean"], row[f"{col}_ci95"], _ = mean_ci(g[col])
        row["actor_area"], row["fame_mask_area"] = float(g["actor_area"].mean()), float(g["fame_mask_area"].mean())
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# ------------------------------------------------------------------------------------------- figure
ACTOR_COLOUR = "white"
FAME_COLOUR = "magenta"


def _outline(ax, mask: np.ndarray, colour: str, style: str) -> None:
    if mask.any() and not mask.all():  # a contour needs both sides
        ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=1.2, linestyles=style)


def plot_cams(frames: torch.Tensor, actor: torch.Tensor, fame: torch.Tensor, cams: Mapping[str, torch.Tensor],
              out_png: str | Path, titles: Sequence[str] | None = None, row_notes: Mapping[str, str] | None = None,
              alpha: float = 0.5, suptitle: str | None = None) -> None:
    """Grid of CAM overlays, written atomically to `out_png`.

    frames (N, 3, H, W) in [0, 1] (one frame per clip, e.g. the middle one), actor (N, H, W; None: no ground
    truth, no outline) and fame (N, H, W) masks of those frames; cams: row label -> (N, H, W) maps in [0, 1]. Row 0 is the plain frame; every other
    row one model, its CAM (jet, `alpha`) over the frame in grey (the scene's own colours would hide the map).
    Every panel carries the ground-truth actor outline (white, solid) and FAME's mask outline (magenta, dashed).
    Columns: the N clips (`titles`); `row_notes` go under the row labels."""
    plt = pyplot()
    n = frames.shape[0]
    rows = [("clip", None), *cams.items()]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.7 * n + 1.6, 1.75 * len(rows) + 0.9), squeeze=False)
    image = None
    for r, (label, cam) in enumerate(rows):
        for j in range(n):
            ax = axes[r][j]
            frame = frames[j].clamp(0, 1)
            if cam is None:
                ax.imshow(frame.permute(1, 2, 0).numpy(), interpolation="nearest")
            else:
                ax.imshow(frame.mean(dim=0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                image = ax.imshow(cam[j].numpy(), cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
            if actor is not None:
                _outline(ax, actor[j].numpy(), ACTOR_COLOUR, "solid")
            _outline(ax, fame[j].numpy(), FAME_COLOUR, "dashed")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and titles is not None:
                ax.set_title(titles[j], fontsize=7)
        note = (row_notes or {}).get(label)
        axes[r][0].set_ylabel(label + (f"\n{note}" if note else ""), fontsize=7)
    handles = ([] if actor is None else [Line2D([], [], color=ACTOR_COLOUR, lw=1.4, label="ground-truth actor")])
    handles.append(Line2D([], [], color=FAME_COLOUR, lw=1.4, ls="--", label="FAME mask"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=True, facecolor="0.6")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, label="CAM")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------- the command
def run_cams(cfg: dict[str, Any], models: Sequence[tuple[str, str | Path]], flavours: Sequence[str],
             figure_clips: int = 4, max_videos: int = MAX_VIDEOS, cam: str = "energy", beta: float = FAME_BETA,
             out_png: str | Path | None = None, out_csv: str | Path | None = None,
             progress: bool = True) -> pd.DataFrame:
    """CAMs of every model on the same test clips of each flavour; per-clip energy shares (returned, and written
    to `out_csv`) and the figure of `figure_clips` clips per flavour (`out_png`). Outputs are written only once
    everything has been computed.

    cam: "energy" (BE §4.7, any model) or "gradcam" (FAME Fig. 4 style; models with a classifier head only)."""
    if cam not in ("energy", "gradcam"):
        raise ConfigError(f"cam: {cam!r} is not 'energy' or 'gradcam'")
    if not models or not flavours:
        raise ConfigError(f"the activation maps need models and flavours; got {len(models)} models and "
                          f"flavours {list(flavours)}")
    labels = [label for label, _ in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"model labels must be distinct; got {labels}")
    if figure_clips < 1 or max_videos < 1:
        raise ConfigError(f"clips ({figure_clips}) and max videos ({max_videos}) must be at least 1")
    torch.set_num_threads(int(cfg.get("threads", 1)))
    device = resolve_device(cfg)
    loaded = []
    for label, path in models:
        model = load_model(path)
        loaded.append((label, model["backbone_module"], classifier_of(model) if cam == "gradcam" else None))
    clipsets, shown = [], []
    for flavour in flavours:
        indices = select_videos(len(split(cfg, flavour, "test").records), max_videos)
        clipsets.append(load_clips(cfg, flavour, indices, beta, progress=progress))
        shown.append(select_videos(len(indices), figure_clips))  # positions within the measured clips
    parts, panels = [], {label: [] for label in labels}
    for label, backbone, classifier in _progress(loaded, progress, "models"):
        for clipset, pos in zip(clipsets, shown):
            cams = model_cams(backbone, clipset.clips, classifier, device)
            parts.append(score_clips(label, cams, clipset, cam))
            panels[label].append(cams[pos, cams.shape[1] // 2])
    per_clip = pd.concat(parts, ignore_index=True)
    if out_png is not None:
        summary = summarise_cams(per_clip)
        truth = all(cs.actor is not None for cs in clipsets)
        notes = {label: "in actor " + " / ".join("–" if math.isnan(v) else f"{v:.2f}" for v in
                                                 summary.loc[summary["model"] == label, "cam_in_actor_mean"])
                 for label in labels} if truth else None
        first = summary.drop_duplicates("flavour")
        chance = " / ".join("–" if math.isnan(v) else f"{v:.2f}" for v in first["actor_area"])
        middle = clipsets[0].clips.shape[2] // 2
        kind = "Feature-energy CAM" if cam == "energy" else "Grad-CAM"
        measured = (f"In actor: share of CAM energy inside the actor, mean over {len(clipsets[0].indices)} clips of "
                    f"{' / '.join(first['flavour'])}\n(chance = actor area {chance})" if truth else
                    "No actor outline or in-actor share: real videos have no ground-truth actor masks")
        plot_cams(torch.cat([cs.clips[pos, :, middle] for cs, pos in zip(clipsets, shown)]),
                  torch.cat([cs.actor[pos, middle] for cs, pos in zip(clipsets, shown)]) if truth else None,
                  torch.cat([cs.fame[pos] for cs, pos in zip(clipsets, shown)]),
                  {label: torch.cat(maps) for label, maps in panels.items()}, out_png,
                  titles=[f"{cs.flavour} #{cs.indices[p]}\n{cs.labels[p]}" for cs, pos in zip(clipsets, shown)
                          for p in pos],
                  row_notes=notes, suptitle=f"{kind}, middle frame. {measured}")
    if out_csv is not None:
        with atomic_path(out_csv) as tmp:
            per_clip.to_csv(tmp, index=False, float_format="%.6g")
    return per_clip


def parse_model_arg(text: str) -> tuple[str, str]:
    """'LABEL=PATH' -> (LABEL, PATH); the label may contain '+' (e.g. moco+be=...)."""
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise ConfigError(f"--model {text!r}: expected LABEL=PATH (e.g. moco=results/default/pretrain/moco/"
                          f"seed0/model.pt)")
    return label, path


def _progress(items, enabled: bool, desc: str):
    return tqdm(items, desc=desc, leave=False, disable=not enabled)
