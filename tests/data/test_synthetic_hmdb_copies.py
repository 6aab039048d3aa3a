"""The HMDB51-like copies (unbiased, swapped, static, their actor crops), the per-frame actor crop, the HMDB bias
knobs and the Diving48-like video length; the UCF101-like sets stay as they were."""
import collections
import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
from scipy import stats

from scenebias.data import formats as F
from scenebias.data import synthetic as S
from scenebias.data.synthetic import FLAVOUR_FORMAT, GeneratorConfig, generate, load_annotation
from scenebias.data.synthetic.rendering import _resize_bilinear, _resize_nearest
from scenebias.data.video import read_video
from scenebias.errors import ConfigError

TINY = GeneratorConfig.tiny()
NEW_FLAVOURS = ("hmdb51_unbiased", "hmdb51_swapped", "hmdb51_static", "actor_hmdb51_unbiased",
                "actor_hmdb51_swapped")
UCF = ("ucf101", "ucf101_unbiased", "ucf101_swapped", "ucf101_static")
# sha256 of the UCF plans of GeneratorConfig.tiny() (fields below) as the generator made them before the HMDB copies
UCF_PLANS_SHA256 = "c57945856e98653fd62a00a2e2dc55352324586b6c8367fbdc633ca46d548e40"


def _plan_fields(p: S.VideoPlan) -> list:
    return [p.flavour, p.rel, p.label, p.class_name, p.subset, list(p.stages), p.namespace, p.index, p.scene_ns,
            p.scene_family, p.own_scene, p.post, p.original_family]


def _ucf_digest(cfg: GeneratorConfig) -> str:
    plans = S.make_plans(cfg)
    rows = [_plan_fields(p) for f in UCF for p in plans[f]]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _by_rel(plans: list[S.VideoPlan]) -> dict[str, S.VideoPlan]:
    return {p.rel: p for p in plans}


def _crop_by_hand(frames: np.ndarray, masks: np.ndarray, crop: np.ndarray, size: int):
    def cut(v: np.ndarray) -> np.ndarray:
        return np.stack([v[t, y0:y1, x0:x1] for t, (x0, y0, x1, y1) in enumerate(crop)])
    return _resize_bilinear(cut(frames), size), _resize_nearest(cut(masks), size)


# ============================================================================================ UCF unchanged
def test_tiny_config_has_every_flavour():
    assert TINY.flavours == list(S.FLAVOURS) and set(NEW_FLAVOURS) <= set(S.FLAVOURS)
    assert all(FLAVOUR_FORMAT[f] == "hmdb51" for f in NEW_FLAVOURS)
    assert S.FLAVOURS[:6] == ("ucf101", "ucf101_unbiased", "ucf101_swapped", "ucf101_static", "hmdb51",
                              "actor_hmdb51") and S.FLAVOURS[-1] == "diving48"


def test_ucf_plans_are_those_of_before():
    assert _ucf_digest(TINY) == UCF_PLANS_SHA256
    plans = S.make_plans(TINY)
    assert {p.swap_ns for f in ("ucf101_swapped", "ucf101_static") for p in plans[f]} == {"ucf101_swapped"}
    assert not any(p.actor_crop for f in UCF for p in plans[f])


@pytest.mark.parametrize("overrides", [
    dict(hmdb_rho=0.3, hmdb_rho_spread=0.25),
    dict(actor_crop_margin=1.0, diving_num_frames=24),
    dict(flavours=["ucf101", "ucf101_swapped", "ucf101_static", "hmdb51_swapped", "actor_hmdb51_swapped"]),
    dict(flavours=["ucf101_static", "ucf101", "ucf101_swapped"]),
])
def test_ucf_flavours_do_not_depend_on_the_new_knobs(overrides):
    other = GeneratorConfig.tiny(**overrides)
    a, b = S.make_plans(TINY), S.make_plans(other)
    for flavour in ("ucf101", "ucf101_swapped", "ucf101_static"):
        assert a[flavour] == b[flavour], flavour
        for p in a[flavour][:3]:
            fa, ma, ea = S.render_final(TINY, p)
            fb, mb, eb = S.render_final(other, p)
            assert np.array_equal(fa, fb) and np.array_equal(ma, mb) and ea.keys() == eb.keys(), p.rel


