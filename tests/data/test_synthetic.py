"""The generator: determinism, layout, ground truth, bias, config validation."""
import collections
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage, stats

from scenebias.data import formats as F
from scenebias.data import synthetic as S
from scenebias.data.synthetic import FLAVOUR_FORMAT, GeneratorConfig, generate, load_annotation
from scenebias.data.video import read_video
from scenebias.errors import ConfigError, DataError
from scenebias.provenance import canonical_sha256

TINY = GeneratorConfig.tiny()


def _records(root: Path, flavour: str, subset: str):
    return F.read_split(FLAVOUR_FORMAT[flavour], root / flavour, subset)


def _ann(root: Path, flavour: str, rec) -> dict:
    rel = rec.path.relative_to(root / flavour).with_suffix(".npz")
    return load_annotation(root / flavour / "annotations" / rel)


# ============================================================================================ determinism
def test_manifest_hash_deterministic(tiny_dataset, tmp_path):
    m = json.loads((tiny_dataset / "manifest.json").read_text())
    again = generate(TINY, tmp_path / "again", workers=1, progress=False)  # other worker count, same bytes
    assert again["hash"] == m["hash"]
    assert again == json.loads((tmp_path / "again" / "manifest.json").read_text())
    other = generate(GeneratorConfig.tiny(seed=1), tmp_path / "other", workers=2, progress=False)
    assert other["hash"] != m["hash"]
    # regenerating into an existing folder replaces it and leaves no temporary siblings
    generate(TINY, tmp_path / "other", workers=2, progress=False)
    assert json.loads((tmp_path / "other" / "manifest.json").read_text())["hash"] == m["hash"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "other"]


def test_manifest_lists_every_file(tiny_dataset):
    m = json.loads((tiny_dataset / "manifest.json").read_text())
    assert m["generator"] == S.GENERATOR_VERSION and m["config"] == TINY.to_dict()
    on_disk = sorted(p.relative_to(tiny_dataset).as_posix() for p in tiny_dataset.rglob("*")
                     if p.is_file() and p.name != "manifest.json")
    paths = [f["path"] for f in m["files"]]
    assert paths == on_disk == sorted(paths)
    for f in m["files"][::7]:
        data = (tiny_dataset / f["path"]).read_bytes()
        assert len(data) == f["bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"]
    assert canonical_sha256(m["files"]) == m["hash"]
    assert set(S.flavour_roots(tiny_dataset)) == set(S.FLAVOURS)


# ============================================================================================ layout
def test_every_record_decodes(tiny_dataset):
    counts = {}
    for flavour in S.FLAVOURS:
        for subset in ("train", "test"):
            si = _records(tiny_dataset, flavour, subset)
            counts[flavour, subset] = len(si.records)
            for rec in si.records:
                v = read_video(rec.path)
                assert tuple(v.shape) == (TINY.num_frames, TINY.resolution, TINY.resolution, 3), rec.path
    plans = S.make_plans(TINY)
    n_ucf_test = sum(p.subset == "test" for p in plans["ucf101"])
    assert counts["ucf101", "test"] == counts["ucf101_swapped", "test"] == counts["ucf101_static", "test"] \
        == n_ucf_test > 0
    assert counts["ucf101_swapped", "train"] == counts["ucf101_static", "train"] == 0
    assert counts["ucf101", "train"] + counts["ucf101", "test"] == len(plans["ucf101"])
    assert counts["ucf101_unbiased", "train"] == counts["ucf101", "train"]
    hmdb_train = [f for f in S.FLAVOURS if "hmdb51" in f and not f.endswith(("_swapped", "_static"))]
    assert len(hmdb_train) == 4 and {counts[f, "train"] for f in hmdb_train} == {3 * TINY.hmdb_train_per_class}
    hmdb = [f for f in S.FLAVOURS if "hmdb51" in f]
    assert len(hmdb) == 7 and {counts[f, "test"] for f in hmdb} == {3 * TINY.hmdb_test_per_class}
    assert {counts[f, "train"] for f in hmdb if f.endswith(("_swapped", "_static"))} == {0}
    assert counts["diving48", "train"] == 2 * TINY.diving_train_per_class


