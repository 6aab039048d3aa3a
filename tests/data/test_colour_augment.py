"""The batched colour augmentation (scenebias.data.transforms.colour_augment): each clip's result is torchvision's
per-image ops applied with that clip's drawn parameters, frame by frame, in the configured stage order; the
parameters follow MoCo v2 / FAME's distributions; the input is never written; the memory format is kept; the
default stage order is the order from before the option existed."""
import itertools
import json
from pathlib import Path

import pytest
import torch
import torchvision.transforms.v2.functional as F

from scenebias.data import transforms as T
from scenebias.errors import ConfigError
from scenebias.plan import load_config

TV_OPS = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
AUTHORS = ("grayscale", "jitter", "blur")  # the FAME code's stage order
BEFORE_STAGES = Path(__file__).resolve().parents[1] / "fixtures" / "colour_schedule_before_stages.json"


def reference(x: torch.Tensor, p: T.ColourParams, stages=T.COLOUR_STAGES) -> torch.Tensor:
    """The per-clip loop with torchvision's functions and the drawn parameters (what the batched code replaces)."""
    kernel = T.blur_kernel_size(x.shape[-2])
    out = []
    for b, clip in enumerate(x):
        frames = clip.transpose(0, 1)  # (T, C, H, W)
        for stage in stages:
            if stage == "jitter" and p.jitter[b]:
                for op in p.order[b].tolist():
                    frames = TV_OPS[op](frames, float(p.factors[b, op]))
            if stage == "grayscale" and p.gray[b]:
                frames = F.rgb_to_grayscale(frames, num_output_channels=3)
            if stage == "blur" and p.blur[b]:
                sigma = float(p.sigma[b])
                frames = F.gaussian_blur(frames, [kernel, kernel], [sigma, sigma])
        out.append(frames.transpose(0, 1))
    return torch.stack(out).clamp(0, 1)


@pytest.mark.parametrize("stages", [T.COLOUR_STAGES, AUTHORS])
@pytest.mark.parametrize("shape", [(48, 3, 4, 20, 20), (6, 3, 1, 32, 32), (3, 3, 5, 16, 24)])
def test_each_clip_is_torchvisions_ops_with_its_drawn_parameters(shape, stages):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    params = T.sample_colour_params(shape[0], torch.Generator().manual_seed(7),
                                    sigma=T.blur_sigma_range(shape[-2]))
    got = T.colour_augment(x, torch.Generator().manual_seed(7), stages=stages)
    torch.testing.assert_close(got, reference(x, params, stages), atol=1e-5, rtol=0)
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


# ------------------------------------------------------------------------------------------ stage order
def test_default_stage_order_is_the_order_from_before_the_option():
    """The fixture was written by the code before `stages` existed (git HEAD of that day): the same operations on
    the same clips in the same order, hence the same numbers (the clip sums to float32 summation precision)."""
    before = json.loads(BEFORE_STAGES.read_text())
    params = T.sample_colour_params(64, torch.Generator().manual_seed(11))
    for stages in ((), (T.COLOUR_STAGES,)):
        assert [[name, index.tolist()] for name, index in T._colour_ops(params, *stages)] == before["schedule"]
    x = torch.rand(8, 3, 2, 12, 12, generator=torch.Generator().manual_seed(0))
    sums = T.colour_augment(x, torch.Generator().manual_seed(7)).sum(dim=(1, 2, 3, 4)).double()
    torch.testing.assert_close(sums, torch.tensor(before["clip_sums"], dtype=torch.float64), atol=1e-3, rtol=0)
    authors = [name for name, _ in T._colour_ops(params, AUTHORS)]
    assert authors == ["grayscale"] + [name for name, _ in before["schedule"][:-2]] + ["blur"]


def _one_op_each(hue: float, brightness: float) -> T.ColourParams:
    """Two clips, both jittered and grayed, no blur: clip 0's only jitter op is a hue shift, clip 1's brightness."""
    return T.ColourParams(jitter=torch.tensor([True, True]),
                          factors=torch.tensor([[1.0, 1.0, 1.0, hue], [brightness, 1.0, 1.0, 0.0]]),
                          order=torch.arange(4).expand(2, 4), gray=torch.tensor([True, True]),
                          blur=torch.tensor([False, False]), sigma=torch.ones(2))


def test_stage_order_decides_what_the_jitter_sees():
    """A pure red clip (1, 0, 0); gray = 0.2989 R + 0.587 G + 0.114 B (torchvision's weights).
    Jitter first (the suite): a third of a turn of hue makes it green (0, 1, 0), gray 0.587; brightness 1.5
    saturates red at 1, gray 0.2989. Grayscale first (the FAME code): gray 0.2989, which a hue shift leaves alone
    and brightness 1.5 lifts to 0.44835; the clip stays gray either way."""
    red = torch.zeros(2, 3, 2, 4, 4)
    red[:, 0] = 1.0
    params = _one_op_each(hue=1 / 3, brightness=1.5)
    suite = T.apply_colour(red, params, kernel=3)
    authors = T.apply_colour(red, params, kernel=3, stages=AUTHORS)
    for out, (clip_0, clip_1) in ((suite, (0.587, 0.2989)), (authors, (0.2989, 0.2989 * 1.5))):
        torch.testing.assert_close(out[0], torch.full_like(out[0], clip_0), atol=1e-5, rtol=0)
        torch.testing.assert_close(out[1], torch.full_like(out[1], clip_1), atol=1e-5, rtol=0)


def test_stages_are_checked_and_reach_the_augmentation_from_the_config():
    from scenebias.data.transforms import augment_factory

    with pytest.raises(ValueError, match="expected each of"):
        T.colour_augment(torch.rand(2, 3, 2, 8, 8), torch.Generator(), stages=("jitter", "blur"))
    with pytest.raises(ConfigError, match="stages"):
        load_config("smoke", overrides={"pretrain": {"colour": {"stages": ["jitter", "jitter", "blur"]}}})
    colour = load_config("paper")["pretrain"]["colour"]
    assert colour["stages"] == list(AUTHORS) and colour["scale_sigma"] is False  # the FAME code's sigma range
    x = torch.rand(32, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    got = augment_factory(torch.Generator().manual_seed(3), "contrastive", colour)(x)
    want = T.colour_augment(x, torch.Generator().manual_seed(3), stages=AUTHORS, scale_sigma=False)
    torch.testing.assert_close(got, T.normalize(want))
    suite = augment_factory(torch.Generator().manual_seed(3), "contrastive",
                            {**colour, "stages": list(T.COLOUR_STAGES)})
    assert not torch.allclose(got, suite(x))  # the order changed the clips that drew both jitter and grayscale
