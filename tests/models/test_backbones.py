"""Backbones: every registered one builds offline and pools to (B, feature_dim); C3D and I3D match their papers."""
from __future__ import annotations

import math

import pytest
import torch
import torch.hub

from scenebias.errors import ConfigError, UnknownNameError
from scenebias.models.backbones import BACKBONES, build_backbone, complexity
from scenebias.models.i3d import Inception

# C3D, Tran et al. 2015 Fig. 3: conv1 .. conv5b, all 3x3x3.
C3D_CHANNELS = [3, 64, 128, 256, 256, 512, 512, 512, 512]
# GoogLeNet Table 1 / I3D Fig. 3 output channels: Mixed_3b .. Mixed_5c.
I3D_BLOCK_CHANNELS = [256, 480, 512, 512, 512, 528, 832, 832, 1024]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Any weight download fails the test; an empty hub dir so no cached weights are picked up silently either."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def refuse(url, *args, **kwargs):
        raise AssertionError(f"backbone tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_backbone_pools_its_feature_map(name, offline):
    torch.manual_seed(0)
    backbone = build_backbone(name)  # default options, full width
    x = torch.randn(2, 3, 4, 16, 16)
    fmap = backbone.feature_map(x)
    assert fmap.dim() == 5 and fmap.shape[:2] == (2, backbone.feature_dim)
    out = backbone(x)
    assert out.shape == (2, backbone.feature_dim)
    torch.testing.assert_close(out, fmap.mean(dim=(2, 3, 4)))


def test_unknown_backbone_names_the_new_ones():
    with pytest.raises(UnknownNameError) as err:
        build_backbone("c4d")
    assert all(name in str(err.value) for name in ("c3d", "i3d", "i3d_r50"))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_c3d_parameter_count_is_that_of_conv1_to_conv5(batch_norm):
    # 27·c_in·c_out weights per 3x3x3 conv; + BN scale and shift with BN, + conv bias without (the original C3D).
    per_channel = 2 if batch_norm else 1
    expected = sum(27 * c_in * c_out + per_channel * c_out for c_in, c_out in zip(C3D_CHANNELS, C3D_CHANNELS[1:]))
    assert expected == 27_653_184 + per_channel * 2_752
    with torch.device("meta"):  # shapes only: no memory, no init cost
        backbone = build_backbone("c3d", batch_norm=batch_norm)
    assert sum(p.numel() for p in backbone.parameters()) == expected
    assert backbone.feature_dim == 512


def test_paper_input_sizes_give_the_papers_feature_maps():
    # An empty batch propagates shapes through the real layers at no cost (eval: BN needs no batch statistics).
    c3d, i3d = build_backbone("c3d").eval(), build_backbone("i3d").eval()
    # pool1 keeps time, pool2..4 halve T, H, W: 16x112x112 -> 2x7x7 at conv5b.
    assert c3d.feature_map(torch.empty(0, 3, 16, 112, 112)).shape == (0, 512, 2, 7, 7)
    # BE Sec. 4.3: I3D representations of 1024x2x7x7 at 16x224x224; /8 in time, /32 in space.
    assert i3d.feature_map(torch.empty(0, 3, 16, 224, 224)).shape == (0, 1024, 2, 7, 7)
    assert i3d.feature_map(torch.empty(0, 3, 64, 224, 224)).shape == (0, 1024, 8, 7, 7)


def test_i3d_inception_blocks_match_the_paper_table():
    with torch.device("meta"):
        backbone = build_backbone("i3d")
    blocks = [m for m in backbone.trunk if isinstance(m, Inception)]
    assert [b.out_channels for b in blocks] == I3D_BLOCK_CHANNELS
    trunk = dict(backbone.trunk.named_children())
    assert trunk["conv3d_1a"][0].out_channels == 64 and trunk["conv3d_1a"][0].kernel_size == (7, 7, 7)
    assert trunk["conv3d_2c"][0].out_channels == 192
    assert backbone.feature_dim == 1024
    # Every block's input is the previous block's output (pools keep channels).
    assert [b.branches[0][0].in_channels for b in blocks] == [192] + I3D_BLOCK_CHANNELS[:-1]


@pytest.mark.parametrize("shape", [(2, 3, 1, 1, 1), (2, 3, 9, 40, 33), (2, 3, 16, 64, 64)])
def test_small_and_odd_clips_round_up_like_tf_same(shape):
    torch.manual_seed(0)
    _, _, t, h, w = shape
    x = torch.randn(*shape)
    fmap = build_backbone("i3d", width=0.125).feature_map(x)
    assert fmap.shape[2:] == (math.ceil(t / 8), math.ceil(h / 32), math.ceil(w / 32))
    fmap = build_backbone("c3d", width=0.125).feature_map(x)
    assert fmap.shape[2:] == (math.ceil(t / 8), math.ceil(h / 16), math.ceil(w / 16))


def test_width_scales_channels_and_feature_dim():
    assert build_backbone("c3d", width=0.25).feature_dim == 128
    # Mixed_5c at width 1/4: 384/4 + 384/4 + 128/4 + 128/4.
    assert build_backbone("i3d", width=0.25).feature_dim == 256
    assert build_backbone("i3d_r50", width=0.25).feature_dim == 512
    assert build_backbone("c3d", width=1e-3).feature_dim == 1  # channel counts never round to 0
    for bad in (0, -1.0, "wide"):
        with pytest.raises(ConfigError, match="width"):
            build_backbone("i3d", width=bad)


@pytest.mark.parametrize("name", ["c3d", "i3d", "i3d_r50"])
def test_state_dict_round_trips_strictly(name):
    torch.manual_seed(0)
    source = build_backbone(name, width=0.125)
    x = torch.randn(2, 3, 8, 32, 32)
    source(x)  # one training-mode pass so BN running statistics differ from a fresh model's
    torch.manual_seed(1)
    fresh = build_backbone(name, width=0.125)
    fresh.load_state_dict(source.state_dict(), strict=True)
    torch.testing.assert_close(fresh.eval()(x), source.eval()(x), rtol=0, atol=0)


def test_complexity_counts_c3d_convolutions_exactly():
    torch.manual_seed(0)
    backbone = build_backbone("c3d", width=0.125, batch_norm=False)
    channels = [3] + [max(1, round(c * 0.125)) for c in C3D_CHANNELS[1:]]
    # Output size of each conv for an 8x32x32 clip: pool1 (1,2,2), then /2 on all axes after conv2, conv3b, conv4b.
    sizes = [8 * 32 * 32, 8 * 16 * 16, 4 * 8 * 8, 4 * 8 * 8, 2 * 4 * 4, 2 * 4 * 4, 1 * 2 * 2, 1 * 2 * 2]
    macs = sum(27 * c_in * c_out * n for c_in, c_out, n in zip(channels, channels[1:], sizes))
    stats = complexity(backbone, (3, 8, 32, 32))
    assert stats["flops"] == macs  # fvcore counts one multiply-add as one flop; pools and ReLU are not counted
    assert stats["params"] == sum(27 * a * b + b for a, b in zip(channels, channels[1:]))
    stats = complexity(build_backbone("i3d", width=0.125), (3, 8, 32, 32))
    assert stats["params"] > 0 and stats["flops"] > 0