def test_split_files_look_official(tiny_dataset):
    lst = tiny_dataset / "ucf101" / "ucfTrainTestlist"
    ci = (lst / "classInd.txt").read_bytes()
    assert ci == b"1 Fall\r\n2 Orbit\r\n3 Rise\r\n4 Slide\r\n"
    train = (lst / "trainlist01.txt").read_bytes()
    test = (lst / "testlist01.txt").read_bytes()
    assert re.fullmatch(rb"([A-Z][a-z]+/v_[A-Z][a-z]+_g\d\d_c\d\d\.avi [1-4]\r\n)+", train)
    assert re.fullmatch(rb"([A-Z][a-z]+/v_[A-Z][a-z]+_g\d\d_c\d\d\.avi\r\n)+", test)
    assert set(re.findall(rb"_g(\d\d)_", test)) == {b"01"}  # test = the first ucf_test_groups groups
    assert b"_g01_" not in train
    for line in train.split(b"\r\n")[:-1]:  # label = classInd index of the directory
        cls, label = line.split(b"/")[0], int(line.split(b" ")[1])
        assert ci.split(b"\r\n")[label - 1] == b"%d %s" % (label, cls)
    assert (tiny_dataset / "ucf101_swapped/ucfTrainTestlist/trainlist01.txt").read_bytes() == b""
    assert (tiny_dataset / "ucf101_swapped/ucfTrainTestlist/testlist01.txt").read_bytes() == test

    hm = tiny_dataset / "hmdb51" / "testTrainMulti_7030_splits"
    assert sorted(p.name for p in hm.iterdir()) == [f"{c}_test_split1.txt" for c in ["diagonal", "hop", "swing"]]
    for p in hm.iterdir():
        data = p.read_bytes()
        assert re.fullmatch(rb"([a-z_]+_\d{3}\.avi [012] \n)+", data)
        tags = collections.Counter(re.findall(rb" ([012]) \n", data))
        assert tags == {b"1": 3, b"2": 2, b"0": 1}
        names = [ln.split(b" ")[0] for ln in data.split(b"\n")[:-1]]
        assert names == sorted(names)
    assert (tiny_dataset / "actor_hmdb51/testTrainMulti_7030_splits/hop_test_split1.txt").read_bytes() == \
        (hm / "hop_test_split1.txt").read_bytes()

    dv = tiny_dataset / "diving48"
    vocab = json.loads((dv / "Diving48_vocab.json").read_text())
    assert vocab == [["rise", "slide"], ["slide", "rise"]]
    for name in ("Diving48_V2_train.json", "Diving48_V2_test.json"):
        raw = (dv / name).read_bytes()
        assert raw.startswith(b'[\n  {\n    "vid_name": ') and raw.endswith(b"}\n]")
        entries = json.loads(raw)
        assert all(list(e) == ["vid_name", "label", "start_frame", "end_frame"] for e in entries)
        assert all(e["start_frame"] == 0 and e["end_frame"] == TINY.num_frames - 1 for e in entries)
    tr = F.read_split("diving48", dv, "train")
    assert tr.class_names == ["rise_slide", "slide_rise"]


# ============================================================================================ ground truth
def test_annotations_consistent(tiny_dataset):
    for flavour in S.FLAVOURS:
        for subset in ("train", "test"):
            for rec in _records(tiny_dataset, flavour, subset).records:
                a = _ann(tiny_dataset, flavour, rec)
                m = a["masks"]
                assert m.shape == (TINY.num_frames, TINY.resolution, TINY.resolution) and m.dtype == bool
                assert m.any(axis=(1, 2)).all(), rec.path  # the actor is visible in every frame
                assert a["label"] == rec.label
                for t in range(m.shape[0]):
                    ys, xs = np.nonzero(m[t])
                    assert tuple(a["boxes"][t]) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                if flavour in ("ucf101", "ucf101_unbiased", "hmdb51", "actor_hmdb51", "hmdb51_unbiased",
                               "actor_hmdb51_unbiased"):
                    assert a["own_scene"] == (a["scene_family"] == rec.label)


def test_masks_match_pixels(tiny_dataset):
    """Inside the mask the pixels are the actor's: the swapped video equals the original there and
    differs strongly outside (another scene); the same masks came from the renderer."""
    inside, outside = [], []
    for rec in _records(tiny_dataset, "ucf101_swapped", "test").records:
        rel = rec.path.relative_to(tiny_dataset / "ucf101_swapped")
        orig = read_video(tiny_dataset / "ucf101" / rel).numpy().astype(float)
        swap = read_video(rec.path).numpy().astype(float)
        m = _ann(tiny_dataset, "ucf101_swapped", rec)["masks"]
        assert np.array_equal(m, load_annotation(tiny_dataset / "ucf101" / "annotations" / rel.with_suffix(".npz"))
                              ["masks"])
        core = ndimage.binary_erosion(m, structure=np.ones((1, 3, 3)))  # away from codec bleeding at edges
        far = ~ndimage.binary_dilation(m, structure=np.ones((1, 5, 5)))
        if core.sum() > 20:
            inside.append(np.abs(orig - swap)[core].mean())
        outside.append(np.abs(orig - swap)[far].mean())
    assert inside and np.mean(inside) < 10 and max(inside) < 16, inside
    assert np.mean(outside) > 30 and min(outside) > 8, outside


