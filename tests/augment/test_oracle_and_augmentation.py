"""The positive control's parts and the per-method augmentation: ground-truth actor masks travel with
each view through its own crop and flip; the oracle merge pastes exactly the masked actor of every frame; a
supervised row trains with the fine-tuning protocol's augmentation; the blur scales with the crop."""
import numpy as np
import pytest
import torch

from scenebias.data import transforms as T
from scenebias.data.datasets import ClipDataset
from scenebias.data.formats import VideoRecord
from scenebias.errors import ConfigError
from scenebias.plugins import load_methods
from scenebias.models.backbones import build_backbone


class _Frames:
    """A frame cache stand-in: a white square moving over a black frame; its masks are the white pixels."""

    def __init__(self, n=12, size=24):
        self.video = np.zeros((n, size, size, 3), dtype=np.uint8)
        self.truth = np.zeros((n, size, size), dtype=bool)
        for t in range(n):
            y, x = 3 + t % 8, 2 + t
            self.truth[t, y:y + 9, x:x + 9] = True
        self.video[self.truth] = 255

    def frames(self, path):
        return torch.from_numpy(self.video)


def _dataset(source, masks=True, mode="pair"):
    records = [VideoRecord(path=f"v{i}.avi", label=0, video_id=f"v{i}") for i in range(3)]
    return ClipDataset(records, clip_len=4, stride=2, mode=mode, crop_size=16, seed=5, scale=(0.3, 1.0),
                       frame_cache=source, actor_masks=(lambda rec: source.truth) if masks else None)


@pytest.mark.parametrize("mode", ["pair", "triple"])
def test_each_views_masks_lie_on_its_actor_through_its_own_crop_and_flip(mode):
    source = _Frames()
    ds = _dataset(source, mode=mode)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            views, masks = item["views"], item["masks"]
            assert masks.dtype == torch.bool and masks.shape == (views.shape[0], 4, 16, 16)
            bright = views.mean(dim=1) > 0.5  # (V, T, H, W): the actor's pixels in each view
            agree = (bright == masks).float().mean().item()
            assert agree > 0.97, agree  # only resampled edge pixels may differ
            assert masks.any() and (~masks).any()


def test_masks_leave_every_random_draw_unchanged():
    source = _Frames()
    with_masks, without = _dataset(source), _dataset(source, masks=False)
    for i in range(3):
        assert torch.equal(with_masks[i]["views"], without[i]["views"])
        assert "masks" not in without[i]


def test_actor_free_scene_recovers_a_static_scene_behind_a_moving_actor():
    from scenebias.augment.foreground import actor_free_scene

    g = torch.Generator().manual_seed(0)
    scene = torch.rand(2, 3, 1, 6, 6, generator=g).expand(2, 3, 4, 6, 6)
    masks = torch.zeros(2, 4, 6, 6, dtype=torch.bool)
    for t in range(4):
        masks[:, t, 1:3, t:t + 2] = True  # a 2x2 actor moving right; column 0..4 free in some frame
    masks[:, :, 5, 5] = True              # one pixel covered in every frame: the clip's mean there
    clips = torch.where(masks.unsqueeze(1), torch.ones_like(scene), scene)
    got = actor_free_scene(clips, masks)
    free_somewhere = ~masks.all(dim=1)
    assert torch.allclose(got[:, :, 0][free_somewhere.unsqueeze(1).expand(2, 3, 6, 6)],
                          scene[:, :, 0][free_somewhere.unsqueeze(1).expand(2, 3, 6, 6)])
    assert torch.allclose(got[:, :, :, 5, 5], clips[:, :, :, 5, 5].mean(dim=2, keepdim=True).expand(2, 3, 4))
    assert torch.equal(got[:, :, 0], got[:, :, 3])  # one scene for every frame


def test_oracle_merge_pastes_each_frames_actor_onto_the_partners_actor_free_scene():
    from scenebias.augment.foreground import actor_free_scene

    objective = load_methods().get("moco+fame").build(build_backbone("tiny3d", width=4), 3,
                                                      {"queue_size": 16, "mask": "oracle"})
    assert objective.needs_masks
    g = torch.Generator().manual_seed(0)
    views = torch.rand(4, 2, 3, 4, 8, 8, generator=g)
    masks = torch.rand(4, 2, 4, 8, 8, generator=g) < 0.4
    merged, key = objective.make_views({"views": views, "masks": masks}, torch.Generator().manual_seed(9))
    assert torch.equal(key, views[:, 1])
    a, scenes = views[:, 0], actor_free_scene(views[:, 0], masks[:, 0])
    for i in range(4):
        on_actor = masks[i, 0].unsqueeze(0).expand(3, -1, -1, -1)  # (C, T, H, W), varies over time
        assert torch.equal(merged[i][on_actor], a[i][on_actor])  # the actor of every frame is kept
        partner = [j for j in range(4) if torch.allclose(merged[i][~on_actor], scenes[j][~on_actor])]
        assert partner and partner != [i]  # the rest is another clip's scene without its actor (a derangement)
    with pytest.raises(ValueError, match="masks"):
        objective.make_views({"views": views}, torch.Generator().manual_seed(9))