# ============================================================================================ hmdb51_swapped / static
def test_hmdb_swapped_plans():
    plans = S.make_plans(TINY)
    base = _by_rel(plans["hmdb51"])
    test = [p for p in plans["hmdb51"] if p.subset == "test"]
    swapped, static = plans["hmdb51_swapped"], plans["hmdb51_static"]
    assert len(swapped) == len(static) == len(test) > 0
    assert [p.rel for p in swapped] == [p.rel for p in static] == [p.rel for p in test]
    for s, t in zip(swapped, static):
        o = base[s.rel]
        assert s.scene_family not in (s.label, o.scene_family) and s.original_family == o.scene_family
        assert (s.post, t.post, s.swap_ns, t.swap_ns) == ("swap", "static", "hmdb51_swapped", "hmdb51_swapped")
        assert s.subset == "test" and not s.own_scene and not s.actor_crop
        assert (s.namespace, s.index, s.stages) == (o.namespace, o.index, o.stages)  # the same actor and motion
        assert dataclasses.replace(t, flavour=s.flavour, post="swap") == s
    # on a larger, weakly biased draw every family serves as a swap scene, never the class's own or the original
    cfg = GeneratorConfig(hmdb_rho=0.2, hmdb_rho_spread=0.0, hmdb_test_per_class=60, flavours=["hmdb51_swapped"])
    many = S.make_plans(cfg)["hmdb51_swapped"]
    assert sum(p.original_family != p.label for p in many) > 100
    assert all(p.scene_family not in (p.label, p.original_family) for p in many)
    assert len({p.scene_family for p in many}) == cfg.scene_families


def test_hmdb_swapped_keeps_the_actor_and_changes_the_scene():
    plans = S.make_plans(TINY)
    base = _by_rel(plans["hmdb51"])
    for s in plans["hmdb51_swapped"]:
        orig, swap = S.render(TINY, base[s.rel]), S.render(TINY, s)
        assert np.array_equal(orig.masks, swap.masks) and orig.masks.any()
        assert np.array_equal(orig.frames[orig.masks], swap.frames[swap.masks])  # the actor, pixel for pixel
        bg = ~orig.masks
        assert np.abs(orig.frames[bg].astype(float) - swap.frames[bg]).mean() > 20  # another scene behind it
        # the scene variation comes from HMDB's own swap stream, not the UCF one
        ucf_stream = S.render(TINY, dataclasses.replace(s, swap_ns="ucf101_swapped"))
        assert not np.array_equal(ucf_stream.background, swap.background)
        _, _, extra = S.render_final(TINY, s)
        assert extra == {"original_scene_family": base[s.rel].scene_family}


def test_hmdb_static_is_the_swapped_middle_frame():
    plans = S.make_plans(TINY)
    swapped = _by_rel(plans["hmdb51_swapped"])
    for p in plans["hmdb51_static"]:
        frames, masks, extra = S.render_final(TINY, p)
        sf, sm, _ = S.render_final(TINY, swapped[p.rel])
        mid = TINY.num_frames // 2
        assert frames.shape == sf.shape and (frames == sf[mid]).all() and (masks == sm[mid]).all()
        assert not np.array_equal(sf[0], sf[mid])  # the swapped video itself moves
        assert extra["source_frame"] == mid and extra["original_scene_family"] == p.original_family


def test_hmdb_swapped_and_static_on_disk(tiny_dataset):
    hm_test = F.read_split("hmdb51", tiny_dataset / "hmdb51", "test")
    names = sorted(r.path.relative_to(tiny_dataset / "hmdb51").as_posix() for r in hm_test.records)
    for flavour in ("hmdb51_swapped", "hmdb51_static", "actor_hmdb51_swapped"):
        root = tiny_dataset / flavour
        assert F.read_split("hmdb51", root, "train").records == []
        te = F.read_split("hmdb51", root, "test")
        assert sorted(r.path.relative_to(root).as_posix() for r in te.records) == names
        assert te.class_names == hm_test.class_names
        for p in (root / "testTrainMulti_7030_splits").iterdir():  # every listed video is a test video
            assert set(ln.split(" ")[1] for ln in p.read_text().splitlines()) == {"2"}
        index = json.loads((root / "annotations" / "index.json").read_text())
        assert len(index) == len(names) and all("original_scene_family" in e for e in index)
    for rec in F.read_split("hmdb51", tiny_dataset / "hmdb51_static", "test").records:
        v = read_video(rec.path).numpy()
        assert all(np.array_equal(v[0], v[t]) for t in range(1, len(v))), rec.path


