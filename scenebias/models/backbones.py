"""Video backbones behind one registry.

Every backbone maps a clip batch (B, C, T, H, W) to pooled features (B, D) and exposes `feature_dim`.
The suite, not the method, owns the backbone: methods put heads on top of it.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..registry import Registry

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


def _conv_block(c_in: int, c_out: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
    )


@BACKBONES.register("tiny3d")
def tiny3d(width: int = 32) -> Backbone:
    """A 4-layer 3-D CNN for CPU profiles: full 3x3x3 convolutions so it can see motion from layer one."""
    w = width
    trunk = nn.Sequential(
        _conv_block(3, w, (1, 2, 2)),
        _conv_block(w, 2 * w, (2, 2, 2)),
        _conv_block(2 * w, 4 * w, (2, 2, 2)),
        _conv_block(4 * w, 8 * w, (1, 2, 2)),
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


def build_backbone(name: str, **kwargs) -> Backbone:
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
