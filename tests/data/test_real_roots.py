"""Real dataset roots from config (`data.real`), the `data.on_missing` policy and the per-root manifest.

Video trees are built in tmp against the official split files (shared/fixtures/official-splits): every
listed name is a symlink to one small file, since reading a split only checks that files exist (the
manifest hashes each inode once). Tests that hash real content use small trees of distinct random files.
"""
import copy
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from scenebias import resolve
from scenebias.config import data_dir
from scenebias.data import formats as F
from scenebias.data import manifest as M
from scenebias.data.manifest import RealRoot, build_manifest, combine_manifests, manifest_hash, real_roots
from scenebias.errors import ConfigError, DataError
from scenebias.io import read_json
from scenebias.plan import load_config, plan
from scenebias.provenance import provenance


# ============================================================================================ helpers
def _lines(path: Path, eol: str) -> list[str]:
    """A split file's lines, read here independently of the readers under test."""
    return path.read_bytes().decode().split(eol)[:-1]


def _link_all(names, video_dir: Path, target: Path) -> None:
    for rel in names:
        dst = video_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(target)


def _ucf_lists(official_splits) -> Path:
    return official_splits / "ucf101" / "ucfTrainTestlist"


def _hmdb_lists(official_splits) -> Path:
    return official_splits / "hmdb51" / "testTrainMulti_7030_splits"


@pytest.fixture(scope="module")
def base_cfg():
    return load_config("smoke")


def _cfg(base, tmp_path, real, on_missing=None, manifest=None, substitutes=None):
    cfg = copy.deepcopy(base)
    cfg["paths"]["data"] = str(tmp_path / "generated" / "{preset}")
    cfg["data"]["real"] = real
    if substitutes:
        cfg["data"]["substitutes"] = substitutes
    if on_missing is not None:
        cfg["data"]["on_missing"] = on_missing
    cfg["data"]["manifest"] = manifest or {"dir": str(tmp_path / "manifests" / "{preset}")}
    return plan(cfg, "test")


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory, official_splits):
    """<root>/UCF101/<Class>/<video>.avi for the 13,320 videos every UCF101 split lists; split files stay
    in the fixture folder (read through split_dir)."""
    root = tmp_path_factory.mktemp("ucf_real")
    target = root / "one.avi"
    target.write_bytes(b"\x00not-decoded\x00" * 8)
    lists = _ucf_lists(official_splits)
    names = [ln.split(" ")[0] for f in ("trainlist01.txt", "testlist01.txt") for ln in _lines(lists / f, "\r\n")]
    _link_all(names, root / "UCF101", target)
    return root


@pytest.fixture(scope="module")
def hmdb_root(tmp_path_factory, official_splits):
    """<root>/videos/<class>/<video>.avi for all 6,766 videos and the official split folder (default layout)."""
    root = tmp_path_factory.mktemp("hmdb_real")
    target = root / "one.avi"
    target.write_bytes(b"x" * 100)
    lists = _hmdb_lists(official_splits)
    (root / "testTrainMulti_7030_splits").symlink_to(lists, target_is_directory=True)
    names = [f"{p.name[:-len('_test_split1.txt')]}/{ln.split(' ')[0]}"
             for p in sorted(lists.glob("*_test_split1.txt")) for ln in _lines(p, "\n")]
    assert len(names) == 6766
    _link_all(names, root / "videos", target)
    return root


def _ucf_spec(ucf_root, official_splits, **extra):
    return {"root": str(ucf_root), "format": "ucf101", "split_dir": str(_ucf_lists(official_splits)), **extra}


