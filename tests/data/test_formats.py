"""Split-file readers and writers, checked against the byte-exact official files."""
import collections
import json
import re
from pathlib import Path

import pytest

from scenebias.data import formats as F
from scenebias.data.formats import VideoRecord, read_split
from scenebias.errors import ConfigError, DataError, UnknownNameError


# ============================================================================================ UCF101
def _ucf(official_splits):
    return official_splits / "ucf101"


def test_ucf101_split1_counts_and_classes(official_splits):
    tr = read_split("ucf101", _ucf(official_splits), "train", 1, check_files=False)
    te = read_split("ucf101", _ucf(official_splits), "test", 1, check_files=False)
    assert len(tr.records) == 9537 and len(te.records) == 3783
    assert len(tr.class_names) == 101 and tr.class_names == te.class_names
    assert tr.class_names[:3] == ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]
    assert tr.class_names[-1] == "YoYo"
    # classInd order is case-insensitive alphabetical, not a byte sort
    assert F.ucf_class_order(tr.class_names) == tr.class_names
    assert sorted(tr.class_names) != tr.class_names
    names = tr.class_names
    assert names.index("Hammering") < names.index("HammerThrow")
    assert names.index("JumpingJack") < names.index("JumpRope")
    assert {r.label for r in tr.records} == set(range(101)) == {r.label for r in te.records}


def test_ucf101_other_splits_counts(official_splits):
    want = {2: (9586, 3734), 3: (9624, 3696)}
    for split, (n_tr, n_te) in want.items():
        assert len(read_split("ucf101", _ucf(official_splits), "train", split, check_files=False).records) == n_tr
        assert len(read_split("ucf101", _ucf(official_splits), "test", split, check_files=False).records) == n_te


def test_ucf101_trainlist_labels_equal_classind_index(official_splits):
    lst = _ucf(official_splits) / "ucfTrainTestlist"
    classind = {}
    for line in (lst / "classInd.txt").read_bytes().decode().split("\r\n")[:-1]:
        i, name = line.split(" ")
        classind[name] = int(i)
    raw = (lst / "trainlist01.txt").read_bytes().decode().split("\r\n")[:-1]
    recs = read_split("ucf101", _ucf(official_splits), "train", 1, video_dir=Path("V"), check_files=False).records
    assert len(raw) == len(recs)
    for line, rec in zip(raw, recs):
        rel, label = line.split(" ")
        assert int(label) == rec.label + 1 == classind[rel.split("/")[0]]
        assert rec.path == Path("V") / rel
        assert rec.video_id == Path(rel).stem
        assert rec.start_frame == 0 and rec.end_frame is None


def test_ucf101_split1_test_groups(official_splits):
    te = read_split("ucf101", _ucf(official_splits), "test", 1, check_files=False)
    tr = read_split("ucf101", _ucf(official_splits), "train", 1, check_files=False)
    group = lambda r: int(re.search(r"_g(\d\d)_c\d\d$", r.video_id).group(1))  # noqa: E731
    assert {group(r) for r in te.records} == set(range(1, 8))
    assert {group(r) for r in tr.records} == set(range(8, 26))
    # the HandstandPushups / v_HandStandPushups_ quirk is read by directory, not by file name
    hs = [r for r in tr.records if r.path.parent.name == "HandstandPushups"]
    assert hs and all(r.video_id.startswith("v_HandStandPushups_") for r in hs)
    assert {r.label for r in hs} == {tr.class_names.index("HandstandPushups")}


def test_ucf101_writers_byte_identical(official_splits, tmp_path):
    lst = _ucf(official_splits) / "ucfTrainTestlist"
    names = F.read_ucf101_classind(lst / "classInd.txt")
    F.write_ucf101_classind(tmp_path / "classInd.txt", F.ucf_class_order(reversed(names)))
    assert (tmp_path / "classInd.txt").read_bytes() == (lst / "classInd.txt").read_bytes()
    for split in (1, 2):
        tr = read_split("ucf101", _ucf(official_splits), "train", split, video_dir=Path("V"), check_files=False)
        te = read_split("ucf101", _ucf(official_splits), "test", split, video_dir=Path("V"), check_files=False)
        F.write_ucf101_trainlist(tmp_path / "tr.txt", [(r.path.relative_to("V").as_posix(), r.label)
                                                       for r in tr.records])
        F.write_ucf101_testlist(tmp_path / "te.txt", [r.path.relative_to("V").as_posix() for r in te.records])
        assert (tmp_path / "tr.txt").read_bytes() == (lst / f"trainlist{split:02d}.txt").read_bytes()
        assert (tmp_path / "te.txt").read_bytes() == (lst / f"testlist{split:02d}.txt").read_bytes()