# ============================================================================================ hmdb51_unbiased
def test_hmdb_unbiased_same_classes_and_splits_other_videos(tiny_dataset):
    plans = S.make_plans(TINY)
    hm, ub = plans["hmdb51"], plans["hmdb51_unbiased"]
    count = lambda ps: collections.Counter((p.label, p.subset) for p in ps)  # noqa: E731
    assert count(ub) == count(hm) and [(p.rel, p.subset) for p in ub] == [(p.rel, p.subset) for p in hm]
    assert {p.namespace for p in ub} == {"hmdb51_unbiased"} and all(p.post == "none" for p in ub)
    for a, b in zip(hm[:4], ub[:4]):  # other actors, motions and scenes
        ra, rb = S.render(TINY, a), S.render(TINY, b)
        assert not np.array_equal(ra.masks, rb.masks) and not np.array_equal(ra.background, rb.background)
    split = "testTrainMulti_7030_splits"
    for p in (tiny_dataset / "hmdb51" / split).iterdir():
        assert (tiny_dataset / "hmdb51_unbiased" / split / p.name).read_bytes() == p.read_bytes()


def test_hmdb_unbiased_scene_is_uniform():
    cfg = GeneratorConfig(hmdb_train_per_class=200, flavours=["hmdb51", "hmdb51_unbiased"])
    plans = S.make_plans(cfg)
    ub = plans["hmdb51_unbiased"]
    k, n = cfg.scene_families, len(ub)
    own = np.mean([p.own_scene for p in ub])
    assert all(p.own_scene == (p.scene_family == p.label) for p in ub)
    assert abs(own - 1 / k) < 4 * math.sqrt((1 / k) * (1 - 1 / k) / n), own
    fams = collections.Counter(p.scene_family for p in ub)
    assert stats.chisquare([fams[f] for f in range(k)]).pvalue > 1e-3
    assert np.mean([p.own_scene for p in plans["hmdb51"]]) > 0.8  # while hmdb51 stays biased


# ============================================================================================ actor crop
def test_actor_crop_boxes_per_frame_with_margin():
    R, margin = TINY.resolution, TINY.actor_crop_margin
    plans = S.make_plans(TINY)
    moved = 0
    for p in plans["actor_hmdb51"] + plans["actor_hmdb51_unbiased"]:
        src = S.render(TINY, p).masks
        boxes = S.boxes_from_masks(src)
        frames, masks, extra = S.render_final(TINY, p)
        crop = extra["crop_box"]
        assert crop.shape == (len(src), 4) and crop.dtype == np.int32
        sides = np.concatenate([crop[:, 2] - crop[:, 0], crop[:, 3] - crop[:, 1]])
        largest = int(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).max())
        assert set(sides) == {min(max(math.ceil(largest * (1 + 2 * margin)), 2), R)}
        side = int(sides[0])
        assert (crop[:, :2] >= 0).all() and (crop[:, 2:] <= R).all()
        for t in range(len(src)):
            if not src[t].any():
                continue
            (x0, y0, x1, y1), (bx0, by0, bx1, by1) = crop[t], boxes[t]
            assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1  # the whole actor, on every frame
            if side < R and 0 < x0 and x1 < R:  # not clamped: centred, with the margin on both sides
                assert min(bx0 - x0, x1 - bx1) >= math.floor(margin * largest)
                assert abs((x0 + x1) - (bx0 + bx1)) <= 1
            if side < R and 0 < y0 and y1 < R:
                assert min(by0 - y0, y1 - by1) >= math.floor(margin * largest)
                assert abs((y0 + y1) - (by0 + by1)) <= 1
            assert masks[t].any()  # the cropped actor is still there
        moved += len({tuple(b[:2]) for b in crop}) > 1
        assert frames.shape == (len(src), R, R, 3) and masks.shape == (len(src), R, R)
    assert moved > len(plans["actor_hmdb51"])  # the square follows the actor