def test_mask_is_where_the_actor_is(tiny_dataset):
    """In the rendered (pre-codec) video, the frame equals the background layer exactly outside the mask."""
    plan = S.make_plans(TINY)["ucf101"][3]
    r = S.render(TINY, plan)
    out = ~r.masks
    assert np.array_equal(r.frames[out], r.background[out])
    assert (np.abs(r.frames.astype(int) - r.background.astype(int)).sum(-1)[r.masks] > 0).mean() > 0.5


def test_swapped_scene_family(tiny_dataset):
    orig = {p.rel: p for p in S.make_plans(TINY)["ucf101"]}
    n = 0
    for rec in _records(tiny_dataset, "ucf101_swapped", "test").records:
        rel = rec.path.relative_to(tiny_dataset / "ucf101_swapped").as_posix()
        a = _ann(tiny_dataset, "ucf101_swapped", rec)
        assert a["scene_family"] != rec.label and a["scene_family"] != a["original_scene_family"]
        assert a["original_scene_family"] == orig[rel].scene_family and not a["own_scene"]
        n += 1
    assert n > 0
    # on a larger, weakly biased draw (many originals are not the class's own family)
    cfg = GeneratorConfig(rho=0.2, rho_spread=0.0, ucf_groups=40, ucf_test_groups=20,
                          flavours=["ucf101_swapped"])
    swapped = S.make_plans(cfg)["ucf101_swapped"]
    assert sum(p.original_family != p.label for p in swapped) > 100
    assert all(p.scene_family not in (p.label, p.original_family) and p.post == "swap" for p in swapped)
    used = collections.Counter(p.scene_family for p in swapped)
    assert len(used) == cfg.scene_families  # every family serves as a swap scene


def test_static_video_identical_frames(tiny_dataset):
    for rec in _records(tiny_dataset, "ucf101_static", "test").records:
        v = read_video(rec.path).numpy()
        assert all(np.array_equal(v[0], v[t]) for t in range(1, len(v))), rec.path
        rel = rec.path.relative_to(tiny_dataset / "ucf101_static")
        swap = read_video(tiny_dataset / "ucf101_swapped" / rel).numpy().astype(float)
        mid = TINY.num_frames // 2
        assert np.abs(swap[mid] - v[0]).mean() < 8  # it is the swapped video's middle frame
        assert np.abs(swap[0] - v[0]).mean() > np.abs(swap[mid] - v[0]).mean()
        a = _ann(tiny_dataset, "ucf101_static", rec)
        assert (a["masks"] == a["masks"][:1]).all()


def test_actor_crop_zooms_on_actor(tiny_dataset):
    frac_hmdb, frac_actor = [], []
    for rec in _records(tiny_dataset, "hmdb51", "train").records:
        rel = rec.path.relative_to(tiny_dataset / "hmdb51")
        a0 = _ann(tiny_dataset, "hmdb51", rec)
        a1 = load_annotation(tiny_dataset / "actor_hmdb51" / "annotations" / rel.with_suffix(".npz"))
        crop = a1["crop_box"]
        assert crop.shape == (TINY.num_frames, 4) and crop.dtype == np.int32
        x0, y0, x1, y1 = crop.T
        assert len(set(x1 - x0) | set(y1 - y0)) == 1  # one square size for the whole video
        assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= TINY.resolution).all() and (y1 <= TINY.resolution).all()
        for t, m in enumerate(a0["masks"]):  # each frame's square contains that frame's actor
            ys, xs = np.nonzero(m)
            assert x0[t] <= xs.min() and y0[t] <= ys.min() and xs.max() < x1[t] and ys.max() < y1[t]
        frac_hmdb.append(a0["masks"].mean())
        frac_actor.append(a1["masks"].mean())
    assert np.mean(frac_actor) > 1.3 * np.mean(frac_hmdb)


