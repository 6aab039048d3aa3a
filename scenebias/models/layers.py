"""Building blocks shared by the backbones (scenebias/models/backbones.py) and the I3D trunk (i3d.py)."""
from __future__ import annotations

from torch import nn


def conv_block(c_in: int, c_out: int, stride: int | tuple[int, int, int], kernel: int = 3,
               batch_norm: bool = True) -> nn.Sequential:
    """Conv3d (cubic kernel, 'same' padding) -> [BatchNorm] -> ReLU; a conv bias only without BN (BN makes it moot)."""
    layers: list[nn.Module] = [nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm3d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def scaled(channels: int, width: float) -> int:
    """A channel count times the width multiplier, rounded, never below 1."""
    return max(1, round(channels * width))
