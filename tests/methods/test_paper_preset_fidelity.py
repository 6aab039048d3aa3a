"""The paper preset's readings of the papers and, where they are silent, of the authors' code (docs/methods.md):
RotNet's four rotations (BE eq. 3), FAME's official-code colour statistics with the paper's partner, the FAME code's
blur sigma at any crop, float32 training; and the default and smoke presets untouched by them."""
from __future__ import annotations

import pytest
import torch

from scenebias.data import transforms as T
from scenebias.plan import load_config
from scenebias.plugins import load_methods


@pytest.fixture(scope="module")
def paper():
    return load_config("paper")


def _runs(cfg, method):
    return {name: spec for name, spec in cfg["runs"].items() if spec["method"] == method}


def test_every_paper_rotnet_run_feeds_all_four_rotations(paper):
    runs = _runs(paper, "rotnet")
    assert {"rotnet", "rotnet+be"} <= set(runs) and any(spec.get("from_tables") for spec in runs.values())
    for name, spec in runs.items():
        assert spec["options"]["rotations"] == "all", name


def test_every_paper_fame_run_uses_the_authors_colours_and_the_papers_partner(paper):
    runs = _runs(paper, "moco+fame")
    assert any(spec.get("from_tables") for spec in runs.values())
    for name, spec in runs.items():
        if spec["options"].get("mask") == "oracle":
            continue  # the positive control (generated data only) keeps the suite's default reading
        full = load_methods().get("moco+fame").options(spec["options"])
        assert (full["colour_mode"], full["partner"]) == ("official-code", "derangement"), name


def test_paper_preset_trains_in_float32_with_the_fame_codes_blur(paper):
    assert paper["pretrain"]["precision"] == "fp32"
    assert paper["evaluate"]["finetune"]["precision"] == "fp32"
    assert paper["pretrain"]["colour"]["scale_sigma"] is False


@pytest.mark.parametrize("preset", ["default", "smoke"])
def test_default_and_smoke_presets_keep_their_settings(preset):
    cfg = load_config(preset)
    assert cfg["pretrain"]["precision"] == "auto" and "scale_sigma" not in cfg["pretrain"]["colour"]
    assert cfg["evaluate"]["finetune"].get("precision", "auto") == "auto"
    for name, spec in _runs(cfg, "moco+fame").items():
        assert spec.get("options", {}).get("colour_mode", "paper") == "paper", name
    if preset == "default":
        assert cfg["runs"]["rotnet"]["options"]["rotations"] == "random"


@pytest.mark.parametrize("crop", [32, 112, 224])
def test_scale_sigma_false_draws_the_fame_codes_sigma_at_any_crop(crop):
    x = torch.rand(6, 3, 2, crop, crop, generator=torch.Generator().manual_seed(0))
    kernel = T.blur_kernel_size(crop)
    fixed = T.apply_colour(x, T.sample_colour_params(6, torch.Generator().manual_seed(7), sigma=(0.1, 2.0)), kernel)
    scaled = T.apply_colour(x, T.sample_colour_params(6, torch.Generator().manual_seed(7),
                                                      sigma=T.blur_sigma_range(crop)), kernel)
    torch.testing.assert_close(T.colour_augment(x, torch.Generator().manual_seed(7), scale_sigma=False), fixed)
    torch.testing.assert_close(T.colour_augment(x, torch.Generator().manual_seed(7)), scaled)
    if crop == T.BLUR_REFERENCE_CROP:  # the two readings meet at the papers' 224 px
        torch.testing.assert_close(fixed, scaled)
    else:
        assert not torch.allclose(fixed, scaled)
