"""Class activation maps (scenebias.analysis.cam): shapes, localisation on hand-built features, Grad-CAM = CAM for
a linear head, energy shares, the figure and the `scenebias cams` command."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from torch import nn

from scenebias.analysis.cam import (COLUMNS, activation_map, energy_inside, last_feature_map, normalise_maps,
                                    plot_cams, summarise_cams)
from scenebias.cli import main
from scenebias.data.formats import read_split
from scenebias.models.backbones import Backbone, build_backbone
from scenebias.plan import load_config


def identity(x):
    return x


def region_backbone() -> Backbone:
    """Feature map = channels 0 and 1 of the input, average-pooled 4×4 in space and 2 in time: its activations
    are exactly where the input is bright, at an 8×8 resolution for a 32×32 clip."""
    pick = nn.Conv3d(3, 2, 1, bias=False)
    with torch.no_grad():
        pick.weight.zero_()
        pick.weight[0, 0] = 1.0
        pick.weight[1, 1] = 1.0
    return Backbone(nn.Sequential(pick, nn.ReLU(), nn.AvgPool3d((2, 4, 4))), 2, "region")


def regions(t=8, s=32):
    """Top-right and bottom-left quadrants (T, S, S), bool."""
    a = torch.zeros(t, s, s, dtype=torch.bool)
    a[:, : s // 2, s // 2:] = True
    b = torch.zeros_like(a)
    b[:, s // 2:, : s // 2] = True
    return a, b


def _last_5d_output(model, x, within):
    """The last 5-D tensor output by a module of `within` during model(x), with its graph (own forward hooks)."""
    seen = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o) if torch.is_tensor(o) and o.dim() == 5
                                     else None) for m in within.modules()]
    try:
        out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen[-1], out


def _min_max(maps):
    """Each map to [0, 1]; a constant map (e.g. a Grad-CAM that the ReLU zeroes) to zeros."""
    out = torch.zeros_like(maps)
    for i, m in enumerate(maps):
        if m.max() > m.min():
            out[i] = (m - m.min()) / (m.max() - m.min())
    return out


def test_cam_on_a_real_backbone_is_the_channel_mean_of_its_last_feature_map():
    """BE §4.7: ReLU of the channel mean of the last conv block's output, trilinear to the clip, min-max."""
    torch.manual_seed(0)
    backbone = build_backbone("tiny3d", width=4)
    clips = torch.rand(3, 3, 8, 32, 32)
    backbone.eval()
    with torch.no_grad():
        features, _ = _last_5d_output(backbone, clips, backbone)
    backbone.train()
    assert features.shape[0] == 3 and features.shape[2:] != (8, 32, 32)  # a coarser map, upsampled below
    up = nn.functional.interpolate(features.mean(dim=1, keepdim=True).relu(), size=(8, 32, 32), mode="trilinear",
                                   align_corners=False)[:, 0]
    expected = _min_max(up)
    cam = activation_map(backbone, clips, normalize=identity)
    torch.testing.assert_close(cam, expected, atol=1e-5, rtol=0)
    assert backbone.training  # the model's mode is restored


def test_gradcam_on_a_real_backbone_by_hand():
    """Grad-CAM (Selvaraju et al. eqs. 1–2) computed here with autograd: α_k = mean of ∂y^c/∂A_k, ReLU(Σ α_k A_k),
    upsampled and min-max scaled; c = the predicted class, or the one asked for."""
    torch.manual_seed(1)
    backbone = build_backbone("tiny3d", width=4)
    classifier = nn.Sequential(backbone, nn.Linear(backbone.feature_dim, 5))
    clips = torch.rand(2, 3, 8, 32, 32)
    classifier.eval()

    def by_hand(target):
        x = clips.clone().requires_grad_(True)
        features, logits = _last_5d_output(classifier, x, backbone)
        classes = logits.argmax(1) if target is None else torch.full((2,), target)
        grads, = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), features)
        weighted = (grads.mean(dim=(2, 3, 4), keepdim=True) * features).sum(dim=1, keepdim=True).relu()
        up = nn.functional.interpolate(weighted.detach(), size=(8, 32, 32), mode="trilinear", align_corners=False)
        return _min_max(up[:, 0]), classes

    predicted, classes = by_hand(None)
    assert predicted.flatten(1).std(1).max() > 0.05  # not all maps are flat (a flat one is all zeros)
    classifier.train()
    torch.testing.assert_close(activation_map(backbone, clips, classifier, normalize=identity), predicted,
                               atol=1e-5, rtol=0)
    other = int((classes[0] + 1) % 5)
    classifier.eval()
    expected_other, _ = by_hand(other)
    got_other = activation_map(backbone, clips, classifier, target=other, normalize=identity)
    torch.testing.assert_close(got_other, expected_other, atol=1e-5, rtol=0)
    assert (got_other - predicted).abs().max() > 0.05  # the target class changes the map


