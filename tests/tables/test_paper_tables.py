"""The papers' tables as data: both files validate, every number is the one printed on its row and column
of the paper's text, deltas and stated gaps agree with the numbers, claims hold on the published numbers,
and every method and option is one the suite registers."""
from __future__ import annotations

import copy
import re
import shutil

import pytest
import yaml
from conftest import skip_or_fail

from scenebias.errors import ConfigError
from scenebias.tables.published import (PAPER_FILES, PAPER_TABLES_DIR, SCHEMA, check_methods, claim_holds,
                                    load_paper_tables, paper_text, rows_by_id, stated_delta_errors, table_ids,
                                    text_sha256, value_sources)
from scenebias.provenance import REPO_ROOT

IDS = ([f"fame_table{i}" for i in range(1, 7)] + ["fame_figure4"]
       + [f"be_table{i}" for i in range(1, 5)] + ["be_figure4", "be_figure5", "be_figures6_7"])
DECIMAL = re.compile(r"\d+\.\d+")
PRINTED_PRETRAIN = {"kinetics400": ("Kinetics-400", "K400(28d)"), "kinetics600": ("Kinetics-600",),
                    "ucf101": ("UCF101", "UCF101(1d)"), "imagenet": ("ImageNet",), "none": ("X",)}


@pytest.fixture(scope="module")
def tables():
    return load_paper_tables()


def _lines(table):
    text = paper_text(table["paper"])
    if text is None:
        skip_or_fail(f"paper text {table['paper']['file']} not found under shared/papers/")
    return text.split("\n")


def test_the_ids_are_exactly_the_papers_tables_and_figures(tables):
    assert table_ids() == sorted(IDS) and len(IDS) == 14
    for tid, table in tables.items():
        assert table["paper"]["id"] == tid.split("_")[0]
        assert table["kind"] == ("figure" if "figure" in tid else "table")
        number = re.findall(r"\d+", tid.split("_", 1)[1])
        assert re.findall(r"\d+", table["label"]) == number, tid  # fame_table3 is "Table 3"


def test_paper_texts_are_the_ones_the_line_numbers_refer_to(tables):
    for paper in {t["paper"]["id"]: t["paper"] for t in tables.values()}.values():
        text = paper_text(paper)
        if text is None:
            skip_or_fail(f"paper text {paper['file']} not found")
        assert text_sha256(text) == paper["text_sha256"], paper["file"]


@pytest.mark.parametrize("tid", IDS)
def test_every_number_is_printed_on_its_row_in_column_order(tables, tid):
    """Tables: the decimals printed on the row's line, after its label, are exactly the row's values (and
    printed deltas) in column order; a row with garbled cells must show its readable numbers in that order and
    each garbled cell's text. Figures: each stated number occurs in the sentence on `line`. A transcription
    typo, a swapped column or a wrong line fails here."""
    table = tables[tid]
    lines = _lines(table)
    for row in table["rows"]:
        where = f"{tid}.{row['id']} (line {row['line']})"
        line = lines[row["line"] - 1]
        if row["row"] is not None:
            assert row["row"] in line, where
            line = line.replace(row["row"], "", 1)
        if table["kind"] == "table":
            assert table["caption_line"] - 40 <= row["line"] < table["caption_line"], where
        for column, text in row.get("garbled", {}).items():
            assert text in line, f"{where}: garbled {column} cell {text!r}"
        expected = []
        for column in (c["id"] for c in table["columns"]):
            value = row["values"][column]
            if value is not None and column not in row.get("garbled", {}) and column not in row.get("derived", {}):
                expected.append(str(value))
            if column in row.get("deltas", {}):
                expected.append(str(abs(row["deltas"][column])))
        if table["kind"] == "figure":
            assert all(number in line for number in expected), where
        elif row.get("garbled"):
            found = iter(DECIMAL.findall(line))
            assert all(number in found for number in expected), f"{where}: {expected} not in order in {line!r}"
        else:
            assert DECIMAL.findall(line) == expected, where