# ============================================================================================ split()
def test_ucf101_real_root_split_counts_via_config(base_cfg, ucf_root, official_splits, tmp_path):
    cfg = _cfg(base_cfg, tmp_path, {"ucf101": _ucf_spec(ucf_root, official_splits)})
    assert cfg["data"]["real"]["ucf101"]["split"] == 1 and cfg["data"]["on_missing"] == "error"
    tr, te = resolve.split(cfg, "ucf101", "train"), resolve.split(cfg, "ucf101", "test")
    assert (len(tr), len(te)) == (9537, 3783)
    assert tr.class_names == te.class_names and len(tr.class_names) == 101
    assert all(r.path.parent.parent == ucf_root / "UCF101" for r in tr.records + te.records)
    assert tr.skipped == [] and te.skipped == [] and tr.skip_summary("ucf101 train") is None
    assert tr.split_files == [_ucf_lists(official_splits) / "classInd.txt",
                              _ucf_lists(official_splits) / "trainlist01.txt"]
    # `split` reaches the reader: split 2 lists the same 13,320 videos, divided 9586 / 3734
    cfg2 = _cfg(base_cfg, tmp_path, {"ucf101": _ucf_spec(ucf_root, official_splits, split=2)})
    assert (len(resolve.split(cfg2, "ucf101", "train")), len(resolve.split(cfg2, "ucf101", "test"))) == (9586, 3734)
    # a flavour not under data.real is still read from the generated set (here: not generated)
    with pytest.raises(DataError, match="scenebias generate") as exc:
        resolve.split(cfg, "ucf101_swapped", "test")
    assert str(data_dir(cfg) / "ucf101_swapped") in str(exc.value)


def test_hmdb51_real_root_split1_counts_default_layout(base_cfg, hmdb_root, tmp_path):
    cfg = _cfg(base_cfg, tmp_path, {"hmdb51": {"root": str(hmdb_root), "format": "hmdb51"}})
    tr, te = resolve.split(cfg, "hmdb51", "train"), resolve.split(cfg, "hmdb51", "test")
    assert (len(tr), len(te)) == (3570, 1530) and len(tr.class_names) == 51
    # the 1,666 tag-0 ("unused") videos are on disk but in neither subset
    assert not {r.path for r in tr.records} & {r.path for r in te.records}
    assert len(tr.split_files) == 51


def test_skip_drops_exactly_the_missing_videos_and_lists_their_lines(base_cfg, ucf_root, official_splits,
                                                                     tmp_path):
    lists = _ucf_lists(official_splits)
    train_lines = _lines(lists / "trainlist01.txt", "\r\n")
    test_lines = _lines(lists / "testlist01.txt", "\r\n")
    victims = {"train": [0, 4000, 9536], "test": [100]}
    gone = {s: [ucf_root / "UCF101" / (train_lines if s == "train" else test_lines)[i].split(" ")[0] for i in idx]
            for s, idx in victims.items()}
    for paths in gone.values():
        for p in paths:
            p.unlink()
    try:
        spec = {"ucf101": _ucf_spec(ucf_root, official_splits)}
        cfg = _cfg(base_cfg, tmp_path, spec, on_missing="skip")
        tr = resolve.split(cfg, "ucf101", "train")
        assert len(tr) == 9534 and tr.listed == 9537
        kept = [ucf_root / "UCF101" / ln.split(" ")[0] for i, ln in enumerate(train_lines) if i not in victims["train"]]
        assert [r.path for r in tr.records] == kept
        assert [(s.path, s.split_file, s.line, s.entry) for s in tr.skipped] == [
            (gone["train"][k], lists / "trainlist01.txt", i + 1, train_lines[i])
            for k, i in enumerate(victims["train"])]
        assert tr.skipped[0].entry == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"  # the line as written
        assert tr.skip_summary("ucf101 train", "m.json") == (
            "ucf101 train: skipped 3 of 9537 listed videos (not found, on_missing: skip; list in m.json)")
        te = resolve.split(cfg, "ucf101", "test")
        assert len(te) == 3782 and [(s.line, s.entry) for s in te.skipped] == [(101, test_lines[100])]

        # the report says what was skipped, from the root's manifest
        from scenebias.data.manifest import build_manifest, real_roots
        from scenebias.report.build import datasets_section

        build_manifest(real_roots(cfg)["ucf101"], resolve.manifest_path(cfg, "ucf101"), checksum="size")
        section = datasets_section(cfg)
        assert "4 video(s) skipped or undecodable" in section
        assert all(p.name in section for paths in gone.values() for p in paths)

        # error (the default) raises naming the split file, the first line, the count and more examples
        cfg_err = _cfg(base_cfg, tmp_path, spec)
        with pytest.raises(DataError) as exc:
            resolve.split(cfg_err, "ucf101", "train")
        msg = str(exc.value)
        assert msg.startswith(f"data.real.ucf101: {lists / 'trainlist01.txt'}:1: video {gone['train'][0]} not found")
        assert "3 of 9537 listed train videos not found" in msg and f"trainlist01.txt:4001: {gone['train'][1]}" in msg
        assert "crcv.ucf.edu/data/UCF101.php" in msg  # says where the official layout comes from
    finally:
        for paths in gone.values():
            for p in paths:
                p.symlink_to(ucf_root / "one.avi")


