"""Video backbones behind one registry.

Every backbone maps a clip batch (B, C, T, H, W) to pooled features (B, D) and exposes `feature_dim`.
The suite, not the method, owns the backbone: methods put heads on top of it.
"""
from __future__ import annotations

import inspect
import warnings
from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from .i3d import i3d_trunk
from .layers import conv_block, scaled

BACKBONES: Registry[Callable[..., "Backbone"]] = Registry("backbone")


class Backbone(nn.Module):
    """A trunk plus global average pooling over (T, H, W)."""

    def __init__(self, trunk: nn.Module, feature_dim: int, name: str) -> None:
        super().__init__()
        self.trunk = trunk
        self.feature_dim = feature_dim
        self.name = name

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, D, T', H', W'), for class-activation maps and the BE consistency term."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3, 4))


def _check_width(width: float) -> float:
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
        raise ConfigError(f"backbone option width must be a positive number (channel multiplier); got {width!r}")
    return float(width)


@BACKBONES.register("tiny3d")
def tiny3d(width: int = 16) -> Backbone:
    """A 4-layer 3-D CNN for CPU presets: full 3x3x3 convolutions so it can see motion from layer one. Width 16
    is the default preset's (config/config.yaml names tiny3d without options)."""
    w = width
    trunk = nn.Sequential(
        conv_block(3, w, (1, 2, 2)),
        conv_block(w, 2 * w, (2, 2, 2)),
        conv_block(2 * w, 4 * w, (2, 2, 2)),
        conv_block(4 * w, 8 * w, (1, 2, 2)),
    )
    return Backbone(trunk, 8 * w, "tiny3d")


def _torchvision_video(builder: Callable[..., nn.Module], name: str) -> Backbone:
    net = builder(weights=None)  # random init: nothing is downloaded, ever
    trunk = nn.Sequential(net.stem, net.layer1, net.layer2, net.layer3, net.layer4)
    return Backbone(trunk, net.fc.in_features, name)


@BACKBONES.register("r3d_18")
def r3d_18() -> Backbone:
    from torchvision.models.video import r3d_18 as build

    return _torchvision_video(build, "r3d_18")


@BACKBONES.register("r2plus1d_18")
def r2plus1d_18() -> Backbone:
    from torchvision.models.video import r2plus1d_18 as build

    return _torchvision_video(build, "r2plus1d_18")


# C3D, Tran et al. ICCV 2015, Sec. 3.3 and Fig. 3: eight 3x3x3 convolutions (stride 1, padding 1), each stage
# followed by a max pool. pool1 is 1x2x2 so that time is not merged too early; pool2..pool4 are 2x2x2. The BE code's
# C3D (the one behind BE Tables 1 and 3) replaces pool5 by a global average pool, which `Backbone.forward` is, and
# drops fc6/fc7/fc8: those are the supervised classifier, not part of the self-supervised trunk. So the trunk ends
# at conv5b and the pooled feature is 512-d.
C3D_STAGES: tuple[tuple[str, tuple[int, ...], tuple[int, int, int] | None], ...] = (
    # (stage, output channels of its convolutions, max pool after it)
    ("1", (64,), (1, 2, 2)),
    ("2", (128,), (2, 2, 2)),
    ("3", (256, 256), (2, 2, 2)),
    ("4", (512, 512), (2, 2, 2)),
    ("5", (512, 512), None),
)


