"""Kinetics-400 reader, checked against the byte-exact official CSV excerpts and label map.

Fixtures (shared/fixtures/official-splits/kinetics400, see SOURCES.md): the first 200 rows of the 2017 release's
kinetics-400_val.csv (is_cc column, quoted labels, sorted by label) and of the 2020 release's validate.csv
(no is_cc, unquoted labels, sorted by youtube_id), and deepmind/kinetics-i3d's label_map.txt (400 labels).
"""
import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from scenebias.data import formats as F
from scenebias.data.formats import VideoRecord, read_split
from scenebias.data.video import read_video, write_video
from scenebias.errors import ConfigError, DataError

CSV_2017 = "kinetics-400_val_2017release_head201.csv"
CSV_2020 = "validate_2020release_head201.csv"


def _k(official_splits) -> Path:
    return official_splits / "kinetics400"


def _raw_rows(path: Path) -> list[list[str]]:
    """The fixture's data rows as the csv module reads them (independent of the reader under test)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


@pytest.fixture(scope="module")
def tiny_mp4(tmp_path_factory) -> Path:
    """One real 2-frame 16x16 H.264 file; every listed clip is a symlink to it (the reader never decodes)."""
    path = tmp_path_factory.mktemp("kinetics_video") / "tiny.mp4"
    return write_video(path, np.full((2, 16, 16, 3), 128, np.uint8))


def _place(dst: Path, src: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)


def test_label_map_is_400_unique_byte_sorted_labels(official_splits):
    names = F.read_kinetics_label_map(_k(official_splits) / "label_map.txt")
    assert len(names) == len(set(names)) == 400
    assert names == sorted(names)  # so the sorted-labels fallback gives the same indices on the full data
    assert names[0] == "abseiling" and names[-1] == "zumba"
    assert "passing American football (in game)" in names and "massaging person's head" in names


@pytest.mark.parametrize("name, header, split_value, n_labels", [
    (CSV_2017, "label,youtube_id,time_start,time_end,split,is_cc", "val", 5),
    (CSV_2020, "label,youtube_id,time_start,time_end,split", "validate", 159),
])
def test_both_releases_parse_byte_exact(official_splits, name, header, split_value, n_labels):
    path = _k(official_splits) / name
    assert path.read_bytes().split(b"\n")[0].decode() == header
    rows = F.read_kinetics_csv(path, "test")
    raw = _raw_rows(path)
    assert len(rows) == len(raw) == 200
    for i, (row, fields) in enumerate(zip(rows, raw)):
        assert row.lineno == i + 2  # header is line 1, no multi-line fields
        assert [row.label, row.youtube_id, str(row.time_start), str(row.time_end), split_value] == fields[:5]
        assert row.time_end - row.time_start == 10  # Kinetics clips are 10 s windows
    label_map = set(F.read_kinetics_label_map(_k(official_splits) / "label_map.txt"))
    labels = {r.label for r in rows}
    assert len(labels) == n_labels and labels <= label_map
    with pytest.raises(DataError, match=rf"{name}:2: split '{split_value}' does not belong in the train"):
        F.read_kinetics_csv(path, "train")


def test_2017_quoted_labels_and_2020_first_row(official_splits):
    rows17 = F.read_kinetics_csv(_k(official_splits) / CSV_2017)
    assert b'"air drumming",--nQbRBEz2s,104,114,val,0\n' in (_k(official_splits) / CSV_2017).read_bytes()
    quoted = next(r for r in rows17 if r.youtube_id == "--nQbRBEz2s")
    assert quoted.label == "air drumming" and quoted.clip_name == "--nQbRBEz2s_000104_000114"
    first = F.read_kinetics_csv(_k(official_splits) / CSV_2020)[0]
    assert first == F.KineticsRow(2, "javelin throw", "--07WQ2iBlw", 1, 11)
    assert first.clip_name == "--07WQ2iBlw_000001_000011"


def _copy_csv(official_splits, name: str, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_k(official_splits) / name, dst)
    assert dst.read_bytes() == (_k(official_splits) / name).read_bytes()
    return dst


def test_read_split_class_folders_default_layout(official_splits, tmp_path, tiny_mp4):
    """2020 CSV as root/annotations/validate.csv, videos root/val/<label folder>/<clip>.mp4 (CVDF layout)."""
    _copy_csv(official_splits, CSV_2020, tmp_path / "annotations" / "validate.csv")
    raw = _raw_rows(tmp_path / "annotations" / "validate.csv")
    labels = sorted({f[0] for f in raw})
    # half the labels keep their spaces, the other half use '_' (both layouts occur in the wild)
    folder = {lab: lab if i % 2 else lab.replace(" ", "_") for i, lab in enumerate(labels)}
    assert any(" " in f for f in folder.values()) and any("_" in f and " " in lab for lab, f in folder.items())
    expected = []
    for label, yid, start, end, _ in raw:
        path = tmp_path / "val" / folder[label] / f"{yid}_{int(start):06d}_{int(end):06d}.mp4"
        _place(path, tiny_mp4)
        expected.append((path, label))
    label_map = _k(official_splits) / "label_map.txt"
    names = F.read_kinetics_label_map(label_map)
    split = read_split("kinetics400", tmp_path, "test", label_map=label_map)
    assert split.class_names == names and len(split.records) == 200
    for rec, (path, label), fields in zip(split.records, expected, raw):
        assert rec == VideoRecord(path=path, label=names.index(label), video_id=path.stem)
        assert rec.video_id == f"{fields[1]}_{int(fields[2]):06d}_{int(fields[3]):06d}"
    assert read_video(split.records[0].path).shape == (2, 16, 16, 3)
    # without a label map: the sorted labels of the CSV
    alone = read_split("kinetics400", tmp_path, "test")
    assert alone.class_names == labels
    assert [alone.class_names[r.label] for r in alone.records] == [f[0] for f in raw]
    # without file checks nothing but the CSV is read; paths assume <label>/<clip>.mp4
    nocheck = read_split("kinetics400", tmp_path / "nowhere", "test", split_dir=tmp_path / "annotations",
                         check_files=False)
    assert nocheck.records[0].path == tmp_path / "nowhere" / "val" / "javelin throw" / "--07WQ2iBlw_000001_000011.mp4"


def test_read_split_flat_2017_with_overrides_and_containers(official_splits, tmp_path, tiny_mp4):
    """2017 CSV under its crawler name, flat video folder, some clips as .mkv/.webm."""
    ann = _copy_csv(official_splits, CSV_2017, tmp_path / "k400" / "kinetics-400_val.csv")
    raw = _raw_rows(ann)
    exts = [".mp4", ".mkv", ".webm"]
    expected = []
    for i, (label, yid, start, end, _, _) in enumerate(raw):
        path = tmp_path / "clips" / f"{yid}_{int(start):06d}_{int(end):06d}{exts[i % 3]}"
        _place(path, tiny_mp4)
        expected.append(path)
    # a second container of the same clip: .mp4 wins
    _place(expected[1].with_suffix(".mp4"), tiny_mp4)
    label_map = _k(official_splits) / "label_map.txt"
    names = F.read_kinetics_label_map(label_map)
    split = read_split("kinetics400", tmp_path / "unused", "test", split=1, video_dir=tmp_path / "clips",
                       split_dir=tmp_path / "k400", label_map=label_map)
    assert len(split.records) == 200
    expected[1] = expected[1].with_suffix(".mp4")
    assert [r.path for r in split.records] == expected
    assert [names[r.label] for r in split.records] == [f[0] for f in raw]
    assert split.records[0] == VideoRecord(tmp_path / "clips" / "0wR5jVB-WPk_000417_000427.mp4",
                                           names.index("abseiling"), "0wR5jVB-WPk_000417_000427")


# ============================================================================================ bad input
HEADER = "label,youtube_id,time_start,time_end,split\n"


def _tree(tmp_path: Path, body: str, header: str = HEADER, name: str = "validate.csv") -> Path:
    (tmp_path / "annotations").mkdir(exist_ok=True)
    path = tmp_path / "annotations" / name
    path.write_text(header + body, encoding="utf-8", newline="")
    return path


def test_missing_videos_counted_with_line_and_expected_path(tmp_path, tiny_mp4):
    f = _tree(tmp_path, "air drumming,aaaaaaaaaaa,1,11,validate\nair drumming,bbbbbbbbbbb,2,12,validate\n"
                        "zumba,ccccccccccc,3,13,validate\n")
    _place(tmp_path / "val" / "air drumming" / "aaaaaaaaaaa_000001_000011.mp4", tiny_mp4)
    with pytest.raises(DataError) as exc:
        read_split("kinetics400", tmp_path, "test")
    msg = str(exc.value)
    assert f"{f}: 2 of 3 listed videos not found under {tmp_path / 'val'}" in msg
    assert f"line 3: {tmp_path / 'val' / 'air drumming' / 'bbbbbbbbbbb_000002_000012.mp4'}" in msg
    assert "class folder 'air_drumming'" in msg and str(tmp_path / "val" / "ccccccccccc_000003_000013.mp4") in msg
    assert "line 4" in msg and "cvdfoundation" in msg


def test_video_in_another_labels_folder_is_a_mismatch(tmp_path, tiny_mp4):
    _tree(tmp_path, "zumba,aaaaaaaaaaa,1,11,validate\n")
    _place(tmp_path / "val" / "yoga" / "aaaaaaaaaaa_000001_000011.mp4", tiny_mp4)
    with pytest.raises(DataError, match=r"1 of 1 listed videos not found.*val/yoga holds aaaaaaaaaaa_000001_000011 "
                                        r"but line 2 labels it 'zumba': the CSV does not match the videos"):
        read_split("kinetics400", tmp_path, "test")


@pytest.mark.parametrize("body, match", [
    ("zumba,aaaaaaaaaaa,1,11\n", r"validate\.csv:2: expected 5 columns .*got 4"),
    ("zumba,aaaaaaaaaaa,1,11,validate\nzumba,bbbbbbbbbbb,1.5,11,validate\n",
     r"validate\.csv:3: time_start '1\.5' is not a non-negative integer"),
    ("zumba,aaaaaaaaaaa,1,x,validate\n", r"validate\.csv:2: time_end 'x'"),
    ("zumba,aaaaaaaaaaa,11,1,validate\n", r"validate\.csv:2: time_end 1 is not after time_start 11"),
    ("zumba,aa/aa,1,11,validate\n", r"validate\.csv:2: youtube_id 'aa/aa'"),
    ("zumba,aaaaaaaaaaa,1,11,train\n", r"validate\.csv:2: split 'train' does not belong in the test"),
    ("zumba,aaaaaaaaaaa,1,11,validate\nyoga,aaaaaaaaaaa,1,11,validate\n",
     r"validate\.csv:3: clip aaaaaaaaaaa_000001_000011 listed twice \(first on line 2\)"),
])
def test_malformed_rows_name_file_line_and_value(tmp_path, body, match):
    _tree(tmp_path, body)
    with pytest.raises(DataError, match=match):
        read_split("kinetics400", tmp_path, "test", check_files=False)


def test_bad_header_and_is_cc(tmp_path):
    _tree(tmp_path, "zumba,aaaaaaaaaaa,1,11\n", header="label,youtube_id,time_start,time_end\n")
    with pytest.raises(DataError, match=r"validate\.csv:1: header 'label,youtube_id,time_start,time_end' is not "
                                        r"a Kinetics-400 annotation header; expected 'label,.*,split,is_cc'"):
        read_split("kinetics400", tmp_path, "test", check_files=False)
    _tree(tmp_path, "zumba,aaaaaaaaaaa,1,11,val,2\n", header=HEADER.replace("split", "split,is_cc"))
    with pytest.raises(DataError, match=r"validate\.csv:2: is_cc '2'"):
        read_split("kinetics400", tmp_path, "test", check_files=False)


def test_label_not_in_label_map(official_splits, tmp_path):
    f = _tree(tmp_path, "zumba,aaaaaaaaaaa,1,11,validate\nmoonwalking on mars,bbbbbbbbbbb,1,11,validate\n")
    label_map = _k(official_splits) / "label_map.txt"
    with pytest.raises(DataError) as exc:
        read_split("kinetics400", tmp_path, "test", check_files=False, label_map=label_map)
    assert f"{f}:3: label 'moonwalking on mars' is not in the label map {label_map} (400 labels)" in str(exc.value)
    (tmp_path / "map.txt").write_text("zumba\nyoga\nzumba\n")
    with pytest.raises(DataError, match=r"map\.txt:3: label 'zumba' listed twice"):
        read_split("kinetics400", tmp_path, "test", check_files=False, label_map=tmp_path / "map.txt")


def test_missing_root_csv_and_video_folder(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope'}: Kinetics-400 root folder not found. ")
                       + r".*cvdfoundation.*<root>/annotations/\{train,val\}\.csv.*kinetics400\.tar\.gz"):
        read_split("kinetics400", tmp_path / "nope", "train")
    with pytest.raises(DataError, match=re.escape("no train annotation CSV (train.csv / kinetics-400_train.csv) in "
                                                  f"{tmp_path / 'annotations'} or {tmp_path}. ")):
        read_split("kinetics400", tmp_path, "train")
    with pytest.raises(DataError, match=r"annotation folder \(split_dir\) not found"):
        read_split("kinetics400", tmp_path, "train", split_dir=tmp_path / "ann")
    f = _tree(tmp_path, "zumba,aaaaaaaaaaa,1,11,train\n", name="train.csv")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'train'}: Kinetics-400 video folder not found "
                                                  f"(videos of {f})")):
        read_split("kinetics400", tmp_path, "train")
    # the CSVs may also sit directly in root (CVDF's k400_downloader.sh puts them there)
    (tmp_path / "annotations" / "train.csv").rename(tmp_path / "train.csv")
    assert read_split("kinetics400", tmp_path, "train", check_files=False).class_names == ["zumba"]


def test_ambiguous_csv_split_number_and_label_map_elsewhere(tmp_path):
    _tree(tmp_path, "", name="validate.csv")
    _tree(tmp_path, "", name="val.csv")
    with pytest.raises(DataError, match=r"validate\.csv and val\.csv both exist"):
        read_split("kinetics400", tmp_path, "test", check_files=False)
    with pytest.raises(ConfigError, match=r"split: 2 is not one of \[1\]"):
        read_split("kinetics400", tmp_path, "test", split=2)
    with pytest.raises(ConfigError, match="only the kinetics400 format takes a label map"):
        read_split("ucf101", tmp_path, "test", label_map=tmp_path / "label_map.txt")
