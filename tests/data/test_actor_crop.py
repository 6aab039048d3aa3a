"""Actor-HMDB51 construction (BE Figure 5): a tiny HMDB51 tree whose "actor" is a bright rectangle with known
boxes; the ground-truth boxes stand in for the detector."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from scenebias.cli import main
from scenebias.data.actor import (SIDECAR_DIR, SUMMARY_NAME, CropSettings, PersonDetector, build_actor_hmdb51,
                                  crop_boxes, fill_missing, read_boxes_file, smooth_boxes, square_boxes)
from scenebias.data.formats import read_split, write_hmdb51_splits
from scenebias.data.video import read_video, write_video
from scenebias.errors import ConfigError, DataError
from scenebias.io import read_json

T, H, W = 8, 48, 64
ACTOR_H, ACTOR_W = 16, 12
BACKGROUND, ACTOR = 30, 250
# video -> (tag in split 1, tag in split 2, x of the actor's left edge at frame 0 or None for "no actor")
VIDEOS = {
    "brush_hair/a_brush_hair_0.avi": (1, 2, 4),
    "brush_hair/b_brush_hair_1.avi": (2, 1, 30),
    "wave/a_wave_0.avi": (1, 1, 10),
    "wave/b_wave_1.avi": (2, 2, 36),
    "wave/c_wave_empty.avi": (1, 2, None),  # no person anywhere: kept whole, counted
}
UNUSED = "wave/z_unused.avi"  # tag 0 in every split and not on disk: never read
GAP = ("wave/a_wave_0.avi", 3)  # this frame has no box row: filled from its neighbours


def actor_box(x_start: int, t: int) -> tuple[int, int, int, int]:
    """Ground truth: the actor moves right 2 px/frame and down 1 px/frame (x1/y1 exclusive)."""
    x0, y0 = x_start + 2 * t, 8 + t
    return x0, y0, x0 + ACTOR_W, y0 + ACTOR_H


def render(x_start: int | None) -> np.ndarray:
    frames = np.full((T, H, W, 3), BACKGROUND, dtype=np.uint8)
    frames[:, :, ::8] = 60  # some background texture
    if x_start is not None:
        for t in range(T):
            x0, y0, x1, y1 = actor_box(x_start, t)
            frames[t, y0:y1, x0:x1] = ACTOR
    return frames


@pytest.fixture(scope="module")
def hmdb_tree(tmp_path_factory) -> tuple[Path, Path]:
    """(HMDB51 root, boxes CSV)."""
    root = tmp_path_factory.mktemp("hmdb_actor")
    for rel, (_, _, x) in VIDEOS.items():
        write_video(root / "videos" / rel, render(x), fps=30)
    for split in (1, 2):
        per_class: dict[str, list[tuple[str, int]]] = {}
        for rel, tags in {**VIDEOS, UNUSED: (0, 0, None)}.items():
            cls, name = rel.split("/")
            per_class.setdefault(cls, []).append((name, tags[split - 1]))
        write_hmdb51_splits(root / "testTrainMulti_7030_splits", per_class, split=split)
    (root / "testTrainMulti_7030_splits" / "README.txt").write_bytes(b"not a split file\r\n")  # copied as is
    boxes = root / "boxes.csv"
    with open(boxes, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "frame", "x0", "y0", "x1", "y1", "score"])
        for rel, (_, _, x) in VIDEOS.items():
            for t in range(T):
                if x is not None and (rel, t) != GAP:
                    w.writerow([rel, t, *actor_box(x, t), 0.99])
        w.writerow(["brush_hair/a_brush_hair_0.avi", 5, 50, 30, 62, 46, 0.2])  # below the threshold: dropped
    return root, boxes


@pytest.fixture(scope="module")
def built(hmdb_tree, tmp_path_factory) -> tuple[Path, dict]:
    root, boxes = hmdb_tree
    out = tmp_path_factory.mktemp("actor_out") / "actor_hmdb51"
    assert main(["actor-crop", "--hmdb51-root", str(root), "--boxes", str(boxes), "--out", str(out),
                 "--size", "32", "--smooth", "3", "--quiet"]) == 0
    return out, read_json(out / SUMMARY_NAME)


def test_layout_names_and_split_files_are_kept(hmdb_tree, built):
    root, _ = hmdb_tree
    out, _ = built
    assert sorted(p.relative_to(out / "videos").as_posix() for p in (out / "videos").rglob("*.avi")) == sorted(VIDEOS)
    src_splits = sorted((root / "testTrainMulti_7030_splits").iterdir())
    assert [p.name for p in src_splits] == sorted(p.name for p in (out / "testTrainMulti_7030_splits").iterdir())
    for p in src_splits:
        assert (out / "testTrainMulti_7030_splits" / p.name).read_bytes() == p.read_bytes()
    for split in (1, 2):  # the HMDB51 reader sees the same splits, classes and labels
        for subset in ("train", "test"):
            a, b = read_split("hmdb51", root, subset, split), read_split("hmdb51", out, subset, split)
            assert [(r.path.relative_to(root / "videos"), r.label) for r in a.records] == \
                   [(r.path.relative_to(out / "videos"), r.label) for r in b.records]
            assert a.class_names == b.class_names
    frames = read_video(out / "videos" / "wave" / "a_wave_0.avi")
    assert tuple(frames.shape) == (T, 32, 32, 3)


def test_summary_counts_frames_without_detection_and_empty_videos(built):
    _, s = built
    assert s["videos"] == len(VIDEOS) and s["frames"] == len(VIDEOS) * T
    assert s["frames_without_detection"] == T + 1  # the empty video's frames and the gap frame
    assert s["videos_without_detection"] == 1
    assert s["videos_without_detection_list"] == ["wave/c_wave_empty.avi"]
    assert s["cropped"] == len(VIDEOS) and s["resumed"] == 0 and s["missing"] == 0
    assert s["settings"]["size"] == 32 and s["settings"]["smooth"] == 3 and s["settings"]["source"] == "boxes"


def test_crops_contain_the_actor(hmdb_tree, built):
    root, _ = hmdb_tree
    out, _ = built
    for rel, (_, _, x) in VIDEOS.items():
        if x is None:
            continue
        full = read_video(root / "videos" / rel).float()
        crop = read_video(out / "videos" / rel).float()
        # actor area: 6 % of the full frame, 75 % of its square crop (12 x 16 in a 16 x 16 square)
        assert crop.mean() > 2.5 * full.mean(), rel
        assert (crop[:, 10:22, 12:20].mean(dim=-1) > 200).all(), rel  # the crop's centre is actor everywhere
        side = read_json(out / SIDECAR_DIR / f"{rel}.json")["crop_boxes"]
        for t, (x0, y0, x1, y1) in enumerate(side):
            assert (x1 - x0, y1 - y0) == (ACTOR_H, ACTOR_H)  # square of the longer edge
            ax0, ay0, ax1, ay1 = actor_box(x, t)
            assert x0 <= ax0 and ax1 <= x1 and y0 <= ay0 and ay1 <= y1, (rel, t)


def test_gap_frame_is_filled_and_empty_video_kept_whole(built):
    out, _ = built
    rel, t = GAP
    side = np.array(read_json(out / SIDECAR_DIR / f"{rel}.json")["crop_boxes"])
    assert read_json(out / SIDECAR_DIR / f"{rel}.json")["frames_without_detection"] == 1
    np.testing.assert_array_equal(side[t], np.array(square_boxes(np.array([actor_box(10, t)], float), H, W)[0]))
    empty = read_json(out / SIDECAR_DIR / "wave" / "c_wave_empty.avi.json")
    assert empty["frames_without_detection"] == T
    assert empty["crop_boxes"] == [[0, -8, 64, 56]] * T  # the whole 64 x 48 frame, padded to a square
    frames = read_video(out / "videos" / "wave" / "c_wave_empty.avi").float().mean(dim=(0, 2, 3))
    assert frames[:2].max() < 12 and frames[8:24].min() > BACKGROUND  # black padding rows, then the scene


def test_rerun_skips_done_videos_and_redoes_changed_ones(hmdb_tree, tmp_path):
    root, boxes = hmdb_tree
    out = tmp_path / "out"
    crop = CropSettings(size=16, smooth=1)
    first = build_actor_hmdb51(root, out, boxes=boxes, crop=crop, progress=False)
    assert first["cropped"] == len(VIDEOS)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "videos").rglob("*.avi")}
    again = build_actor_hmdb51(root, out, boxes=boxes, crop=crop, progress=False)
    assert (again["cropped"], again["resumed"]) == (0, len(VIDEOS))
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert {k: v for k, v in again.items() if k not in ("cropped", "resumed")} == \
           {k: v for k, v in first.items() if k not in ("cropped", "resumed")}
    # one video's boxes change -> only that video is redone; a half-done video (no sidecar) is redone
    edited = tmp_path / "boxes.csv"
    edited.write_text(boxes.read_text().replace("wave/b_wave_1.avi,0,36,", "wave/b_wave_1.avi,0,35,"))
    (out / SIDECAR_DIR / "brush_hair" / "a_brush_hair_0.avi.json").unlink()
    third = build_actor_hmdb51(root, out, boxes=edited, crop=crop, progress=False)
    assert (third["cropped"], third["resumed"]) == (2, len(VIDEOS) - 2)
    # other settings -> everything is redone
    assert build_actor_hmdb51(root, out, boxes=edited, crop=CropSettings(size=16, smooth=3),
                              progress=False)["cropped"] == len(VIDEOS)
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary files left behind


def test_smoothing_removes_jitter_and_keeps_a_steady_track():
    rng = np.random.default_rng(0)
    t = np.arange(40, dtype=float)
    steady = np.stack([t, t / 2, t + 20, t / 2 + 30], axis=1)
    jittered = steady + rng.choice([-3.0, 3.0], size=steady.shape)
    smoothed = smooth_boxes(jittered, 5)

    def roughness(b: np.ndarray) -> float:
        return float(np.abs(np.diff(b, n=2, axis=0)).sum())

    assert roughness(smoothed) < 0.5 * roughness(jittered)
    assert np.abs(smoothed - steady).mean() < np.abs(jittered - steady).mean()
    np.testing.assert_allclose(smooth_boxes(steady, 5), steady)  # a steady linear track is left as it is
    one_off = steady.copy()
    one_off[10] += 25  # a single false detection is ignored (a moving mean would shift 5 frames by 5 px)
    assert np.abs(smooth_boxes(one_off, 5) - steady).max() <= 1.0  # at most one frame's step off


def test_fill_missing_interpolates_and_holds_ends():
    b = np.full((6, 4), np.nan)
    b[1], b[4] = [0, 0, 10, 10], [6, 3, 16, 13]
    f = fill_missing(b)
    np.testing.assert_allclose(f[0], b[1])
    np.testing.assert_allclose(f[2], [2, 1, 12, 11])
    np.testing.assert_allclose(f[5], b[4])


def test_square_boxes_fit_inside_or_pad_centred():
    sq = square_boxes(np.array([[0.0, 10, 10, 30], [58, 0, 64, 10], [0, 0, 64, 20], [20, 20, 21, 21]]), H, W)
    # centred, then shifted inside; wider than the frame is tall: centred and padded; tiny: at least 2 px
    assert sq.tolist() == [[0, 10, 20, 30], [54, 0, 64, 10], [0, -8, 64, 56], [20, 20, 22, 22]]


def test_bad_boxes_files_name_file_and_line(hmdb_tree, tmp_path):
    root, _ = hmdb_tree
    bad = tmp_path / "bad.csv"
    bad.write_text("video,frame,x0,y0,x1,y1\nwave/a_wave_0.avi,0,1,1,5,5\nwave/a_wave_0.avi,1,9,1,5,5\n")
    with pytest.raises(DataError, match=rf"{bad}:3: x1 must exceed x0"):
        read_boxes_file(bad)
    bad.write_text("video,frame,x0,y0,x1,y1,conf\n")
    with pytest.raises(DataError, match=r"unknown \['conf'\]"):
        read_boxes_file(bad)
    bad.write_text("video,frame,x0,y0,x1,y1\nwave/a_wave_0.avi,8,1,1,5,5\n")
    with pytest.raises(DataError, match=r"frame 8, but the video decodes to 8 frames"):
        build_actor_hmdb51(root, tmp_path / "o1", boxes=bad, progress=False)
    bad.write_text("video,frame,x0,y0,x1,y1\na_wave_0.avi,0,1,1,5,5\n")
    with pytest.raises(DataError, match=r"none of its 1 videos .* expected paths like 'brush_hair/"):
        build_actor_hmdb51(root, tmp_path / "o2", boxes=bad, progress=False)
    with pytest.raises(ConfigError, match="size"):
        CropSettings(size=33)
    with pytest.raises(ConfigError, match="exactly one"):
        build_actor_hmdb51(root, tmp_path / "o3", progress=False)


def test_missing_or_mismatching_weights_are_config_errors(hmdb_tree, tmp_path):
    root, _ = hmdb_tree
    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match=rf"{missing}: detector weights file not found.*fasterrcnn_resnet50_fpn_coco"):
        build_actor_hmdb51(root, tmp_path / "out", detector_weights=missing, progress=False)
    assert not (tmp_path / "out").exists()  # failed before any output
    wrong = tmp_path / "linear.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), wrong)
    with pytest.raises(ConfigError, match=rf"{wrong}: does not match fasterrcnn_resnet50_fpn.*download.pytorch.org"):
        PersonDetector(wrong)
    assert main(["actor-crop", "--hmdb51-root", str(root), "--detector-weights", str(missing),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 2


@pytest.mark.slow  # about 15 s on 2 shared cores: builds Faster R-CNN twice, detects on 2 frames twice
def test_detector_path_loads_user_weights_and_keeps_persons_only(tmp_path):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    torch.manual_seed(0)
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=64, max_size=64).eval()
    weights = tmp_path / "frcnn.pth"
    torch.save(model.state_dict(), weights)
    root = tmp_path / "hmdb"
    write_video(root / "videos" / "wave" / "v.avi", render(10)[:2], fps=30)
    write_hmdb51_splits(root / "testTrainMulti_7030_splits", {"wave": [("v.avi", 1)]})
    summary = build_actor_hmdb51(root, tmp_path / "out", detector_weights=weights, detector_size=(64, 64),
                                 crop=CropSettings(size=16, smooth=1, score_threshold=0.0), progress=False)
    frames = read_video(root / "videos" / "wave" / "v.avi")
    with torch.inference_mode():
        raw = model(list(frames.permute(0, 3, 1, 2).float() / 255))
    assert any((r["labels"] != 1).any() for r in raw)  # there are non-person detections to drop
    persons = [r["boxes"][r["labels"] == 1].numpy() for r in raw]
    expected, missing = crop_boxes(persons, H, W, smooth=1)
    side = read_json(tmp_path / "out" / SIDECAR_DIR / "wave" / "v.avi.json")
    assert side["crop_boxes"] == expected.tolist()
    assert summary["frames_without_detection"] == missing and summary["settings"]["source"] == "detector"
    assert side["settings"]["boxes"].startswith("detector:")


def test_listed_video_not_on_disk_is_an_error_or_skipped_and_counted(tmp_path):
    root = tmp_path / "hmdb"
    for name in ("here.avi", "there.avi"):
        write_video(root / "videos" / "wave" / name, render(10), fps=30)
    write_hmdb51_splits(root / "testTrainMulti_7030_splits",
                        {"wave": [("here.avi", 1), ("there.avi", 2), ("gone.avi", 2)]})
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("video,frame,x0,y0,x1,y1\n" + "".join(f"wave/here.avi,{t},{','.join(map(str, actor_box(10, t)))}\n"
                                                          for t in range(T)))
    with pytest.raises(DataError, match=r"wave_test_split1\.txt:1: video .*gone\.avi not found"):
        build_actor_hmdb51(root, tmp_path / "out", boxes=boxes, progress=False)
    s = build_actor_hmdb51(root, tmp_path / "out", boxes=boxes, on_missing="skip", progress=False)
    assert (s["videos"], s["missing"], s["frames_without_detection"], s["videos_without_detection"]) == (2, 1, T, 1)
    assert s["missing_list"] == [str(root / "videos" / "wave" / "gone.avi")]