def test_skip_lists_lines_for_hmdb_diving_and_kinetics(hmdb_root, official_splits, tmp_path):
    # HMDB51: the entry keeps the official trailing space
    victim = hmdb_root / "videos" / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi"
    victim.unlink()
    try:
        hm = RealRoot("hmdb51", "hmdb51", hmdb_root).read("train", on_missing="skip")
    finally:
        victim.symlink_to(hmdb_root / "one.avi")
    assert len(hm) == 3569 and [(s.split_file.name, s.line, s.entry) for s in hm.skipped] == [
        ("brush_hair_test_split1.txt", 1, "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 ")]

    # Diving48 V2 test JSON: no line numbers, the entry index and entry instead
    d = official_splits / "diving48"
    entries = json.loads((d / F.DIVING48_FILES["test"]).read_text())
    target = tmp_path / "one.mp4"
    target.write_bytes(b"v")
    _link_all([f"{e['vid_name']}.mp4" for i, e in enumerate(entries) if i != 7], tmp_path / "rgb", target)
    dv = RealRoot("diving48", "diving48", tmp_path, split_dir=d).read("test", on_missing="skip")
    assert len(dv) == 1969 and len(dv.skipped) == 1
    s = dv.skipped[0]
    assert s.line is None and s.path == tmp_path / "rgb" / f"{entries[7]['vid_name']}.mp4"
    assert s.entry.startswith("entry 7: ") and json.loads(s.entry[len("entry 7: "):]) == entries[7]
    assert s.where == f"{d / F.DIVING48_FILES['test']}: entry 7"

    # Kinetics-400 (2020 validate.csv excerpt): the CSV line
    k = tmp_path / "k400"
    (k / "annotations").mkdir(parents=True)
    shutil.copy(official_splits / "kinetics400" / "validate_2020release_head201.csv",
                k / "annotations" / "validate.csv")
    rows = F.read_kinetics_csv(k / "annotations" / "validate.csv")
    _link_all([f"{r.label}/{r.clip_name}.mp4" for r in rows[1:]], k / "val", target)
    kin = RealRoot("k400", "kinetics400", k).read("test", on_missing="skip")
    raw = _lines(k / "annotations" / "validate.csv", "\n")
    assert len(kin) == 199 and [(s.line, s.entry) for s in kin.skipped] == [(2, raw[1])]
    with pytest.raises(DataError, match=r"1 of 200 listed videos not found"):
        RealRoot("k400", "kinetics400", k).read("test")