# ============================================================================================ HMDB51
def _hmdb(official_splits):
    return official_splits / "hmdb51"


def test_hmdb51_split1_counts(official_splits):
    tr = read_split("hmdb51", _hmdb(official_splits), "train", 1, check_files=False)
    te = read_split("hmdb51", _hmdb(official_splits), "test", 1, check_files=False)
    assert len(tr.class_names) == 51 and tr.class_names == sorted(tr.class_names) == te.class_names
    assert tr.class_names[0] == "brush_hair" and tr.class_names[-1] == "wave"
    assert len(tr.records) == 3570 and len(te.records) == 1530
    assert set(collections.Counter(r.label for r in tr.records).values()) == {70}
    assert set(collections.Counter(r.label for r in te.records).values()) == {30}
    assert not {r.path for r in tr.records} & {r.path for r in te.records}
    # counts straight from the files: tag 1 / 2 / 0 over all classes
    tags = collections.Counter()
    for f in F.hmdb51_split_files(_hmdb(official_splits) / "testTrainMulti_7030_splits", 1).values():
        tags.update(t for _, _, t in F.read_hmdb51_file(f))
    assert tags == {1: 3570, 2: 1530, 0: 1666}
    wave = [r for r in te.records if r.label == tr.class_names.index("wave")]
    assert Path("videos/wave/20060723sfjffbartsinger_wave_f_cm_np1_ba_med_0.avi") in {
        r.path.relative_to(_hmdb(official_splits)) for r in wave}


def test_hmdb51_all_splits_70_30(official_splits):
    for split in (1, 2, 3):
        tr = read_split("hmdb51", _hmdb(official_splits), "train", split, check_files=False)
        te = read_split("hmdb51", _hmdb(official_splits), "test", split, check_files=False)
        assert (len(tr.records), len(te.records)) == (3570, 1530)


def test_hmdb51_writer_byte_identical(official_splits, tmp_path):
    files = F.hmdb51_split_files(_hmdb(official_splits) / "testTrainMulti_7030_splits", 1)
    per_class = {c: [(n, t) for _, n, t in F.read_hmdb51_file(p)] for c, p in files.items()}
    F.write_hmdb51_splits(tmp_path, per_class, split=1)
    for c, p in files.items():
        assert (tmp_path / p.name).read_bytes() == p.read_bytes(), c
    line = (tmp_path / "wave_test_split1.txt").read_bytes().split(b"\n")[0] + b"\n"
    assert re.fullmatch(rb"\S+\.avi [012] \n", line)


# ============================================================================================ Diving48
def test_diving48_counts_and_vocab(official_splits):
    root = official_splits / "diving48"
    tr = read_split("diving48", root, "train", check_files=False)
    te = read_split("diving48", root, "test", check_files=False)
    assert len(tr.class_names) == 48 and tr.class_names[0] == "Back_15som_05Twis_FREE"
    assert len(tr.records) == 15027 and len(te.records) == 1970
    used = {r.label for r in tr.records} | {r.label for r in te.records}
    assert used == set(range(48)) - {30}
    first = tr.records[0]
    assert first == VideoRecord(path=root / "rgb" / "-mmq0PT-u8k_00155.mp4", label=0,
                                video_id="-mmq0PT-u8k_00155", start_frame=0, end_frame=48)
    assert all(r.start_frame == 0 and r.end_frame >= 24 for r in tr.records + te.records)


def test_diving48_writers_byte_identical(official_splits, tmp_path):
    root = official_splits / "diving48"
    for name in ("Diving48_V2_train.json", "Diving48_V2_test.json"):
        F.write_diving48_entries(tmp_path / name, F.read_diving48_entries(root / name))
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes()
    F.write_diving48_vocab(tmp_path / "v.json", F.read_diving48_vocab(root / "Diving48_vocab.json"))
    assert (tmp_path / "v.json").read_bytes() == (root / "Diving48_vocab.json").read_bytes()