def test_actor_crop_margin_widens_the_square():
    p = S.make_plans(TINY)["actor_hmdb51"][0]
    boxes = S.boxes_from_masks(S.render(TINY, p).masks)
    largest = int(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).max())

    def side(margin: float) -> int:
        x0, _, x1, _ = S.render_final(GeneratorConfig.tiny(actor_crop_margin=margin), p)[2]["crop_box"][0]
        return int(x1 - x0)

    assert side(0.0) == largest < side(0.1) < side(0.25) and side(5.0) == TINY.resolution


def test_actor_crop_boxes_edge_cases():
    empty = np.zeros((4, 4), dtype=np.int32)
    assert S.actor_crop_boxes(empty, 32, 0.25).tolist() == [[0, 0, 32, 32]] * 4  # no actor: the whole frame
    boxes = np.array([[0, 0, 0, 0], [10, 10, 14, 14], [0, 0, 0, 0], [0, 0, 0, 0], [20, 4, 24, 8]], dtype=np.int32)
    crop = S.actor_crop_boxes(boxes, 32, 0.5)  # side 4 x 2 = 8
    assert crop.tolist() == [[8, 8, 16, 16], [8, 8, 16, 16], [8, 8, 16, 16], [18, 2, 26, 10], [18, 2, 26, 10]]
    corner = S.actor_crop_boxes(np.array([[0, 28, 4, 32]], dtype=np.int32), 32, 1.0)  # clamped into the frame
    assert corner.tolist() == [[0, 20, 12, 32]]
    tiny_actor = S.actor_crop_boxes(np.array([[5, 5, 6, 6]], dtype=np.int32), 32, 0.0)
    assert tiny_actor.tolist() == [[4, 4, 6, 6]]  # at least 2 px


def test_actor_crop_smoothing_follows_the_drift_by_hand():
    # an actor 4 px wide moving 2 px/frame to the right, then jumping back: x centres 12, 14, 16, 12
    boxes = np.array([[10, 10, 14, 14], [12, 10, 16, 14], [14, 10, 18, 14], [10, 10, 14, 14]], dtype=np.int32)
    assert S.actor_crop_boxes(boxes, 32, 0.0, smoothing=1).tolist() == boxes.tolist()  # follows every frame
    # window 3 (truncated at the ends): twice-centres x 26, 28, 28, 28; the square about them holding every box
    # reaches 8 px (frame 2: 2 x 18 - 28; frame 3: 28 - 2 x 10) -> side 8, corners floor((2c - 8) / 2)
    crop = S.actor_crop_boxes(boxes, 32, 0.0, smoothing=3)
    assert crop[:, 0].tolist() == [9, 10, 10, 10] and crop[:, 1].tolist() == [8, 8, 8, 8]
    assert set((crop[:, 2] - crop[:, 0]).tolist()) == {8} and set((crop[:, 3] - crop[:, 1]).tolist()) == {8}
    for (x0, y0, x1, y1), (bx0, by0, bx1, by1) in zip(crop, boxes):
        assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1  # every box inside its square
    margin = S.actor_crop_boxes(boxes, 32, 0.5, smoothing=3)
    assert set((margin[:, 2] - margin[:, 0]).tolist()) == {12}  # + 2 x 0.5 x the largest side (4)