def test_missing_root_or_wrong_layout_names_path_and_official_layout(base_cfg, tmp_path, official_splits):
    nope = tmp_path / "nope"
    cfg = _cfg(base_cfg, tmp_path, {"ucf101": {"root": str(nope), "format": "ucf101"}})
    with pytest.raises(DataError) as exc:
        resolve.split(cfg, "ucf101", "train")
    msg = str(exc.value)
    assert msg.startswith(f"data.real.ucf101: {nope}: ucf101 dataset root folder not found. UCF101 layout")
    assert "<root>/UCF101/<Class>/v_<Class>_gGG_cCC.avi" in msg and "UCF101TrainTestSplits-RecognitionTask.zip" in msg

    # UCF101.rar unpacks to UCF-101/: the error names the folder looked for and points at the one found
    root = tmp_path / "ucf"
    (root / "UCF-101").mkdir(parents=True)
    (root / "ucfTrainTestlist").symlink_to(_ucf_lists(official_splits), target_is_directory=True)
    with pytest.raises(DataError, match=rf"{root / 'UCF101'}: ucf101 video folder not found \({root / 'UCF-101'} "
                                        r"exists: set video_dir to it"):
        RealRoot("ucf101", "ucf101", root).read("train")

    # HMDB51 split folder missing; then videos unpacked flat (no class folders): no listed video matches
    hm = tmp_path / "hmdb"
    (hm / "videos").mkdir(parents=True)
    with pytest.raises(DataError, match=rf"{hm / 'testTrainMulti_7030_splits'}: hmdb51 split-file folder not "
                                        r"found\. HMDB51 layout .*test_train_splits\.rar"):
        RealRoot("hmdb51", "hmdb51", hm).read("train")
    (hm / "testTrainMulti_7030_splits").symlink_to(_hmdb_lists(official_splits), target_is_directory=True)
    (hm / "videos" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi").write_bytes(b"v")
    with pytest.raises(DataError, match=r"none of the 3570 listed train videos was found .*the split files do not "
                                        r"match the videos\. HMDB51 layout .*hmdb51_org\.rar"):
        RealRoot("hmdb51", "hmdb51", hm).read("train", on_missing="skip")
    with pytest.raises(DataError, match=r"3570 of 3570 listed train videos not found"):
        RealRoot("hmdb51", "hmdb51", hm).read("train")


def test_schema_rejects_unknown_keys_and_bad_values(base_cfg, tmp_path):
    good = {"root": "/data/ucf101", "format": "ucf101"}
    for real, on_missing, match in [
        ({"ucf101": {**good, "vidoe_dir": "x"}}, None, r"data/real/ucf101: .*'vidoe_dir' was unexpected"),
        ({"ucf101": {**good, "format": "ucf-101"}}, None, r"data/real/ucf101/format: 'ucf-101' is not one of"),
        ({"ucf101": {"format": "ucf101"}}, None, r"data/real/ucf101: 'root' is a required property"),
        ({"ucf101": {**good, "split": 4}}, None, r"data/real/ucf101/split"),
        ({"ucf101": good}, "ignore", r"data/on_missing: 'ignore' is not one of \['error', 'skip'\]"),
    ]:
        with pytest.raises(ConfigError, match=match):
            _cfg(base_cfg, tmp_path, real, on_missing=on_missing)
    with pytest.raises(ConfigError, match=r"data/manifest/checksum: 'md5'"):
        _cfg(base_cfg, tmp_path, {}, manifest={"checksum": "md5"})
    cfg = _cfg(base_cfg, tmp_path, {"ucf101": good})
    assert cfg["data"]["real"]["ucf101"] == {**good, "split": 1, "video_dir": None, "split_dir": None,
                                             "label_map": None}
    assert cfg["data"]["manifest"]["checksum"] == "sha256" and cfg["data"]["manifest"]["decode_probe"] is False
    # the same checks hold for a config that skipped the schema
    with pytest.raises(ConfigError, match=r"data\.real\.x: unknown key 'vidoe_dir'"):
        RealRoot.from_config("x", {**good, "vidoe_dir": "y"})
    with pytest.raises(ConfigError, match=r"data\.real\.x\.label_map: only the kinetics400"):
        RealRoot.from_config("x", {**good, "label_map": "m.txt"})


# ============================================================================================ manifest
TRAIN = [("A/v_A_g08_c01.avi", 0), ("A/v_A_g08_c02.avi", 0), ("B/v_B_g08_c01.avi", 1)]
TEST = ["A/v_A_g01_c01.avi", "B/v_B_g01_c01.avi"]


def _small_ucf(root: Path, seed: int = 0) -> dict[tuple[str, str], bytes]:
    """A UCF101-layout root of 5 distinct random files; returns {(subset, rel): content}."""
    lst = root / "ucfTrainTestlist"
    F.write_ucf101_classind(lst / "classInd.txt", ["A", "B"])
    F.write_ucf101_trainlist(lst / "trainlist01.txt", TRAIN)
    F.write_ucf101_testlist(lst / "testlist01.txt", TEST)
    rng = np.random.default_rng(seed)
    content = {}
    for subset, rel in [("train", r) for r, _ in TRAIN] + [("test", r) for r in TEST]:
        data = rng.integers(0, 256, int(rng.integers(1000, 5000)), dtype=np.uint8).tobytes()
        (root / "UCF101" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "UCF101" / rel).write_bytes(data)
        content[(subset, rel)] = data
    return content


def test_manifest_sizes_sha256_missing_and_hash(tmp_path):
    root = tmp_path / "ucf"
    content = _small_ucf(root)
    (root / "UCF101" / "B" / "v_B_g08_c01.avi").unlink()
    del content[("train", "B/v_B_g08_c01.avi")]
    out = tmp_path / "m" / "ucf.manifest.json"
    real = RealRoot("ucf101", "ucf101", root)
    m = build_manifest(real, out)
    assert {(e["subset"], e["path"]): (e["bytes"], e["sha256"]) for e in m["files"]} == {
        k: (len(v), hashlib.sha256(v).hexdigest()) for k, v in content.items()}
    assert m["missing"] == [{"subset": "train", "path": "B/v_B_g08_c01.avi", "split_file": "trainlist01.txt",
                             "line": 3, "entry": "B/v_B_g08_c01.avi 2"}]
    assert m["counts"] == {"files": 4, "bytes": sum(map(len, content.values())), "missing": 1, "undecodable": None}
    assert m["subsets"]["train"] == {"listed": 3, "files": 2, "missing": 1,
                                     "bytes": sum(len(v) for (s, _), v in content.items() if s == "train")}
    lst = root / "ucfTrainTestlist"
    assert m["split_files"] == [{"name": n, "bytes": (lst / n).stat().st_size,
                                 "sha256": hashlib.sha256((lst / n).read_bytes()).hexdigest()}
                                for n in ("classInd.txt", "testlist01.txt", "trainlist01.txt")]
    assert read_json(out) == m and manifest_hash(out) == m["hash"] == M.content_hash(m)

    # the hash identifies the data, not its location
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)
    assert build_manifest(RealRoot("ucf101", "ucf101", moved), tmp_path / "m2.json")["hash"] == m["hash"]

    # one changed byte of one video changes the hash (sha256); size-only mode sees only size changes
    size_before = build_manifest(real, tmp_path / "s1.json", checksum="size")
    assert "sha256" not in size_before["files"][0] and size_before["hash"] != m["hash"]
    victim = root / "UCF101" / "A" / "v_A_g01_c01.avi"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    m_after = build_manifest(real, out)
    assert m_after["hash"] != m["hash"]
    changed = [a["path"] for a, b in zip(m["files"], m_after["files"]) if a != b]
    assert changed == ["A/v_A_g01_c01.avi"]
    assert build_manifest(real, tmp_path / "s2.json", checksum="size")["hash"] == size_before["hash"]
    victim.write_bytes(bytes(data[:-1]))
    assert build_manifest(real, tmp_path / "s3.json", checksum="size")["hash"] != size_before["hash"]

    # an edited manifest no longer matches its hash
    edited = read_json(out)
    edited["files"][0]["bytes"] += 1
    out.write_text(json.dumps(edited))
    with pytest.raises(DataError, match="does not match its hash"):
        manifest_hash(out)