@BACKBONES.register("c3d")
def c3d(width: float = 1.0, batch_norm: bool = True) -> Backbone:
    """C3D up to conv5b; feature map (512·width, ceil(T/8), ceil(H/16), ceil(W/16)), e.g. 2x7x7 at 16x112x112.

    batch_norm=True (default) follows the C3D of the BE code ("C3D with BN"): conv -> BN -> ReLU. The original C3D
    (trained supervised on Sports-1M) has no BN; batch_norm=False gives it, with conv biases. BN is the default
    because BE's C3D numbers come from a BN model and training from scratch is stable with it; the suite's MoCo
    emulates shuffle-BN, so BN statistics cannot leak the positive pair.
    Pools round up (ceil_mode, as Caffe's pooling did) so any clip of at least 1x1x1 passes; the paper input is
    16x112x112. `width` multiplies every channel count (thin models for CPU runs).
    """
    width = _check_width(width)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in = 3
    for stage, channels, pool in C3D_STAGES:
        suffixes = "ab" if len(channels) == 2 else [""]  # conv1, conv2, conv3a, conv3b, ...
        for suffix, c in zip(suffixes, channels):
            c_out = scaled(c, width)
            layers[f"conv{stage}{suffix}"] = conv_block(c_in, c_out, 1, batch_norm=batch_norm)
            c_in = c_out
        if pool is not None:
            layers[f"pool{stage}"] = nn.MaxPool3d(pool, stride=pool, ceil_mode=True)
    return Backbone(nn.Sequential(layers), c_in, "c3d")


@BACKBONES.register("i3d")
def i3d(width: float = 1.0) -> Backbone:
    """Inception-v1 I3D (Carreira & Zisserman, CVPR 2017), the "I3D-22" of BE and FAME; 1024-d feature.

    Feature map (1024·width, ceil(T/8), ceil(H/32), ceil(W/32)): 2x7x7 at 16x224x224 (BE Sec. 4.3's 1024x2x7x7),
    8x7x7 at 64x224x224. Any clip of at least 1x1x1 passes. See scenebias/models/i3d.py.
    """
    trunk, dim = i3d_trunk(_check_width(width))
    return Backbone(trunk, dim, "i3d")


@BACKBONES.register("i3d_r50")
def i3d_r50(width: float = 1.0) -> Backbone:
    """pytorchvideo's "I3D R50" (a ResNet-50 with some 3x1x1 temporal kernels, 2048-d), random init.

    Not the Inception I3D of the BE/FAME papers (`i3d`); offered as the common modern I3D variant. The clip needs
    at least 2 frames (a 2x1x1 temporal pool after res2 halves time). `width` scales the stem (64) and so every stage.
    """
    width = _check_width(width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pytorchvideo 0.1.5 calls torch.jit.script when imported
        from pytorchvideo.models.hub.resnet import i3d_r50 as build

    stem = scaled(64, width)
    net = build(pretrained=False, head=None, stem_dim_out=stem)  # pretrained=False: nothing is downloaded
    return Backbone(nn.Sequential(*net.blocks), 32 * stem, "i3d_r50")  # ResNet-50: res5 has 32x the stem width


def check_backbone_options(name: str, options: dict, where: str = "backbone.options") -> None:
    """Unknown option names are errors naming the option and the ones the backbone takes."""
    factory = BACKBONES.get(name)
    try:
        inspect.signature(factory).bind(**options)
    except TypeError:
        known = ", ".join(inspect.signature(factory).parameters) or "(none)"
        raise ConfigError(f"{where}: {sorted(options)} are not all options of backbone {name!r}; "
                          f"it takes: {known}") from None


def default_options(name: str) -> dict:
    """The backbone's options and their defaults, e.g. tiny3d: {"width": 16}."""
    return {k: v.default for k, v in inspect.signature(BACKBONES.get(name)).parameters.items()
            if v.default is not inspect.Parameter.empty}


def build_backbone(name: str, **kwargs) -> Backbone:
    check_backbone_options(name, kwargs)
    return BACKBONES.get(name)(**kwargs)


def complexity(backbone: nn.Module, clip_shape: tuple[int, int, int, int]) -> dict[str, float]:
    """Parameter count and FLOPs (fvcore, multiply-adds counted once) for one clip of shape (C, T, H, W)."""
    from fvcore.nn import FlopCountAnalysis, parameter_count

    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            flops = FlopCountAnalysis(backbone, torch.zeros(1, *clip_shape))
            flops.unsupported_ops_warnings(False)
            flops.uncalled_modules_warnings(False)
            total = float(flops.total())
    finally:
        backbone.train(was_training)
    return {"params": float(parameter_count(backbone)[""]), "flops": total}