@pytest.mark.parametrize("tid", ["fame_table1", "be_table1"])
def test_setting_columns_are_the_printed_ones(tables, tid):
    """Frames, resolution and depth cells of the comparison tables are on the row's line as whole numbers
    (unless the cell was garbled and `inferred` says how it was read)."""
    table = tables[tid]
    lines = _lines(table)
    for row in table["rows"]:
        line = lines[row["line"] - 1].replace(row["row"], "", 1)
        integers = re.findall(r"(?<![\d.])\d+(?![\d.])", line)
        for field in ("frames", "resolution", "depth"):
            if row.get(field) is not None and field not in row.get("inferred", {}):
                assert str(row[field]) in integers, f"{tid}.{row['id']}.{field}"
        if "pretrain" not in row.get("inferred", {}):
            assert any(f"{sep}{label}" in line for label in PRINTED_PRETRAIN[row["pretrain"]] for sep in "\t "), \
                f"{tid}.{row['id']}.pretrain"
    protocols = {r["id"]: r["protocol"] for r in tables["fame_table1"]["rows"]}
    assert list(protocols.values()).count("linear") == 7  # the ✓ (Freeze) rows, lines 115-121


def test_a_printed_dash_or_blank_is_null_and_unreadable_cells_are_noted(tables):
    missing = {(t, r["id"], c) for t, table in tables.items() for r in table["rows"]
               for c, v in r["values"].items() if v is None}
    assert missing == {("fame_table2", "mlrep", "r_at_50"), ("be_table1", "vgan", "hmdb51"),
                       ("be_table1", "aot_tcam", "hmdb51"), ("be_table3", "memdpc_r3d", "r_at_50")}
    derived = {(t, r["id"], c) for t, table in tables.items() for r in table["rows"] for c in r.get("derived", {})}
    assert derived == {("be_table1", "rotnet_c3d", "hmdb51"), ("be_figure5", "moco", "hmdb51"),
                       ("be_figure5", "moco", "actor_hmdb51")}


def test_printed_deltas_agree_with_the_values_except_where_recorded(tables):
    checked = 0
    for tid, table in tables.items():
        rows = rows_by_id(table)
        for row in table["rows"]:
            reference = rows.get(row.get("delta_reference"), {}).get("values", {})
            for column, delta in row.get("deltas", {}).items():
                gap = round(row["values"][column] - reference[column], 6)
                agrees = abs(gap - delta) <= 0.05 + 1e-9
                recorded = column in row.get("inconsistent", {})
                assert agrees != recorded, f"{tid}.{row['id']}.{column}: {gap} vs {delta}"
                checked += 1
    assert checked == 32
    bad = rows_by_id(tables["be_table1"])["moco_be_c3d_ucf101"]
    assert list(bad["inconsistent"]) == ["hmdb51"]  # 42.3 - 27.2 = 15.1, printed 14.1


def test_numbers_that_two_tables_share_are_equal(tables):
    def values(tid, rid):
        return rows_by_id(tables[tid])[rid]["values"]

    assert values("fame_table6", "fame_k400") == values("fame_table1", "moco_fame_i3d_k400") == \
        {"ucf101": 88.6, "hmdb51": 61.1}
    for tid in ("fame_table3", "fame_table4", "fame_table6"):  # the same β = 1 baseline
        first = tables[tid]["rows"][0]
        assert first["method"] == "moco" and first["values"] == {"ucf101": 75.8, "hmdb51": 45.5}
    for beta in ("07", "05", "03"):  # Table 5's single-branch columns repeat Table 3
        t5, t3 = values("fame_table5", f"beta_{beta}"), values("fame_table3", f"beta_{beta}")
        assert (t5["ucf101_single"], t5["hmdb51_single"]) == (t3["ucf101"], t3["hmdb51"])
    assert values("fame_table4", "inter_video") == values("fame_table3", "beta_05")
    assert values("be_table4", "intra_video_frame") == values("be_table1", "moco_be_i3d_ucf101")
    assert values("fame_table1", "moco_be_i3d_k400") == values("be_table1", "moco_be_i3d_k400")
    assert values("be_table1", "rotnet_c3d")["hmdb51"] == values("fame_table1", "rotnet_r3d18_k400")["hmdb51"]
    assert values("be_figure4", "correlation") == {"pearson_r": -0.48, "p_value": 0.0004}
    fig5 = rows_by_id(tables["be_figure5"])
    assert fig5["supervised_k400"]["values"]["hmdb51"] == values("be_table1", "k400_supervised_i3d")["hmdb51"]