def test_annotation_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_annotation(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="bad.npz"):
        load_annotation(tmp_path / "bad.npz")


# ============================================================================================ bias
def test_measured_rho_matches_config():
    cfg = GeneratorConfig(ucf_groups=150, ucf_test_groups=7, flavours=["ucf101", "ucf101_unbiased"],
                          rho=0.8, rho_spread=0.15)
    plans = S.make_plans(cfg)
    rhos = S.class_rhos(cfg, "ucf", len(cfg.ucf_classes), cfg.rho, cfg.rho_spread)
    assert np.allclose(sorted(rhos), np.linspace(0.65, 0.95, 8))  # spread evenly
    k = cfg.scene_families
    for label in range(len(cfg.ucf_classes)):
        ps = [p for p in plans["ucf101"] if p.label == label]
        own = np.mean([p.own_scene for p in ps])
        assert abs(own - rhos[label]) < 4 * np.sqrt(rhos[label] * (1 - rhos[label]) / len(ps)), (label, own)
        assert all(p.scene_family != label for p in ps if not p.own_scene)
    # the non-own draws are a uniformly random *other* family
    low = S.make_plans(GeneratorConfig(ucf_groups=100, rho=0.2, rho_spread=0.0, flavours=["ucf101"]))["ucf101"]
    shift = collections.Counter((p.scene_family - p.label) % k for p in low if not p.own_scene)
    assert sorted(shift) == list(range(1, k))
    assert stats.chisquare([shift[i] for i in range(1, k)]).pvalue > 1e-3
    own_u = np.mean([p.own_scene for p in plans["ucf101_unbiased"]])
    assert abs(own_u - 1 / k) < 0.03
    # the per-class bias is clipped to [1/K, 1]
    hi = S.class_rhos(GeneratorConfig(), "ucf", 8, 1.0, 0.2)
    assert hi.max() == 1.0 and hi.min() == pytest.approx(0.8)


def test_actor_look_independent_of_class():
    """Shape / colour draws depend on (namespace, index) only: relabelling a plan keeps the actor."""
    import dataclasses
    p = S.make_plans(TINY)["ucf101"][0]
    q = dataclasses.replace(p, label=3, class_name="Slide", stages=("slide",))
    a, b = S.render(TINY, p), S.render(TINY, q)
    assert a.masks[0].sum() == b.masks[0].sum()  # same shape and size (before the motions diverge)
    assert np.array_equal(a.background, b.background)


# ============================================================================================ motions
@pytest.mark.parametrize("name", sorted(S.MOTIONS))
def test_motion_mirror_invariant_and_fast(name):
    fn, _ = S.MOTIONS[name]
    rng = np.random.default_rng(0)
    t = np.arange(32.0)
    net, speeds = [], []
    for _ in range(400):
        v = rng.uniform(1.5, 2.5)
        x, y, s = fn(rng, t, 32, v, 5.0)
        net.append(np.sign(np.round(x[8] - x[0], 6)))
        speeds.append(np.hypot(np.diff(x), np.diff(y)).mean() + 5.0 * np.abs(np.diff(s)).mean())
    assert abs(np.mean(net)) < 0.15, f"{name}: horizontal motion is not mirror-symmetric"
    assert np.mean(speeds) >= 0.9, f"{name}: too slow ({np.mean(speeds):.2f} px/frame)"


def test_fast_oscillations_period():
    """bounce / shake reverse direction within an 8-frame window."""
    t = np.arange(32.0)
    for name, axis in (("bounce", 1), ("shake", 0)):
        for seed in range(20):
            traj = S.MOTIONS[name][0](np.random.default_rng(seed), t, 32, 2.0, 5.0)[axis]
            d = np.sign(np.diff(traj))
            for s0 in range(0, 24):
                assert len(set(d[s0:s0 + 8]) - {0}) == 2


def test_default_speed_and_names():
    cfg = GeneratorConfig()
    assert cfg.speed[0] >= 1.5 and cfg.resolution == 32
    assert cfg.ucf_names() == ["Bounce", "Fall", "Orbit", "Pulse", "Rise", "Shake", "Slide", "Zigzag"]
    assert not set(cfg.ucf_classes) & set(cfg.hmdb_classes)
    assert S.ucf_class_name("stop_and_go") == "StopAndGo"


