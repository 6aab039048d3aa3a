"""The batched colour augmentation (scenebias.data.transforms.colour_augment): each clip's result is torchvision's
per-image ops applied with that clip's drawn parameters, frame by frame; the parameters follow MoCo v2 / FAME's
distributions; the input is never written; the memory format is kept."""
import itertools

import pytest
import torch
import torchvision.transforms.v2.functional as F

from scenebias.data import transforms as T

TV_OPS = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)


def reference(x: torch.Tensor, p: T.ColourParams) -> torch.Tensor:
    """The per-clip loop with torchvision's functions and the drawn parameters (what the batched code replaces)."""
    kernel = T.blur_kernel_size(x.shape[-2])
    out = []
    for b, clip in enumerate(x):
        frames = clip.transpose(0, 1)  # (T, C, H, W)
        if p.jitter[b]:
            for op in p.order[b].tolist():
                frames = TV_OPS[op](frames, float(p.factors[b, op]))
        if p.gray[b]:
            frames = F.rgb_to_grayscale(frames, num_output_channels=3)
        if p.blur[b]:
            sigma = float(p.sigma[b])
            frames = F.gaussian_blur(frames, [kernel, kernel], [sigma, sigma])
        out.append(frames.transpose(0, 1))
    return torch.stack(out).clamp(0, 1)


@pytest.mark.parametrize("shape", [(48, 3, 4, 20, 20), (6, 3, 1, 32, 32), (3, 3, 5, 16, 24)])
def test_each_clip_is_torchvisions_ops_with_its_drawn_parameters(shape):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    params = T.sample_colour_params(shape[0], torch.Generator().manual_seed(7),
                                    sigma=T.blur_sigma_range(shape[-2]))
    got = T.colour_augment(x, torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, reference(x, params), atol=1e-5, rtol=0)
    if shape[0] == 48:  # the batch exercises every op at every step, grayscale and blur
        assert {(s, int(o)) for s in range(4) for o in params.order[params.jitter, s]} == set(
            itertools.product(range(4), range(4)))
        assert params.gray.any() and params.blur.any() and (~params.jitter).any()


def test_parameters_follow_the_moco_v2_distributions():
    n = 40_000
    p = T.sample_colour_params(n, torch.Generator().manual_seed(0))
    for mask, prob in ((p.jitter, 0.8), (p.gray, 0.2), (p.blur, 0.5)):
        assert abs(mask.float().mean().item() - prob) < 0.01
    for column, (lo, hi) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1)]):
        f = p.factors[:, column]
        assert lo <= f.min() and f.max() <= hi
        assert f.min() < lo + 0.01 and f.max() > hi - 0.01  # fills the range
        assert abs(f.mean().item() - (lo + hi) / 2) < 0.01
        # uniform: each quarter of the range holds about a quarter of the draws
        quarters = torch.histc(f, bins=4, min=lo, max=hi) / n
        assert torch.allclose(quarters, torch.full((4,), 0.25), atol=0.015)
    assert 0.1 <= p.sigma.min() and p.sigma.max() <= 2.0 and abs(p.sigma.mean().item() - 1.05) < 0.02
    assert torch.equal(p.order.sort(dim=1).values, torch.arange(4).expand(n, 4))  # permutations
    counts = torch.unique(p.order, dim=0, return_counts=True)[1]
    assert len(counts) == 24 and (counts.float() / n - 1 / 24).abs().max() < 0.006  # all 24 orders, uniform


def test_deterministic_for_a_generator_and_the_input_is_never_written():
    for t in (1, 4):  # T = 1: the (B, T, C, H, W) working copy could alias the input
        x = torch.rand(8, 3, t, 16, 16, generator=torch.Generator().manual_seed(t))
        before = x.clone()
        a = T.colour_augment(x, torch.Generator().manual_seed(1))
        assert torch.equal(x, before)
        assert torch.equal(a, T.colour_augment(x, torch.Generator().manual_seed(1)))
        assert not torch.equal(a, T.colour_augment(x, torch.Generator().manual_seed(2)))


def test_frames_of_a_clip_share_its_parameters():
    """Per frame, the batched result equals augmenting that frame alone with the same draws (frame-wise ops with
    clip-wise parameters), and a clip of identical frames stays a clip of identical frames."""
    x = torch.rand(10, 3, 5, 16, 16, generator=torch.Generator().manual_seed(3))
    x[:, :, 4] = x[:, :, 1]
    y = T.colour_augment(x, torch.Generator().manual_seed(9))
    assert torch.equal(y[:, :, 4], y[:, :, 1])
    for t in range(5):
        torch.testing.assert_close(T.colour_augment(x[:, :, t:t + 1], torch.Generator().manual_seed(9))[:, :, 0],
                                   y[:, :, t], atol=1e-5, rtol=0)


def test_channels_last_input_gives_the_same_values_in_channels_last():
    x = torch.rand(6, 3, 4, 16, 16, generator=torch.Generator().manual_seed(4))
    cl = x.contiguous(memory_format=torch.channels_last_3d)
    a = T.colour_augment(x, torch.Generator().manual_seed(5))
    b = T.colour_augment(cl, torch.Generator().manual_seed(5))
    assert a.is_contiguous() and b.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