def test_manifest_failure_leaves_no_partial_output(tmp_path, monkeypatch):
    root = tmp_path / "ucf"
    _small_ucf(root)
    out = tmp_path / "m" / "ucf.manifest.json"
    out.parent.mkdir()
    out.write_text("old manifest")
    real_sha = M.file_sha256
    calls = []

    def unreadable_third(path):  # as if the third video could not be read (root ignores chmod 000)
        calls.append(Path(path))
        if len(calls) == 3:
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha(path)

    monkeypatch.setattr(M, "file_sha256", unreadable_third)
    with pytest.raises(DataError, match=r"cannot read video .*no manifest written") as exc:
        build_manifest(RealRoot("ucf101", "ucf101", root), out)
    assert str(calls[2]) in str(exc.value)
    assert out.read_text() == "old manifest" and sorted(os.listdir(out.parent)) == [out.name]
    fresh = tmp_path / "fresh" / "ucf.manifest.json"
    calls.clear()
    with pytest.raises(DataError):
        build_manifest(RealRoot("ucf101", "ucf101", root), fresh)
    assert not fresh.exists()


def test_manifest_decode_probe_lists_undecodable(tmp_path):
    from scenebias.data.video import write_video

    root = tmp_path / "ucf"
    _small_ucf(root)  # random bytes: none of them decodes
    good = [("train", "A/v_A_g08_c01.avi"), ("test", "B/v_B_g01_c01.avi")]
    for _, rel in good:
        write_video(root / "UCF101" / rel, np.full((2, 16, 16, 3), 100, np.uint8))
    (root / "UCF101" / "A" / "v_A_g01_c01.avi").write_bytes(b"")
    m = build_manifest(RealRoot("ucf101", "ucf101", root), tmp_path / "m.json", decode_probe=True)
    bad = {(u["subset"], u["path"]): u["error"] for u in m["undecodable"]}
    assert set(bad) == {("train", "A/v_A_g08_c02.avi"), ("train", "B/v_B_g08_c01.avi"), ("test", "A/v_A_g01_c01.avi")}
    assert bad[("test", "A/v_A_g01_c01.avi")] == "empty file (0 bytes)"
    assert m["counts"]["undecodable"] == 3 and m["decode_probe"] is True
    off = build_manifest(RealRoot("ucf101", "ucf101", root), tmp_path / "m0.json")
    assert off["undecodable"] is None and off["counts"]["undecodable"] is None and off["hash"] != m["hash"]