def test_every_claim_holds_on_the_published_numbers(tables):
    directions = set()
    for tid, table in tables.items():
        for claim in table["claims"]:
            directions.add(claim["direction"])
            expected = None if claim["direction"] == "qualitative" else True
            assert claim_holds(claim, table) is expected, f"{tid}.{claim['id']}"
            assert stated_delta_errors(claim, table) == [], f"{tid}.{claim['id']}"
    assert directions == {"greater", "less", "approx_equal", "negative_correlation", "qualitative"}


def test_claims_are_decided_by_the_numbers_given(tables):
    """claim_holds reads reproduced numbers too: flipping one cell flips the verdict, a missing one abstains."""
    t4 = tables["be_table4"]
    claim = next(c for c in t4["claims"] if c["id"] == "mixup_cutmix_below_baseline")
    values = {r["id"]: dict(r["values"]) for r in t4["rows"]}
    assert claim_holds(claim, t4, values) is True
    values["video_cutmix"]["hmdb51"] = 42.2
    assert claim_holds(claim, t4, values) is False
    values["video_cutmix"]["hmdb51"] = None
    assert claim_holds(claim, t4, values) is None
    t6 = tables["fame_table6"]
    margin = next(c for c in t6["claims"] if c["id"] == "fame_beats_grid_k400")
    values = {r["id"]: dict(r["values"]) for r in t6["rows"]}
    values["fame_k400"]["ucf101"] = 88.0  # ahead by 1.5 only: not "over 2%"
    assert margin["margin"] == 2.0 and claim_holds(margin, t6, values) is False
    fig4 = tables["be_figure4"]
    corr = fig4["claims"][0]
    assert claim_holds(corr, fig4, {"correlation": {"pearson_r": 0.1}}) is False


def test_the_brief_s_example_claims_are_recorded(tables):
    def claim(tid, cid):
        return next(c for c in tables[tid]["claims"] if c["id"] == cid)

    assert claim("fame_table1", "fame_beats_moco_finetune")["compare"] == ["moco_fame_r2plus1d_k400_finetune",
                                                                          "moco_r2plus1d_k400_finetune"]
    assert claim("be_table4", "intra_beats_inter")["stated_delta"] == {"ucf101": 5.0, "hmdb51": 6.4}
    assert claim("be_table4", "mixup_cutmix_below_baseline")["direction"] == "less"
    assert claim("fame_table4", "inter_beats_intra")["compare"] == ["inter_video", "intra_video"]
    assert claim("fame_table3", "beta_below_one_beats_baseline")["relation"] == "beta<1 > beta=1"
    assert claim("be_figure4", "negative_static_bias_correlation")["direction"] == "negative_correlation"


def test_methods_and_options_are_registered(tables):
    from scenebias.plugins import load_methods

    check_methods(tables)  # raises on an unknown method or option
    names = set(load_methods().names())
    used = {r["method"] for t in tables.values() for r in t["rows"] if r["method"] is not None}
    assert used <= names
    assert {"moco", "moco+be", "moco+fame", "moco+mixup", "moco+cutmix", "dsm", "rotnet", "clip_order",
            "cubic_puzzle", "supervised", "random_init"} <= used
    broken = copy.deepcopy(tables)
    rows_by_id(broken["be_table4"])["video_mixup"]["options"]["distractor"] = "cutmix"  # the preset pins it
    with pytest.raises(ConfigError, match=r"be\.yaml: tables\.be_table4\.rows\.video_mixup.*fixed"):
        check_methods(broken)
    broken = copy.deepcopy(tables)
    rows_by_id(broken["fame_table3"])["beta_07"]["options"]["betta"] = 0.7
    with pytest.raises(ConfigError, match=r"fame\.yaml: tables\.fame_table3\.rows\.beta_07.*betta"):
        check_methods(broken)