# ============================================================================================ round trips
def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_ucf101_roundtrip_with_files(tmp_path):
    classes = F.ucf_class_order(["Zig", "alpha", "Beta"])
    assert classes == ["alpha", "Beta", "Zig"]
    train = [("alpha/v_alpha_g02_c01.avi", 0), ("Zig/v_Zig_g02_c01.avi", 2)]
    test = ["Beta/v_Beta_g01_c01.avi"]
    lst = tmp_path / "ucfTrainTestlist"
    F.write_ucf101_classind(lst / "classInd.txt", classes)
    F.write_ucf101_trainlist(lst / "trainlist01.txt", train)
    F.write_ucf101_testlist(lst / "testlist01.txt", test)
    for rel, _ in train:
        _touch(tmp_path / "UCF101" / rel)
    _touch(tmp_path / "UCF101" / test[0])
    assert (lst / "trainlist01.txt").read_bytes() == b"alpha/v_alpha_g02_c01.avi 1\r\nZig/v_Zig_g02_c01.avi 3\r\n"
    tr = read_split("ucf101", tmp_path, "train")
    assert tr.records == [VideoRecord(tmp_path / "UCF101" / r, l, Path(r).stem) for r, l in train]
    te = read_split("ucf101", tmp_path, "test")
    assert te.records == [VideoRecord(tmp_path / "UCF101" / test[0], 1, "v_Beta_g01_c01")]


def test_hmdb51_and_diving48_roundtrip(tmp_path):
    per_class = {"b_cls": [("b_2.avi", 2), ("b_1.avi", 1), ("b_3.avi", 0)], "a_cls": [("a_1.avi", 1)]}
    F.write_hmdb51_splits(tmp_path / "testTrainMulti_7030_splits", per_class, 1)
    for c, entries in per_class.items():
        for n, _ in entries:
            _touch(tmp_path / "videos" / c / n)
    assert (tmp_path / "testTrainMulti_7030_splits" / "b_cls_test_split1.txt").read_bytes() == \
        b"b_1.avi 1 \nb_2.avi 2 \nb_3.avi 0 \n"
    tr = read_split("hmdb51", tmp_path, "train")
    assert tr.class_names == ["a_cls", "b_cls"]
    assert [(r.path.name, r.label) for r in tr.records] == [("a_1.avi", 0), ("b_1.avi", 1)]
    assert [(r.path.name, r.label) for r in read_split("hmdb51", tmp_path, "test").records] == [("b_2.avi", 1)]

    d = tmp_path / "d"
    F.write_diving48_vocab(d / F.DIVING48_VOCAB, [["rise", "fall"], ["fall", "rise"]])
    entries = [{"vid_name": "v1", "label": 1, "start_frame": 0, "end_frame": 15}]
    F.write_diving48_entries(d / F.DIVING48_FILES["train"], entries)
    F.write_diving48_entries(d / F.DIVING48_FILES["test"], [])
    _touch(d / "rgb" / "v1.mp4")
    tr = read_split("diving48", d, "train")
    assert tr.class_names == ["rise_fall", "fall_rise"]
    assert tr.records == [VideoRecord(d / "rgb" / "v1.mp4", 1, "v1", 0, 15)]
    assert not (d / F.DIVING48_FILES["train"]).read_bytes().endswith(b"\n")


# ============================================================================================ bad input
def _ucf_tree(tmp_path, trainlines: bytes, classes=("A", "B")):
    lst = tmp_path / "ucfTrainTestlist"
    F.write_ucf101_classind(lst / "classInd.txt", list(classes))
    (lst / "trainlist01.txt").write_bytes(trainlines)
    return lst / "trainlist01.txt"


