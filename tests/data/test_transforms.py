import pytest
import torch

from scenebias.data import transforms as T


def _batch(b=4, t=6, h=32, w=32, seed=0, identical_frames=False):
    g = torch.Generator().manual_seed(seed)
    if identical_frames:
        return torch.rand(b, 3, 1, h, w, generator=g).expand(b, 3, t, h, w).contiguous()
    return torch.rand(b, 3, t, h, w, generator=g)


def test_colour_augment_temporally_consistent():
    x = _batch(b=16, identical_frames=True)
    y = T.colour_augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert all(torch.equal(y[:, :, 0], y[:, :, t]) for t in range(x.shape[2]))
    assert not torch.allclose(y, x)


def test_colour_augment_same_params_for_every_frame():
    """Frames that are equal in the input stay equal (frame 0 == frame 3 here), and each frame
    equals the clip-wise result of augmenting that frame alone with the same draws."""
    x = _batch(b=6, t=4)
    x[:, :, 3] = x[:, :, 0]
    y = T.colour_augment(x, torch.Generator().manual_seed(5))
    assert torch.equal(y[:, :, 0], y[:, :, 3])
    for t in range(4):
        yt = T.colour_augment(x[:, :, t:t + 1], torch.Generator().manual_seed(5))
        assert torch.allclose(yt[:, :, 0], y[:, :, t], atol=1e-5)


def test_colour_augment_deterministic_and_per_clip():
    x = _batch(b=8)
    a = T.colour_augment(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, T.colour_augment(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, T.colour_augment(x, torch.Generator().manual_seed(2)))
    same = x[:1].expand(8, -1, -1, -1, -1).contiguous()  # 8 copies of one clip get different params
    outs = T.colour_augment(same, torch.Generator().manual_seed(3))
    assert len({tuple(outs[i].flatten()[:50].tolist()) for i in range(8)}) > 4
    torch.manual_seed(0)
    r = torch.rand(1)
    torch.manual_seed(0)
    T.colour_augment(x, torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(1), r)  # global RNG untouched


def test_colour_augment_probabilities():
    """Grayscale about 20 % of clips, something changed in about 1 - 0.2*0.8*0.5... i.e. most clips."""
    x = _batch(b=400, t=1, h=16, w=16)
    y = T.colour_augment(x, torch.Generator().manual_seed(0))
    gray = (y[:, 0] - y[:, 1]).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert 0.13 < gray.float().mean() < 0.27
    unchanged = (y - x).abs().amax(dim=(1, 2, 3, 4)) < 1e-6
    # no jitter (0.2) and no grayscale (0.8); the blur's sigma scales with the crop (at most 2 * 16 / 224 px here),
    # so at 16 px a blurred clip's neighbours weigh e^-25 and it stays unchanged too
    assert abs(unchanged.float().mean() - 0.2 * 0.8) < 0.05


def test_blur_kernel_size():
    assert [T.blur_kernel_size(c) for c in (16, 32, 112, 224)] == [3, 3, 11, 23]


def test_normalize_roundtrip_and_layouts():
    x = _batch(b=2, t=3)
    n = T.normalize(x)
    assert torch.allclose(T.denormalize(n), x, atol=1e-6)
    mean = torch.tensor(T.KINETICS_MEAN).view(3, 1, 1, 1).expand(3, 2, 4, 4)
    assert torch.allclose(T.normalize(mean), torch.zeros(3, 2, 4, 4), atol=1e-6)
    one_std = mean + torch.tensor(T.KINETICS_STD).view(3, 1, 1, 1)
    assert torch.allclose(T.normalize(one_std), torch.ones(3, 2, 4, 4), atol=1e-5)
    assert torch.allclose(T.normalize(x)[1], T.normalize(x[1]))
    with pytest.raises(ValueError):
        T.normalize(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError):
        T.normalize(torch.zeros(2, 4, 3, 4, 4))  # channels not in dim 1


def test_resized_crop_params():
    g = torch.Generator().manual_seed(0)
    areas = []
    for _ in range(300):
        top, left, h, w = T.sample_resized_crop(40, 60, g)
        assert 0 <= top and 0 <= left and top + h <= 40 and left + w <= 60
        areas.append(h * w / 2400)
    assert min(areas) > 0.15 and max(areas) <= 1.0 and 0.4 < sum(areas) / len(areas) < 0.8
    a = [T.sample_spatial(32, 32, torch.Generator().manual_seed(9)) for _ in range(2)]
    assert a[0] == a[1]
    flips = [T.sample_spatial(32, 32, g).flip for _ in range(400)]
    assert 0.42 < sum(flips) / 400 < 0.58


def test_apply_spatial_same_on_every_frame():
    frames = torch.rand(1, 3, 32, 32).expand(5, 3, 32, 32).contiguous()
    frames[2] = torch.rand(3, 32, 32)
    p = T.CropParams(top=3, left=5, height=20, width=16, flip=True)
    out = T.apply_spatial(frames, p, 24)
    assert out.shape == (5, 3, 24, 24)
    assert torch.equal(out[0], out[4]) and not torch.equal(out[0], out[2])
    noflip = T.apply_spatial(frames, T.CropParams(3, 5, 20, 16, False), 24)
    assert torch.equal(out, noflip.flip(-1))
    ident = T.apply_spatial(frames, T.CropParams(0, 0, 32, 32, False), 32)
    assert torch.allclose(ident, frames, atol=1e-6)
    rc = T.resize_center_crop(torch.rand(2, 3, 40, 64), 32)
    assert rc.shape == (2, 3, 32, 32)