def test_full_ucf_manifest_paths_and_provenance(base_cfg, ucf_root, hmdb_root, official_splits, tmp_path):
    plain = _cfg(base_cfg, tmp_path, {})
    assert resolve.manifest_path(plain) == data_dir(plain) / "manifest.json" == resolve.manifest_path(plain, "ucf101")
    cfg = _cfg(base_cfg, tmp_path, {"ucf101": _ucf_spec(ucf_root, official_splits)})
    mdir = tmp_path / "manifests" / "smoke"
    assert resolve.manifest_path(cfg, "ucf101") == mdir / "ucf101.manifest.json"
    assert resolve.manifest_path(cfg, "ucf101_swapped") == data_dir(cfg) / "manifest.json"
    assert resolve.manifest_path(cfg) == mdir / "datasets.json"
    # no generated copy is tested beside the real set, no table dataset is substituted: the root is all it reads
    assert resolve.dataset_manifests(cfg) == {"ucf101": mdir / "ucf101.manifest.json"}

    m = build_manifest(real_roots(cfg)["ucf101"], resolve.manifest_path(cfg, "ucf101"))
    assert m["counts"]["files"] == 13320 and m["counts"]["missing"] == 0
    assert {s: (v["listed"], v["files"]) for s, v in m["subsets"].items()} == {"train": (9537, 9537),
                                                                             "test": (3783, 3783)}
    assert {e["sha256"] for e in m["files"]} == {hashlib.sha256((ucf_root / "one.avi").read_bytes()).hexdigest()}

    # a real HMDB51 root beside the generated primary sets, the tables' UCF101 pretraining on the generated set
    # by choice (with real roots nothing else stands in for UCF101): both kinds feed the combined manifest
    mixed = _cfg(base_cfg, tmp_path, {"hmdb51": {"root": str(hmdb_root), "format": "hmdb51"}},
                 substitutes={"ucf101": "ucf101"})
    used = resolve.dataset_manifests(mixed)  # pretraining, downstream, test sets, static twin, tables' sets
    assert {"ucf101", "ucf101_swapped", "ucf101_static", "hmdb51"} <= set(used)
    assert used == {f: mdir / "hmdb51.manifest.json" if f == "hmdb51" else data_dir(mixed) / "manifest.json"
                    for f in used}
    h = build_manifest(real_roots(mixed)["hmdb51"], resolve.manifest_path(mixed, "hmdb51"))
    data_dir(mixed).mkdir(parents=True)
    (data_dir(mixed) / "manifest.json").write_text(json.dumps({"hash": "g" * 64}))  # stands in for `generate`
    combined = combine_manifests(used, resolve.manifest_path(mixed))
    assert combined["datasets"] == {f: {"hash": h["hash"] if f == "hmdb51" else "g" * 64} for f in used}
    prov = provenance(cfg={}, seed=0, device="cpu", wall_time_s=0.0, manifest=resolve.manifest_path(mixed))
    assert prov["dataset_manifest_hash"] == combined["hash"] == manifest_hash(resolve.manifest_path(mixed))
    # another real manifest (size-only) gives another combined hash
    build_manifest(real_roots(mixed)["hmdb51"], resolve.manifest_path(mixed, "hmdb51"), checksum="size")
    assert combine_manifests(used, tmp_path / "c2.json")["hash"] != combined["hash"]