def test_cam_shape_and_range_on_a_real_backbone():
    torch.manual_seed(0)
    backbone = build_backbone("tiny3d", width=4)
    clips = torch.rand(3, 3, 8, 32, 32)
    cam = activation_map(backbone, clips)
    assert cam.shape == (3, 8, 32, 32)
    assert cam.min() >= 0 and cam.max() <= 1
    assert torch.allclose(cam.flatten(1).amax(1), torch.ones(3)) and torch.allclose(cam.flatten(1).amin(1),
                                                                                     torch.zeros(3))
    assert activation_map(backbone, clips[1]).shape == (8, 32, 32)  # one clip in, one map out
    assert torch.allclose(activation_map(backbone, clips[1]), cam[1], atol=1e-5)  # eval mode: batch-independent
    assert backbone.training  # the model's mode is restored


def test_hook_finds_the_last_feature_map():
    backbone = region_backbone()
    features, pooled = last_feature_map(backbone, torch.rand(2, 3, 8, 32, 32))
    assert features.shape == (2, 2, 4, 8, 8) and pooled.shape == (2, 2)
    assert torch.allclose(features.mean(dim=(2, 3, 4)), pooled)
    with pytest.raises(ValueError, match="5-D"):
        last_feature_map(nn.Flatten(), torch.rand(2, 3, 8, 4, 4))


def test_cam_peaks_where_the_features_are_large():
    inside, outside = regions()
    clip = torch.zeros(3, 8, 32, 32)
    clip[0][inside] = 1.0  # channel 0 bright on the top-right quadrant only
    cam = activation_map(region_backbone(), clip, normalize=identity)
    assert cam[inside].mean() > 0.85
    assert cam[:, 24:, :8].abs().max() == 0  # far from the region: nothing
    share = energy_inside(cam[None], inside[None])
    # trilinear upsampling (×4) blurs each edge over half a cell; per axis 15.5 of 16 px of mass stay inside
    assert float(share) == pytest.approx((31 / 32) ** 2, abs=1e-3)
    assert float(energy_inside(cam[None], ~inside[None])) == pytest.approx(1 - float(share), abs=1e-6)
    assert float(energy_inside(cam[None], outside[None])) == pytest.approx((1 / 32) ** 2, abs=1e-6)  # corner


def test_gradcam_is_cam_of_a_linear_head_and_follows_the_target_class():
    """FAME Fig. 4's CAM (Zhou et al. 2016): Σ_k w_k^c A_k. Grad-CAM must give the same map for a linear head."""
    torch.manual_seed(0)
    a, b = regions()
    clip = torch.zeros(3, 8, 32, 32)
    clip[0][a] = 1.0
    clip[1][b] = 0.5
    backbone = region_backbone()
    head = nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        head.bias.zero_()
    classifier = nn.Sequential(backbone, head)
    predicted = activation_map(backbone, clip, classifier, normalize=identity)  # class 0: a is brighter
    for target, (on, off) in ((0, (a, b)), (1, (b, a))):
        cam = activation_map(backbone, clip, classifier, target=target, normalize=identity)
        assert float(energy_inside(cam[None], on[None])) > 0.9
        assert float(energy_inside(cam[None], off[None])) < 0.01  # the quadrants touch at one corner
        features, _ = last_feature_map(backbone, clip[None])
        zhou = torch.einsum("k,bkthw->bthw", head.weight[target].detach(), features).relu()[:, None]
        expected = normalise_maps(nn.functional.interpolate(zhou, size=(8, 32, 32), mode="trilinear")[:, 0])[0]
        assert torch.allclose(cam, expected, atol=1e-5)
    assert torch.equal(predicted, activation_map(backbone, clip, classifier, target=0, normalize=identity))
    energy = activation_map(backbone, clip, normalize=identity)  # no class: both regions light up
    assert float(energy_inside(energy[None], b[None])) > 0.2


def test_gradcam_on_a_real_backbone_is_not_uniform():
    torch.manual_seed(1)
    backbone = build_backbone("tiny3d", width=4)
    classifier = nn.Sequential(backbone, nn.Linear(backbone.feature_dim, 5))
    for p in classifier.parameters():  # frozen weights: the graph must still reach the feature map
        p.requires_grad_(False)
    cam = activation_map(backbone, torch.rand(2, 3, 8, 32, 32), classifier)
    assert cam.shape == (2, 8, 32, 32) and cam.min() >= 0 and cam.max() <= 1
    assert (cam.flatten(1).std(1) > 0.05).all()


def test_energy_inside_hand_values():
    cam = torch.ones(2, 4, 6, 6)
    half = torch.zeros(2, 6, 6, dtype=torch.bool)
    half[:, :3] = True
    assert energy_inside(cam, half).tolist() == [0.5, 0.5]  # a (B, H, W) mask applies to every frame
    cam[1, :, :3] = 3.0
    assert energy_inside(cam, half)[1].item() == pytest.approx(0.75)
    per_frame = torch.zeros(2, 4, 6, 6, dtype=torch.bool)
    per_frame[:, 0] = True
    assert energy_inside(torch.ones(2, 4, 6, 6), per_frame).tolist() == [0.25, 0.25]
    assert math.isnan(energy_inside(torch.zeros(1, 4, 6, 6), half[:1]).item())


