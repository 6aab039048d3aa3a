"""FAME mask quality vs ground truth: overlap metrics, mask geometry, the CLI's CSV, and a missing sidecar."""
import json
import math
import shutil

import pandas as pd
import pytest
import torch

from scenebias.analysis.mask_quality import (BETAS, COLUMNS, annotation_path, clip_and_truth, mask_quality,
                                             overlap_scores, resize_center_crop_masks, score_batch, size_ceilings)
from scenebias.cli import main
from scenebias.data import transforms as T
from scenebias.data.datasets import ClipDataset
from scenebias.data.formats import read_split
from scenebias.errors import DataError
from scenebias.plan import load_config
from scenebias.report.build import mask_quality_ranking, mask_quality_section


def _box(h, w, top, left, bh, bw):
    m = torch.zeros(h, w, dtype=torch.bool)
    m[top:top + bh, left:left + bw] = True
    return m


# ------------------------------------------------------------------------------------------- metrics
def test_overlap_scores_on_hand_made_masks():
    pred = _box(4, 4, 0, 0, 2, 2)   # 4 px
    truth = _box(4, 4, 0, 1, 2, 3)  # 6 px; overlap: column 1 of rows 0-1 = 2 px; union 8 px
    s = overlap_scores(pred, truth)
    assert s["iou"].item() == pytest.approx(2 / 8)
    assert s["precision"].item() == pytest.approx(2 / 4)
    assert s["recall"].item() == pytest.approx(2 / 6)
    # batched and broadcast: one mask against a (B, T) stack of frames
    frames = torch.stack([truth, pred, torch.zeros(4, 4, dtype=torch.bool)])[None]  # (1, 3, 4, 4)
    iou = overlap_scores(pred[None, None], frames)["iou"]
    assert iou.shape == (1, 3) and iou[0].tolist() == pytest.approx([0.25, 1.0, 0.0])
    empty = torch.zeros(4, 4, dtype=torch.bool)
    both_empty = overlap_scores(empty, empty)
    assert both_empty["iou"].item() == 1.0
    assert math.isnan(both_empty["precision"].item()) and math.isnan(both_empty["recall"].item())
    assert math.isnan(overlap_scores(pred, empty)["recall"].item())


def test_size_ceilings_bound_any_mask_of_that_size():
    c = size_ceilings(torch.tensor([100, 100]), 50)
    assert c["iou_ceiling"].tolist() == pytest.approx([0.5, 0.5]) and c["precision_ceiling"].tolist() == [1.0, 1.0]
    c = size_ceilings(torch.tensor([100]), 200)
    assert c["iou_ceiling"].item() == pytest.approx(0.5) and c["precision_ceiling"].item() == pytest.approx(0.5)
    # random masks of exactly N pixels never beat the ceiling; the truth's own top-N pixels reach it
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(64, 16, 16, generator=g) < 0.2
    for n in (20, 51, 128):
        ceiling = size_ceilings(truth.flatten(1).sum(1), n)["iou_ceiling"]
        scores = torch.rand(64, 256, generator=g)
        rand = torch.zeros(64, 256, dtype=torch.bool).scatter_(1, scores.topk(n, 1).indices, True).view(64, 16, 16)
        assert (overlap_scores(rand, truth)["iou"] <= ceiling + 1e-6).all()
        oracle_scores = truth.flatten(1).float() + 1e-3 * scores
        oracle = torch.zeros(64, 256, dtype=torch.bool).scatter_(1, oracle_scores.topk(n, 1).indices, True)
        assert torch.allclose(overlap_scores(oracle.view(64, 16, 16), truth)["iou"], ceiling)


# ------------------------------------------------------------------------------------------- geometry
def test_mask_crop_matches_the_frame_crop_on_non_square_video():
    """A bright box on black, 40x64 frames: resize (short side 32, x0.8) then centre crop (51 -> 32 px wide).
    Box edges at multiples of 5 px land on whole pixels, so the nearest-neighbour mask must cover exactly the
    pixels the antialiased frame shows as bright; an off-by-one crop offset would move it by 1 px."""
    masks = torch.stack([_box(40, 64, 10 + 5 * t, 35, 10, 10) for t in range(4)])  # right of centre, moving down
    frames = masks[:, None].float().expand(4, 3, 40, 64)
    image = T.resize_center_crop(frames, 32)[:, 0]
    cropped = resize_center_crop_masks(masks, 32)
    assert cropped.shape == (4, 32, 32) and cropped.dtype == torch.bool
    assert torch.equal(image > 0.5, cropped)
    assert cropped[0].sum() == 8 * 8 and not torch.equal(cropped, resize_center_crop_masks(masks.roll(1, -1), 32))


def test_generated_truth_aligns_with_the_clip_pixels(tiny_dataset):
    """ucf101_swapped pastes each ucf101 test video's actor (same mask, same frames) onto another scene, so
    pixels under the aligned truth barely change between the two videos and pixels outside change a lot; a
    truth shifted by 3 px does not have that property. Crop 24 < 32 px exercises the resize path."""
    orig = read_split("ucf101", tiny_dataset / "ucf101", "test").records
    swap = read_split("ucf101", tiny_dataset / "ucf101_swapped", "test").records
    kw = dict(clip_len=8, stride=2, mode="test", num_test_clips=1, crop_size=24, cache=False)
    d_orig, d_swap = ClipDataset(orig, **kw), ClipDataset(swap, **kw)
    inside, outside, shifted = [], [], []
    for i, (a, b) in enumerate(zip(orig, swap)):
        clip, truth = clip_and_truth(d_orig, i, annotation_path(tiny_dataset / "ucf101", a))
        other, truth_b = clip_and_truth(d_swap, i, annotation_path(tiny_dataset / "ucf101_swapped", b))
        assert truth.shape == (8, 24, 24) == clip.shape[1:] and torch.equal(truth, truth_b)
        assert torch.equal(clip, d_orig[i]["clips"][0])  # exactly the clip test mode gives the model
        diff = (clip - other).abs().mean(0)
        inside.append(diff[truth].mean())
        outside.append(diff[~truth].mean())
        shifted.append(diff[truth.roll(3, dims=-1)].mean())
    inside, outside, shifted = torch.stack(inside), torch.stack(outside), torch.stack(shifted)
    assert (inside < 0.1).all() and (outside > 0.15).all()
    assert shifted.mean() > 2 * inside.mean()