def test_actor_crop_smoothing_keeps_motion_in_view():
    cfg = GeneratorConfig.tiny(actor_crop_smoothing=5)
    plans = S.make_plans(cfg)
    followed, smoothed = [], []
    for p in plans["actor_hmdb51"] + plans["actor_hmdb51_unbiased"]:
        boxes = S.boxes_from_masks(S.render(cfg, p).masks)
        if not (boxes[:, 2] > boxes[:, 0]).all():
            continue
        frames, masks, extra = S.render_final(cfg, p)
        crop = extra["crop_box"]
        sides = crop[:, 2:] - crop[:, :2]
        assert len(set(sides.ravel().tolist())) == 1  # one square side per video
        assert (crop[:, :2] <= boxes[:, :2]).all() and (boxes[:, 2:] <= crop[:, 2:]).all()  # whole actor in view
        in_crop = (boxes[:, :2] + boxes[:, 2:]) / 2 - crop[:, :2]
        tight = S.actor_crop_boxes(boxes, cfg.resolution, cfg.actor_crop_margin)
        followed.append(np.abs(np.diff((boxes[:, :2] + boxes[:, 2:]) / 2 - tight[:, :2], axis=0)).mean())
        smoothed.append(np.abs(np.diff(in_crop, axis=0)).mean())
    assert len(smoothed) > 4 and np.mean(smoothed) > 1.5 * np.mean(followed)  # the actor moves within its crop


def test_actor_copies_are_crops_of_their_sources():
    plans = S.make_plans(TINY)
    for actor, source in (("actor_hmdb51", "hmdb51"), ("actor_hmdb51_unbiased", "hmdb51_unbiased"),
                          ("actor_hmdb51_swapped", "hmdb51_swapped")):
        src = _by_rel(plans[source])
        assert [p.rel for p in plans[actor]] == [p.rel for p in plans[source]]
        for p in plans[actor][:4]:
            assert p.actor_crop and dataclasses.replace(p, flavour=source, actor_crop=False) == src[p.rel]
            frames, masks, extra = S.render_final(TINY, p)
            sf, sm, sextra = S.render_final(TINY, src[p.rel])
            want_f, want_m = _crop_by_hand(sf, sm, extra["crop_box"], TINY.resolution)
            assert np.array_equal(frames, want_f) and np.array_equal(masks, want_m)
            assert np.array_equal(extra["crop_box"], S.actor_crop_boxes(S.boxes_from_masks(sm), TINY.resolution,
                                                                          TINY.actor_crop_margin))
            assert {k: v for k, v in extra.items() if k != "crop_box"} == sextra  # original_scene_family kept


# ============================================================================================ HMDB bias
def test_hmdb_rho_and_spread():
    cfg = GeneratorConfig(rho=0.9, rho_spread=0.05, hmdb_rho=0.3, hmdb_rho_spread=0.2, hmdb_train_per_class=300,
                          flavours=["ucf101", "hmdb51"])
    n = len(cfg.hmdb_classes)
    rhos = S.class_rhos(cfg, "hmdb", n, *cfg.hmdb_bias())
    assert np.allclose(sorted(rhos), np.linspace(0.1, 0.5, n))  # spread over [hmdb_rho - spread, + spread]
    plans = S.make_plans(cfg)
    for label in range(n):  # the plans draw with these, not with rho / rho_spread
        ps = [p for p in plans["hmdb51"] if p.label == label]
        own = np.mean([p.own_scene for p in ps])
        assert abs(own - rhos[label]) < 4 * math.sqrt(rhos[label] * (1 - rhos[label]) / len(ps)), (label, own)
    # the UCF101-like classes keep rho / rho_spread
    plain = GeneratorConfig(rho=0.9, rho_spread=0.05, flavours=["ucf101", "hmdb51"])
    assert S.make_plans(plain)["ucf101"] == plans["ucf101"]
    assert S.make_plans(plain)["hmdb51"] != plans["hmdb51"]
    # clipped to [1/K, 1]
    hi = GeneratorConfig(hmdb_rho=1.0, hmdb_rho_spread=0.3)
    assert np.allclose(sorted(S.class_rhos(hi, "hmdb", n, *hi.hmdb_bias())), [0.7, 0.82, 0.94, 1.0, 1.0, 1.0])
    lo = GeneratorConfig(hmdb_rho=0.0, hmdb_rho_spread=0.0)
    assert np.allclose(S.class_rhos(lo, "hmdb", n, *lo.hmdb_bias()), 1 / lo.scene_families)