# ========================================================================================== workflow
def _dry_run_with_roots(preset, ucf_root, hmdb_root, official_splits, tmp_path):
    """`snakemake -n` of a config preset with data.real pointing at the fixture-built UCF101 and HMDB51 trees."""
    import subprocess
    import sys

    import yaml

    extra = tmp_path / "roots.yaml"
    extra.write_text(yaml.safe_dump({
        "paths": {"data": str(tmp_path / "data/{preset}"), "results": str(tmp_path / "results/{preset}"),
                  "reports": str(tmp_path / "reports/{preset}")},
        "data": {"real": {"ucf101": _ucf_spec(ucf_root, official_splits), "hmdb51": {"root": str(hmdb_root),
                                                                                    "format": "hmdb51"}},
                 "manifest": {"dir": str(tmp_path / "manifests/{preset}")}}}))
    repo = Path(__file__).resolve().parents[2]
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(exe), "-n", "--nolock", "--configfile", f"config/presets/{preset}.yaml", str(extra)],
                          cwd=repo, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


def test_workflow_with_real_roots_builds_manifests_before_pretraining(ucf_root, hmdb_root, official_splits,
                                                                     tmp_path):
    """`snakemake -n` with data.real pointing at fixture-built trees: a manifest job per real root and the
    combined manifest feed pretraining; nothing is generated, and nothing needs ground truth."""
    out = _dry_run_with_roots("smoke", ucf_root, hmdb_root, official_splits, tmp_path)
    assert "rule real_manifest" in out and "flavour=ucf101" in out
    assert "flavour=hmdb51" in out  # the smoke preset's paper tables fine-tune on HMDB51
    assert "rule dataset_manifest" in out
    assert "rule generate" not in out and "rule mask_quality" not in out and "moco+oracle_mask" not in out
    assert f"{tmp_path}/manifests/smoke/datasets.json" in out


def test_paper_preset_with_real_roots_lists_every_paper_table(ucf_root, hmdb_root, official_splits, tmp_path):
    """Issue 5's check: `snakemake -n --configfile config/presets/paper.yaml` with roots pointing at
    fixture-built trees plans every paper table, each row on the backbone its paper printed."""
    from scenebias.tables.published import table_ids

    out = _dry_run_with_roots("paper", ucf_root, hmdb_root, official_splits, tmp_path)
    for table in table_ids():
        assert f"table={table}" in out, table
    assert "backbone~i3d" in out and "backbone~c3d" in out  # BE's rows; FAME's R(2+1)D-18 is the preset's
    assert "flavour=ucf101" in out and "flavour=hmdb51" in out  # both real roots get a manifest job


def test_manifest_command_without_flavour_builds_every_root_then_combines(tmp_path, capsys):
    """`scenebias manifest --config my-roots.yaml` as the README and docs/real-data.md show it: every root's manifest, then the combined
    one once no generated flavour is missing; `--combine` (the workflow's rule) only combines."""
    import yaml

    from scenebias.cli import main

    _small_ucf(tmp_path / "ucf")
    roots = tmp_path / "my-roots.yaml"
    manifests = tmp_path / "manifests"
    roots.write_text(yaml.safe_dump({
        "data": {"real": {"ucf101": {"root": str(tmp_path / "ucf"), "format": "ucf101"}},
                 "manifest": {"dir": str(manifests)}},
        "paths": {"data": str(tmp_path / "generated")}}))
    # no generated copy is tested beside a real set and no table substitutes: the ucf101 root is all it reads
    assert main(["manifest", "--preset", "paper", "--config", str(roots), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert (manifests / "ucf101.manifest.json").is_file() and (manifests / "datasets.json").is_file(), out
    combined = read_json(manifests / "datasets.json")
    assert set(combined["datasets"]) == {"ucf101"}
    (manifests / "datasets.json").unlink()
    before = (manifests / "ucf101.manifest.json").stat().st_mtime_ns
    assert main(["manifest", "--preset", "paper", "--config", str(roots), "--combine"]) == 0
    assert (manifests / "ucf101.manifest.json").stat().st_mtime_ns == before  # not rebuilt
    assert (manifests / "datasets.json").is_file()
