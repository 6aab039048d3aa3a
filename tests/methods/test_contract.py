"""The contract every registered method meets, generated over the registry: every method and every variant
value it declares builds, makes views of the right shape, dtype and range, trains one CPU step without NaN,
is deterministic for a seed, and exports a backbone that loads strictly."""
import math

import pytest
import torch

from scenebias.models.backbones import build_backbone
from scenebias.plugins import load_methods

BATCH, CLIP_LEN, SIZE = 4, 8, 16


def _cases():
    registry = load_methods()
    for name in registry:
        spec = registry.get(name)
        yield pytest.param(name, {}, id=name)
        for option, values in spec.variants.items():
            for value in values:
                if value != spec.defaults.get(option):
                    yield pytest.param(name, {option: value}, id=f"{name}[{option}={value}]")


def _batch(objective, seed=11):
    g = torch.Generator().manual_seed(seed)
    t = CLIP_LEN * objective.clip_len_factor
    views = 3 if objective.dataset_mode == "triple" else 2
    batch = {"views": torch.rand(BATCH, views, 3, t, SIZE, SIZE, generator=g),
             "clip": torch.rand(BATCH, 3, t, SIZE, SIZE, generator=g),
             "label": torch.tensor([0, 1, 2, 0]), "index": torch.arange(BATCH)}
    if objective.needs_masks:  # ground-truth actor masks of each view, as ClipDataset(actor_masks=...) gives
        batch["masks"] = torch.rand(BATCH, views, t, SIZE, SIZE, generator=g) < 0.3
    return batch


def _build(name, options, seed=0):
    spec = load_methods().get(name)
    if "queue_size" in spec.defaults:
        options = {"queue_size": 16, **options}
    torch.manual_seed(seed)
    return spec.build(build_backbone("tiny3d", width=4), 3, options)


def _step(objective):
    """One SGD step: returns the loss, the stats and the parameters after the step."""
    batch = _batch(objective)
    optimiser = torch.optim.SGD([p for p in objective.parameters() if p.requires_grad], lr=0.01)
    loss, stats = objective.training_loss(batch, lambda x: (x - 0.45) / 0.225, torch.Generator().manual_seed(13))
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return loss.detach(), stats, [p.detach().clone() for p in objective.parameters()]


@pytest.mark.parametrize("name, options", list(_cases()))
def test_views_have_the_clip_shape_dtype_and_range(name, options):
    objective = _build(name, options)
    if objective.dataset_mode == "none":
        pytest.skip("nothing to train")
    views = objective.make_views(_batch(objective), torch.Generator().manual_seed(3))
    again = objective.make_views(_batch(objective), torch.Generator().manual_seed(3))
    assert isinstance(views, tuple) and views
    for view, same in zip(views, again):
        assert view.dtype == torch.float32 and view.dim() == 5
        assert view.shape[0] == BATCH and view.shape[1] == 3 and view.shape[-2:] == (SIZE, SIZE)
        assert view.shape[2] in (CLIP_LEN, CLIP_LEN * objective.clip_len_factor)
        assert torch.isfinite(view).all() and view.min() >= 0 and view.max() <= 1
        assert torch.equal(view, same)  # a pure function of the batch and the generator


@pytest.mark.parametrize("name, options", list(_cases()))
def test_one_step_is_finite_deterministic_and_the_backbone_reloads_strictly(name, options):
    first = _build(name, options)
    if first.dataset_mode == "none":
        fresh = build_backbone("tiny3d", width=4)
        fresh.load_state_dict(first.backbone.state_dict(), strict=True)
        return
    before = [p.detach().clone() for p in first.backbone.parameters()]
    loss_a, stats, params_a = _step(first)
    assert torch.isfinite(loss_a) and all(math.isfinite(float(v)) for v in stats.values())
    assert all(torch.isfinite(p).all() for p in params_a)
    assert any(not torch.equal(a, b) for a, b in zip(before, first.backbone.parameters())), "backbone not trained"
    loss_b, _, params_b = _step(_build(name, options))
    assert torch.equal(loss_a, loss_b)
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b))
    fresh = build_backbone("tiny3d", width=4)
    fresh.load_state_dict(first.backbone.state_dict(), strict=True)
    clip = torch.rand(2, 3, CLIP_LEN, SIZE, SIZE)
    first.backbone.eval(), fresh.eval()
    assert torch.equal(first.backbone(clip), fresh(clip))


def test_unknown_and_pinned_options_are_errors_naming_the_key():
    from scenebias.errors import ConfigError

    with pytest.raises(ConfigError, match="betta"):
        load_methods().get("moco+fame").options({"betta": 0.3})
    with pytest.raises(ConfigError, match="mask.*'bogus'"):
        load_methods().get("moco+fame").options({"mask": "bogus"})
    with pytest.raises(ConfigError, match="distractor.*fixed"):
        load_methods().get("moco+mixup").options({"distractor": "intra_frame"})
