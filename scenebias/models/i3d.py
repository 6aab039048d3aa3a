"""Inception-v1 I3D: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017, Sec. 2.4 and Fig. 3.

GoogLeNet (Szegedy et al. CVPR 2015, Table 1) with every k x k filter inflated to k x k x k, BN after every
convolution, and its 5x5 branch as 3x3x3 (as in the authors' release). The first two max pools keep time
(1x3x3, stride 1x2x2); the others are 3x3x3 and 2x2x2 with stride 2. Used by BE (Tables 1-4, "I3D-22") and FAME
(Tables 1-6) with a 1024-d pooled feature; the classifier (average pool + 1x1x1 logits) is not part of the trunk.

Padding follows TensorFlow's 'SAME' output size, ceil(n / stride), with symmetric padding in place of TF's
bottom-heavy padding for even inputs (a half-pixel shift of the sampling grid, no change of shapes).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .layers import conv_block, scaled

# Per Inception block (GoogLeNet Table 1 columns): #1x1, #3x3 reduce, #3x3, #"5x5" reduce, #"5x5" (3x3x3 here),
# pool proj. A block outputs #1x1 + #3x3 + #"5x5" + pool proj channels: 256, 480, 512, 512, 512, 528, 832, 832, 1024.
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "mixed_3b": (64, 96, 128, 16, 32, 32),
    "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64),
    "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64),
    "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128),
    "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}

# The max pool (kernel, stride) in front of the block that opens each Inception stage (I3D Fig. 3).
POOL_BEFORE: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "mixed_3b": ((1, 3, 3), (1, 2, 2)),  # maxpool3d_3a: no temporal pooling this early
    "mixed_4b": ((3, 3, 3), (2, 2, 2)),  # maxpool3d_4a
    "mixed_5b": ((2, 2, 2), (2, 2, 2)),  # maxpool3d_5a
}


def same_max_pool(kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> nn.MaxPool3d:
    """Max pool with output size ceil(n / stride) per axis, like TF 'SAME': odd kernels pad (k-1)/2 on both sides;
    an even kernel (2, stride 2) pads nothing and rounds up, so a size of 1 stays 1."""
    odd = [k % 2 == 1 for k in kernel]
    if len(set(odd)) != 1:
        raise ValueError(f"kernel {kernel}: mixed odd and even sizes are not supported")
    return nn.MaxPool3d(kernel, stride, padding=tuple((k - 1) // 2 for k in kernel), ceil_mode=not odd[0])


class Inception(nn.Module):
    """Four parallel branches concatenated on channels: 1x1x1 | 1x1x1 -> 3x3x3 | 1x1x1 -> 3x3x3 | pool -> 1x1x1."""

    def __init__(self, c_in: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1_reduce, b1, b2_reduce, b2, b3 = widths
        self.branches = nn.ModuleList([
            conv_block(c_in, b0, 1, kernel=1),
            nn.Sequential(conv_block(c_in, b1_reduce, 1, kernel=1), conv_block(b1_reduce, b1, 1, kernel=3)),
            nn.Sequential(conv_block(c_in, b2_reduce, 1, kernel=1), conv_block(b2_reduce, b2, 1, kernel=3)),
            nn.Sequential(same_max_pool((3, 3, 3), (1, 1, 1)), conv_block(c_in, b3, 1, kernel=1)),
        ])
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def i3d_trunk(width: float = 1.0) -> tuple[nn.Sequential, int]:
    """Conv3d_1a .. Mixed_5c with every channel count times `width`; returns (trunk, output channels)."""
    stem = [scaled(c, width) for c in (64, 64, 192)]
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv3d_1a=conv_block(3, stem[0], 2, kernel=7),
        maxpool3d_2a=same_max_pool((1, 3, 3), (1, 2, 2)),
        conv3d_2b=conv_block(stem[0], stem[1], 1, kernel=1),
        conv3d_2c=conv_block(stem[1], stem[2], 1, kernel=3),
    )
    c_in = stem[2]
    for name, widths in INCEPTION_WIDTHS.items():
        if name in POOL_BEFORE:
            layers[f"maxpool3d_{name[-2]}a"] = same_max_pool(*POOL_BEFORE[name])
        block = Inception(c_in, tuple(scaled(w, width) for w in widths))
        layers[name] = block
        c_in = block.out_channels
    return nn.Sequential(layers), c_in