def test_oracle_is_refused_on_a_real_root_with_the_flavour_named():
    from scenebias.resolve import actor_mask_source

    cfg = {"data": {"real": {"ucf101": {"root": "/data/UCF101", "format": "ucf101"}}}, "paths": {"data": "x"},
           "preset": "p"}
    with pytest.raises(ConfigError, match="'ucf101'.*real dataset"):
        actor_mask_source(cfg, "ucf101")


def test_supervised_rows_train_with_the_finetune_augmentation():
    from scenebias.data.transforms import augment_factory

    registry = load_methods()
    assert registry.get("supervised").objective.augmentation == "finetune"
    for name in ("moco", "moco+fame", "moco+be", "dsm", "rotnet"):
        assert registry.get(name).objective.augmentation == "contrastive"
    x = torch.rand(8, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(augment_factory(torch.Generator().manual_seed(2), "finetune")(x), T.normalize(x))
    contrastive = augment_factory(torch.Generator().manual_seed(2), "contrastive")(x)
    assert not torch.allclose(contrastive, T.normalize(x))  # the colour stack changed something
    with pytest.raises(ConfigError, match="'bogus'"):
        augment_factory(torch.Generator(), "bogus")


def test_blur_sigma_scales_with_the_crop():
    assert T.blur_sigma_range(224) == pytest.approx((0.1, 2.0))
    assert T.blur_sigma_range(32) == pytest.approx((0.1 * 32 / 224, 2.0 * 32 / 224))
    assert T.blur_sigma_range(112) == pytest.approx((0.05, 1.0))
    # every clip blurred: the result is torchvision's blur with a sigma inside the scaled range, not the 224-px one
    x = torch.rand(64, 3, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    params = T.sample_colour_params(64, torch.Generator().manual_seed(4), p_jitter=0.0, p_gray=0.0, p_blur=1.0,
                                    sigma=T.blur_sigma_range(32))
    assert params.sigma.max() <= 2.0 * 32 / 224 + 1e-6
    got = T.colour_augment(x, torch.Generator().manual_seed(4), p_jitter=0.0, p_gray=0.0, p_blur=1.0)
    torch.testing.assert_close(got, T.apply_colour(x, params, T.blur_kernel_size(32)))
    # a sub-0.3-px blur barely changes a pixel; the unscaled 2-px one moves it by far more
    unscaled = T.apply_colour(x, T.sample_colour_params(64, torch.Generator().manual_seed(4), p_jitter=0.0,
                                                        p_gray=0.0, p_blur=1.0), 3)
    assert (got - x).abs().mean() < 0.5 * (unscaled - x).abs().mean()


def test_the_presets_colour_settings_reach_the_contrastive_augmentation():
    from scenebias.data.transforms import augment_factory
    from scenebias.train.loop import TrainConfig

    x = torch.rand(8, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    off = {"p_jitter": 0.0, "p_gray": 0.0, "p_blur": 0.0}
    torch.testing.assert_close(augment_factory(torch.Generator().manual_seed(2), "contrastive", off)(x),
                               T.normalize(x))
    gray_only = augment_factory(torch.Generator().manual_seed(2), "contrastive",
                                {"p_jitter": 0.0, "p_gray": 1.0, "p_blur": 0.0})(T.denormalize(T.normalize(x)))
    channels = T.denormalize(gray_only)
    torch.testing.assert_close(channels[:, 0], channels[:, 1], atol=1e-5, rtol=0)  # every clip grey
    # the setting is part of the training fingerprint: a checkpoint of another colour setting is not resumed
    assert TrainConfig.from_dict({"colour": off}).colour == off
    assert TrainConfig.from_dict({}).colour == {}


def test_supervised_rows_take_the_finetune_protocols_colour_when_a_preset_sets_one():
    """The paper preset fine-tunes with FAME's grayscale + jitter; a supervised row must train with the same."""
    from scenebias.evaluate.finetune import FINETUNE_COLOUR
    from scenebias.data.transforms import augment_factory
    from scenebias.stages import augmentation_colour
    from scenebias.train.loop import TrainConfig

    tcfg = TrainConfig.from_dict({"colour": {"p_jitter": 0.0}})
    no_colour = {"evaluate": {"finetune": {}}}
    gray = {"evaluate": {"finetune": {"colour": {"p_gray": 1.0, "p_jitter": 0.0}}}}
    assert augmentation_colour(no_colour, "finetune", tcfg) is None
    assert augmentation_colour(gray, "finetune", tcfg) == {**FINETUNE_COLOUR, "p_gray": 1.0, "p_jitter": 0.0}
    assert augmentation_colour(gray, "contrastive", tcfg) == {"p_jitter": 0.0}  # MoCo's stack is pretrain.colour
    x = torch.rand(8, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    got = T.denormalize(augment_factory(torch.Generator().manual_seed(2), "finetune",
                                        augmentation_colour(gray, "finetune", tcfg))(x))
    torch.testing.assert_close(got[:, 0], got[:, 1], atol=1e-5, rtol=0)  # every clip grey, as fine-tuning makes it
    assert not torch.allclose(got, x, atol=1e-3)


def test_a_finetune_colour_reruns_the_supervised_rows_only(tmp_path):
    """The pretraining job's checkpoint folder (its stage hash, in the dry run's shell command) changes with
    evaluate.finetune.colour for the runs that train with it, and for no other run."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    repo = Path(__file__).resolve().parents[2]
    paths = tmp_path / "paths.yaml"
    paths.write_text(yaml.safe_dump({"paths": {"data": str(tmp_path / "d/{preset}"),
                                               "results": str(tmp_path / "r/{preset}"),
                                               "reports": str(tmp_path / "p/{preset}")}}))
    colour = tmp_path / "colour.yaml"
    colour.write_text(yaml.safe_dump({"evaluate": {"finetune": {"colour": {"p_gray": 0.2}}}}))

    def work_dirs(*extra):
        exe = Path(sys.executable).with_name("snakemake")
        proc = subprocess.run([str(exe), "-n", "-p", "--nolock", "--configfile", "config/presets/smoke.yaml",
                               str(paths), *map(str, extra)], cwd=repo, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return dict(re.findall(r"--run (\S+) --seed 0 .*?--work-dir (\S+)", proc.stdout))

    before, after = work_dirs(), work_dirs(colour)
    assert before and before.keys() == after.keys()
    from scenebias.plan import load_config

    runs = load_config("smoke")["runs"]
    changed = {run.strip("'") for run in before if before[run] != after[run]}
    supervised = {run for run in runs if runs[run]["method"] == "supervised"}
    assert {"motion_learnability", "scene_shortcut"} <= supervised and changed == supervised, (changed, supervised)


def test_a_models_provenance_names_the_augmentation_it_trained_with(tiny_dataset, tmp_path, monkeypatch):
    """A supervised row's record says it trained with the fine-tuning colour; MoCo's says the contrastive stack."""
    from scenebias import stages
    from scenebias.models.files import load_model
    from scenebias.plan import load_config

    monkeypatch.setattr(stages, "train", lambda *args, **kwargs: [])  # the record is under test, not training
    def config(p_gray):
        return load_config("smoke", overrides={"paths": {"data": str(tiny_dataset), "results": str(tmp_path / "r")},
                                               "evaluate": {"finetune": {"colour": {"p_gray": p_gray}}}})

    def recorded(run, cfg):
        meta = stages.pretrain(cfg, run, 0, tmp_path / f"{run}.pt", tmp_path / f"work-{run}", progress=False)
        saved = load_model(tmp_path / f"{run}.pt")["meta"]["provenance"]
        assert saved["augmentation"] == meta["provenance"]["augmentation"]
        return meta["provenance"]

    cfg = config(0.2)
    supervised, moco = recorded("supervised", cfg), recorded("moco", cfg)
    assert supervised["augmentation"]["kind"] == "finetune"
    assert supervised["augmentation"]["colour"]["p_gray"] == 0.2
    assert moco["augmentation"] == {"kind": "contrastive", "colour": cfg["pretrain"].get("colour", {})}
    assert recorded("random_init", cfg)["augmentation"] is None  # an untrained row used none
    # the colour is part of the hashed config: the same run under another fine-tuning colour hashes differently
    assert recorded("supervised", config(0.5))["config_hash"] != supervised["config_hash"]