def test_seed_mask_finds_a_moving_square():
    """A uniformly coloured square moving 2 px/frame over a static noise background: with β = the swept
    area, the seed map (frame differences) recovers the swept region almost exactly; a centred Gaussian does not."""
    g = torch.Generator().manual_seed(0)
    b, t, s = 4, 8, 32
    truth = torch.stack([torch.stack([_box(s, s, 4 + 5 * i, 2 + 2 * k + i, 8, 8) for k in range(t)])
                         for i in range(b)])
    background = torch.rand(b, 3, 1, s, s, generator=g).expand(b, 3, t, s, s)
    clips = torch.where(truth[:, None], torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1, 1), background)
    beta = float(truth.any(1).flatten(1).float().mean())
    iou = score_batch(clips, truth, [beta]).groupby("variant")["iou"].mean()
    assert iou["seed"] > 0.9 and iou["gauss"] < 0.5
    assert iou.idxmax() == "seed"


# ------------------------------------------------------------------------------------------- CLI
def _cfg(data, results):
    return load_config("smoke", overrides={"paths": {"data": str(data), "results": str(results)}})


def test_cli_writes_every_variant_and_beta(tiny_dataset, tmp_path, capsys):
    cfg = _cfg(tiny_dataset, tmp_path / "results")
    out = tmp_path / "results/analysis/mask_quality.csv"
    assert main(["mask-quality", "--config-json", json.dumps(cfg), "--out", str(out), "--quiet"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table.columns) == COLUMNS
    variants = ["fame[paper]", "fame[official-code]", "seed", "gauss", "grid"]
    assert sorted(zip(table["variant"], table["beta"])) == sorted((v, b) for v in variants for b in BETAS)
    n_train = len(read_split("ucf101", tiny_dataset / "ucf101", "train"))
    assert (table["videos"] == n_train).all()
    for col in ("iou_mean", "iou_frames_mean", "precision_mean", "recall_mean", "actor_area"):
        assert table[col].between(0, 1).all(), col
    assert (table["iou_ci95"] > 0).all()
    # a mask of ⌊βHW⌋ pixels can never beat the size ceiling; per-frame actors are smaller than their union
    assert (table["iou_mean"] <= table["iou_ceiling"] + 1e-6).all()
    assert (table["precision_mean"] <= table["precision_ceiling"] + 1e-6).all()
    assert (table["actor_frame_area"] <= table["actor_area"]).all()
    hw = cfg["clip"]["crop_size"] ** 2
    sized = table[table["mask"] != "grid"]
    assert sized["mask_area"].tolist() == pytest.approx([math.floor(b * hw) / hw for b in sized["beta"]], rel=1e-5)
    grid = table[table["mask"] == "grid"]  # grid ignores β: identical rows, half the frame
    assert grid["iou_mean"].nunique() == 1 and grid["mask_area"].tolist() == pytest.approx([0.5] * len(BETAS))
    # the report section: table, plot and the ranking sentence from these numbers
    section = mask_quality_section(out, tmp_path / "report")
    best = table[table["beta"] == 0.3].sort_values("iou_mean").iloc[-1]
    assert f"β = 0.3: {best['variant']} {best['iou_mean']:.2f}" in section
    shown = pd.read_csv(tmp_path / "report/tables/mask_quality.csv")
    assert len(shown) == len(table) and "IoU (clip union)" in shown.columns
    assert (tmp_path / "report/tables/mask_quality.md").exists()
    assert (tmp_path / "report/plots/mask_quality.png").stat().st_size > 5000


def test_ranking_sentence_is_computed_from_the_numbers():
    mq = pd.DataFrame({"variant": ["fame[paper]", "seed", "gauss"] * 2, "beta": [0.3] * 3 + [0.5] * 3,
                       "iou_mean": [0.57, 0.69, 0.2, 0.601, 0.55, 0.599]})
    text = mask_quality_ranking(mq)
    assert "β = 0.3: seed 0.69 > fame[paper] 0.57 > gauss 0.20" in text
    assert "β = 0.5: fame[paper] 0.60 ≈ gauss 0.60 > seed 0.55" in text
    assert "below the seed map alone at 1 of 2 β values" in text


def test_missing_annotation_names_the_file_and_writes_nothing(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset / "ucf101", data / "ucf101")
    cfg = _cfg(data, tmp_path / "results")
    victim = annotation_path(data / "ucf101", read_split("ucf101", data / "ucf101", "train").records[-1])
    victim.unlink()
    out = tmp_path / "results/analysis/mask_quality.csv"
    with pytest.raises(DataError, match=victim.name):
        mask_quality(cfg, out)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary leftovers either
    assert main(["mask-quality", "--config-json", json.dumps(cfg), "--out", str(out)]) == 2
    assert not out.exists()