def test_figure_writes_a_png(tmp_path):
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 3, 32, 32, generator=g)
    actor, fame = regions(3)
    out = tmp_path / "figs" / "cams.png"
    plot_cams(frames, actor, fame, {"moco": torch.rand(3, 32, 32, generator=g),
                                    "moco+fame": torch.rand(3, 32, 32, generator=g)},
              out, titles=["a", "b", "c"], row_notes={"moco": "in actor 0.10"}, suptitle="test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["cams.png"]  # no temporary leftovers


# ------------------------------------------------------------------------------------------- CLI
def _model_file(cfg, path, run, method, seed):
    """An untrained model file (random init): what the command reads, without spending time training."""
    from scenebias.models.files import save_model
    from scenebias.plugins import get_method

    torch.manual_seed(seed)
    backbone = build_backbone(cfg["backbone"]["name"], **cfg["backbone"]["options"])
    objective = get_method(method).build(backbone, 4, cfg["runs"][run].get("options"))
    save_model(path, objective, cfg, run, seed, {"provenance": {}})
    return path


def test_cli_writes_table_and_figure_on_the_same_clips(tiny_dataset, tmp_path, capsys):
    cfg = load_config("smoke", overrides={"paths": {"data": str(tiny_dataset), "results": str(tmp_path / "res")}})
    moco = _model_file(cfg, tmp_path / "moco.pt", "moco", "moco", 0)
    fame = _model_file(cfg, tmp_path / "fame.pt", "moco+fame", "moco+fame", 1)
    png, csv = tmp_path / "out" / "cams.png", tmp_path / "out" / "cams.csv"
    argv = ["cams", "--config-json", json.dumps(cfg), "--model", f"moco={moco}", "--model", f"moco+fame={fame}",
            "--flavour", "ucf101", "--flavour", "ucf101_swapped", "--clips", "2", "--out-png", str(png),
            "--out-csv", str(csv), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"wrote {png} and {csv}" in printed and "moco+fame\tucf101_swapped\tCAM-in-actor" in printed
    table = pd.read_csv(csv)
    assert list(table.columns) == COLUMNS
    n_test = len(read_split("ucf101", tiny_dataset / "ucf101", "test"))
    assert len(table) == 2 * 2 * n_test
    for col in ("cam_in_actor", "cam_in_fame_mask", "actor_area", "fame_mask_area"):
        assert table[col].between(0, 1).all(), col
    assert table["fame_mask_area"].round(3).eq(0.5).all()  # β = 0.5
    # the same clips for every model, and the same videos in both flavours
    clips = {k: list(g["clip"]) for k, g in table.groupby(["model", "flavour"])}
    assert len({tuple(v) for v in clips.values()}) == 1
    by_flavour = {f: list(g["video"]) for f, g in table[table["model"] == "moco"].groupby("flavour")}
    assert by_flavour["ucf101"] == by_flavour["ucf101_swapped"]
    # two differently initialised models attend differently
    moco_rows, fame_rows = (table[table["model"] == m]["cam_in_actor"].to_numpy() for m in ("moco", "moco+fame"))
    assert abs(moco_rows - fame_rows).max() > 1e-3
    summary = summarise_cams(table)
    assert len(summary) == 4 and (summary["clips"] == n_test).all()
    assert png.read_bytes()[:4] == b"\x89PNG"
    # Grad-CAM needs a head: a clear error, nothing written
    bad_png = tmp_path / "bad.png"
    assert main(["cams", "--config-json", json.dumps(cfg), "--model", f"moco={moco}", "--cam", "gradcam",
                 "--out-png", str(bad_png), "--out-csv", str(tmp_path / "bad.csv"), "--quiet"]) == 2
    assert "classifier head" in capsys.readouterr().err and not bad_png.exists()
    assert main(["cams", "--config-json", json.dumps(cfg), "--model", str(moco), "--quiet"]) == 2
    assert "LABEL=PATH" in capsys.readouterr().err


def test_cli_gradcam_on_a_supervised_model(tiny_dataset, tmp_path):
    cfg = load_config("smoke", overrides={"paths": {"data": str(tiny_dataset), "results": str(tmp_path / "res")}})
    sup = _model_file(cfg, tmp_path / "sup.pt", "supervised", "supervised", 0)
    csv = tmp_path / "cams.csv"
    assert main(["cams", "--config-json", json.dumps(cfg), "--model", f"supervised={sup}", "--cam", "gradcam",
                 "--flavour", "ucf101", "--clips", "1", "--out-png", str(tmp_path / "g.png"),
                 "--out-csv", str(csv), "--quiet"]) == 0
    table = pd.read_csv(csv)
    assert (table["cam"] == "gradcam").all() and table["cam_in_actor"].between(0, 1).all()


def test_hook_matches_the_feature_map_of_a_registered_backbone():
    backbone = build_backbone("c3d", width=0.1).eval()
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        features, _ = last_feature_map(backbone, x)
        assert torch.equal(features, backbone.feature_map(x))  # conv5b, not an earlier block or pool