def test_missing_video_names_split_file_and_line(tmp_path):
    f = _ucf_tree(tmp_path, b"A/v_A_g01_c01.avi 1\r\nB/v_B_g01_c01.avi 2\r\n")
    _touch(tmp_path / "UCF101" / "A" / "v_A_g01_c01.avi")
    with pytest.raises(DataError) as exc:
        read_split("ucf101", tmp_path, "train")
    msg = str(exc.value)
    assert f"{f}:2" in msg and str(tmp_path / "UCF101" / "B" / "v_B_g01_c01.avi") in msg
    assert len(read_split("ucf101", tmp_path, "train", check_files=False).records) == 2


def test_missing_video_hmdb_and_diving(tmp_path):
    F.write_hmdb51_splits(tmp_path / "testTrainMulti_7030_splits", {"c": [("x.avi", 1), ("y.avi", 1)]})
    _touch(tmp_path / "videos" / "c" / "x.avi")
    with pytest.raises(DataError, match=r"c_test_split1\.txt:2.*y\.avi"):
        read_split("hmdb51", tmp_path, "train")
    F.write_diving48_vocab(tmp_path / F.DIVING48_VOCAB, [["a", "b"]])
    F.write_diving48_entries(tmp_path / F.DIVING48_FILES["test"],
                             [{"vid_name": "gone", "label": 0, "start_frame": 0, "end_frame": 3}])
    with pytest.raises(DataError, match=r"Diving48_V2_test\.json: entry 0 \(gone\).*gone\.mp4"):
        read_split("diving48", tmp_path, "test")


@pytest.mark.parametrize("content, match", [
    (b"A/v_A_g01_c01.avi 2\r\n", r"trainlist01\.txt:1: label 2 disagrees"),
    (b"A/v_A_g01_c01.avi 1\r\nA/v_A_g01_c02.avi one\r\n", r"trainlist01\.txt:2: label 'one'"),
    (b"C/v_C_g01_c01.avi 1\r\n", r"trainlist01\.txt:1: class directory 'C'"),
    (b"A/v_A_g01_c01.avi\r\n", r"trainlist01\.txt:1: expected"),
    (b"A/v_A_g01_c01.avi 1\r\nA/v_A_g01_c01.avi 1\r\n", r"trainlist01\.txt:2: .*twice"),
])
def test_malformed_ucf_lines(tmp_path, content, match):
    _ucf_tree(tmp_path, content)
    with pytest.raises(DataError, match=match):
        read_split("ucf101", tmp_path, "train", check_files=False)


def test_malformed_classind_and_hmdb(tmp_path):
    lst = tmp_path / "ucfTrainTestlist"
    lst.mkdir()
    (lst / "classInd.txt").write_bytes(b"1 A\r\n3 B\r\n")
    with pytest.raises(DataError, match=r"classInd\.txt:2: class index 3"):
        read_split("ucf101", tmp_path, "test", check_files=False)
    d = tmp_path / "testTrainMulti_7030_splits"
    d.mkdir()
    (d / "c_test_split1.txt").write_bytes(b"x.avi 1 \nx2.avi 7 \n")
    with pytest.raises(DataError, match=r"c_test_split1\.txt:2"):
        read_split("hmdb51", tmp_path, "train", check_files=False)
    with pytest.raises(DataError, match=r"test_split2"):
        read_split("hmdb51", tmp_path, "train", split=2, check_files=False)


def test_malformed_diving(tmp_path):
    F.write_diving48_vocab(tmp_path / F.DIVING48_VOCAB, [["a", "b"]])
    (tmp_path / F.DIVING48_FILES["train"]).write_text(json.dumps(
        [{"vid_name": "v", "label": 3, "start_frame": 0, "end_frame": 3}]))
    with pytest.raises(DataError, match=r"entry 0 \(v\): label 3 is outside the vocab"):
        read_split("diving48", tmp_path, "train", check_files=False)
    (tmp_path / F.DIVING48_FILES["train"]).write_text("[{")
    with pytest.raises(DataError, match="Diving48_V2_train.json: not valid JSON"):
        read_split("diving48", tmp_path, "train", check_files=False)


def test_bad_names(tmp_path):
    with pytest.raises(UnknownNameError, match="kinetics"):
        read_split("kinetics", tmp_path, "train")
    with pytest.raises(ConfigError, match="subset"):
        read_split("ucf101", tmp_path, "val")
    with pytest.raises(DataError, match="split file not found"):
        read_split("ucf101", tmp_path, "train")