def test_external_rows_are_other_papers_methods_kept_with_their_numbers(tables):
    for table in tables.values():
        for row in table["rows"]:
            assert (row["method"] is None) == row["external"]
            if row["external"]:
                assert any(v is not None for v in row["values"].values())
    external = {r["row"] for t in tables.values() for r in t["rows"] if r["external"]}
    assert {"SpeedNet (Benaim et al. 2020)", "CoCLR[19] [NeuIPS, 2020]", "ASCNet (Huang et al. 2021a)"} <= external


def test_generated_flavours_exist_and_kinetics_says_it_has_none_yet(tables):
    flavours = set(yaml.safe_load((REPO_ROOT / "benchmarks" / "datasets.yaml").read_text()))
    for tid, table in tables.items():
        grid = table["grid"]
        for dataset, flavour in grid["generated_flavours"].items():
            assert flavour is None or flavour in flavours, (tid, dataset)
        if "kinetics400" in grid["generated_flavours"]:
            assert grid["generated_flavours"]["kinetics400"] == "ucf101"
            assert "no Kinetics-like" in grid["flavour_notes"]["kinetics400"]
    assert tables["be_figure5"]["grid"]["generated_flavours"]["actor_hmdb51"] == "actor_hmdb51"
    assert tables["be_table2"]["grid"]["generated_flavours"]["diving48"] == "diving48"


def test_every_value_has_a_recoverable_source(tables):
    count = 0
    for table in tables.values():
        for source in value_sources(table):
            assert source["paper"] in {"FAME", "BE"} and source["table"] == table["label"]
            assert source["line"] >= 1 and source["column"]
            assert source["row"] is not None or source["row_id"] in {"moco_i3d_ucf101", "moco_i3d_k400"}
            count += 1
    assert count == sum(len(r["values"]) for t in tables.values() for r in t["rows"])


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["tables"]["fame_table3"]["rows"][1]["values"].update(ucf101="80.3"),
     r"fame\.yaml: tables\.fame_table3\.rows\.1\.values\.ucf101: '80\.3' is not of type"),
    (lambda d: d["tables"]["fame_table4"]["claims"][0]["compare"].__setitem__(1, "nothing"),
     r"fame\.yaml: tables\.fame_table4\.claims\.intra_beats_none: row 'nothing' does not exist"),
    (lambda d: d["tables"]["fame_table2"]["rows"][1].pop("cell_notes"),
     r"fame\.yaml: tables\.fame_table2\.rows\.mlrep\.cell_notes\.r_at_50: a null or derived value needs a note"),
    (lambda d: d["tables"]["fame_table1"]["rows"][0].update(method="moco"),
     r"fame\.yaml: tables\.fame_table1\.rows\.cbt_s3d_k600_linear: external must be true exactly when"),
    (lambda d: d["tables"]["fame_table5"]["rows"][0]["values"].pop("hmdb51_both"),
     r"fame\.yaml: tables\.fame_table5\.rows\.beta_07\.values: columns"),
])
def test_errors_name_the_file_and_the_key(tmp_path, edit, message):
    for name in (*PAPER_FILES, SCHEMA.name):
        shutil.copy(PAPER_TABLES_DIR / name, tmp_path / name)
    data = yaml.safe_load((tmp_path / "fame.yaml").read_text())
    edit(data)
    (tmp_path / "fame.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    with pytest.raises(ConfigError, match=message):
        load_paper_tables(tmp_path)