def test_hmdb_rho_none_falls_back_to_rho():
    cfg = GeneratorConfig.tiny(rho=0.6, rho_spread=0.3)
    assert cfg.hmdb_rho is None and cfg.hmdb_bias() == (0.6, 0.3)
    assert GeneratorConfig.tiny(rho=0.6, rho_spread=0.3, hmdb_rho=0.5).hmdb_bias() == (0.5, 0.3)
    assert GeneratorConfig.tiny(rho=0.6, rho_spread=0.3, hmdb_rho_spread=0.0).hmdb_bias() == (0.6, 0.0)
    explicit = GeneratorConfig.tiny(rho=0.6, rho_spread=0.3, hmdb_rho=0.6, hmdb_rho_spread=0.3)
    assert S.make_plans(cfg)["hmdb51"] == S.make_plans(explicit)["hmdb51"]


# ============================================================================================ Diving48 length
def test_diving_num_frames(tmp_path):
    cfg = GeneratorConfig.tiny(diving_num_frames=24, flavours=["diving48", "ucf101", "hmdb51_static"])
    plans = S.make_plans(cfg)
    assert {p.num_frames for p in plans["diving48"]} == {24}
    assert {p.num_frames for f in ("ucf101", "hmdb51_static") for p in plans[f]} == {cfg.num_frames}
    frames, masks, _ = S.render_final(cfg, plans["diving48"][0])
    assert frames.shape == (24, cfg.resolution, cfg.resolution, 3) and masks.shape == (24, cfg.resolution,
                                                                                       cfg.resolution)
    assert len(S.render_final(cfg, plans["hmdb51_static"][0])[0]) == cfg.num_frames
    assert GeneratorConfig.tiny().diving_frames() == GeneratorConfig.tiny().num_frames
    generate(GeneratorConfig.tiny(diving_num_frames=24, flavours=["diving48"]), tmp_path / "d", workers=1,
             progress=False)
    root = tmp_path / "d" / "diving48"
    for subset in ("train", "test"):
        for rec in F.read_split("diving48", root, subset).records:
            assert rec.end_frame == 23 and tuple(read_video(rec.path).shape) == (24, 32, 32, 3)
            ann = load_annotation(root / "annotations" / rec.path.relative_to(root).with_suffix(".npz"))
            assert ann["masks"].shape == (24, 32, 32) and ann["boxes"].shape == (24, 4)


# ============================================================================================ validation
@pytest.mark.parametrize("key, value, match", [
    ("hmdb_rho", 1.5, "outside"), ("hmdb_rho", -0.1, "outside"), ("hmdb_rho", "0.5", "not a number"),
    ("hmdb_rho", True, "not a number"), ("hmdb_rho_spread", 2, "outside"),
    ("hmdb_rho_spread", float("nan"), "not a number"),
    ("actor_crop_margin", -0.1, "below 0"), ("actor_crop_margin", "wide", "not a number"),
    ("actor_crop_margin", None, "not a number"), ("actor_crop_margin", float("inf"), "not a number"),
    ("actor_crop_smoothing", 0, "below the minimum"), ("actor_crop_smoothing", 2.5, "not an integer"),
    ("diving_num_frames", 4, "below the minimum 8"), ("diving_num_frames", 16.0, "not an integer"),
    ("diving_num_frames", "16", "not an integer"), ("diving_num_frames", True, "not an integer"),
])
def test_new_fields_validated(key, value, match):
    with pytest.raises(ConfigError, match=match) as exc:
        GeneratorConfig.from_dict({key: value})
    assert str(exc.value).startswith(f"data.{key}:")


def test_new_fields_accept_their_defaults_and_null():
    cfg = GeneratorConfig.from_dict({"hmdb_rho": None, "hmdb_rho_spread": None, "diving_num_frames": None,
                                     "actor_crop_margin": 0})
    assert cfg == GeneratorConfig(actor_crop_margin=0)
    d = GeneratorConfig()
    assert (d.hmdb_rho, d.hmdb_rho_spread, d.diving_num_frames, d.actor_crop_margin) == (None, None, None, 0.25)
    assert GeneratorConfig.from_dict(GeneratorConfig(hmdb_rho=0.4, diving_num_frames=12).to_dict()).hmdb_rho == 0.4