# ============================================================================================ config
@pytest.mark.parametrize("d, key, match", [
    ({"rho": 1.7}, "data.rho", r"data\.rho: 1\.7 is outside \[0, 1\]"),
    ({"colour": 1}, "data.colour", "unknown key"),
    ({"resolution": 33}, "data.resolution", "odd"),
    ({"resolution": "32"}, "data.resolution", "not an integer"),
    ({"speed": [2.0, 1.0]}, "data.speed", "min > max"),
    ({"speed": 2.0}, "data.speed", r"\[min, max\]"),
    ({"ucf_classes": ["rise", "moonwalk"]}, "data.ucf_classes", "unknown motion 'moonwalk'"),
    ({"hmdb_classes": ["rise", "hop"]}, "data.hmdb_classes", "disjoint"),
    ({"scene_families": 5}, "data.scene_families", "below the minimum 8"),
    ({"ucf_test_groups": 25}, "data.ucf_test_groups", "no training group"),
    ({"flavours": ["kinetics"]}, "data.flavours", "unknown flavour"),
    ({"rho_spread": -0.1}, "data.rho_spread", "outside"),
])
def test_config_errors(d, key, match):
    with pytest.raises(ConfigError, match=match) as exc:
        GeneratorConfig.from_dict(d)
    assert str(exc.value).startswith(key + ":")


def test_config_roundtrip():
    cfg = GeneratorConfig.from_dict({"rho": 0.5, "speed": (2, 3)})
    assert cfg.rho == 0.5 and cfg.speed == [2, 3]
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert GeneratorConfig.from_dict(None) == GeneratorConfig()
    with pytest.raises(ConfigError, match="mapping"):
        GeneratorConfig.from_dict([1, 2])


# ============================================================================================ knobs
def test_background_motion_camera_jitter_and_noise():
    plan = S.make_plans(TINY)["ucf101"][5]
    still = S.render(TINY, plan)
    assert all(np.array_equal(still.background[0], still.background[t]) for t in range(TINY.num_frames))

    scroll = S.render(GeneratorConfig.tiny(background_motion=2.0), plan)
    assert not np.array_equal(scroll.background[0], scroll.background[-1])
    assert np.array_equal(scroll.masks, still.masks)  # scrolling the scene does not move the actor

    jit = S.render(GeneratorConfig.tiny(camera_jitter=2.0), plan)
    assert not np.array_equal(jit.background[0], jit.background[1])
    assert not np.array_equal(jit.masks, still.masks)  # the camera moves actor and scene together
    assert abs(int(jit.masks.sum()) - int(still.masks.sum())) < 0.2 * still.masks.sum()

    noisy = S.render(GeneratorConfig.tiny(pixel_noise=5.0), plan)
    diff = noisy.frames.astype(float) - still.frames
    assert 3.0 < diff.std() < 7.0 and np.array_equal(noisy.masks, still.masks)


def test_generate_subset_of_flavours(tmp_path):
    m = generate(GeneratorConfig.tiny(flavours=["diving48"]), tmp_path / "d", workers=1, progress=False)
    assert set(S.flavour_roots(tmp_path / "d")) == {"diving48"}
    assert all(f["path"].startswith("diving48/") for f in m["files"])


def test_two_tone_actors_keep_every_other_draw_and_add_a_contrasting_second_colour():
    import colorsys

    shade, two = TINY, GeneratorConfig.tiny(actor_palette="two_tone")
    hue_gaps, value_ratios = [], []
    for plan in S.make_plans(shade)["ucf101"][:12]:
        a, b = S.render(shade, plan), S.render(two, plan)
        assert np.array_equal(a.masks, b.masks) and np.array_equal(a.background, b.background)  # same actor, scene
        pixels = b.frames[b.masks].astype(float) / 255  # the actor's pixels over the clip
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in pixels[::7]])
        bright, dark = hsv[hsv[:, 2] > 0.7], hsv[hsv[:, 2] < 0.5]
        assert len(bright) and len(dark), "every two-tone actor is textured with a bright and a dark colour"
        gap = abs(np.median(bright[:, 0]) - np.median(dark[:, 0]))
        hue_gaps.append(min(gap, 1 - gap))
        value_ratios.append(np.median(dark[:, 2]) / np.median(bright[:, 2]))
    assert np.median(hue_gaps) > 0.1  # the second colour has its own hue ("shade" keeps one hue: gap 0)
    assert max(value_ratios) < 0.65   # and is darker: a luminance pattern grayscale keeps
    with pytest.raises(ConfigError, match="actor_palette"):
        GeneratorConfig.from_dict({"actor_palette": "rainbow"})
