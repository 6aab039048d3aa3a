"""The fine-tuning sets beside the primary (config data.evaluation_sets): their gates (scenebias.analysis.calibration
set_gates) on both sides of each threshold, the evaluations they need, which sets planning keeps, the scene-swapped
copy tested beside each set, and claims on a set that fails its gates reading "the data cannot decide"."""
import pandas as pd
import pytest
from scipy import stats

from scenebias.analysis import calibration as C
from scenebias.plan import load_config
from scenebias.report import table_pages
from scenebias import resolve

HMDB = {"gates": "scene", "swapped": "hmdb51_swapped", "unbiased": "hmdb51_unbiased"}
DIVING = {"gates": "order", "classes": 12}


def _rows(run, downstream, test_set, values, protocol="finetune"):
    return [{"run": run, "method": run, "role": "method", "seed": s, "protocol": protocol, "downstream": downstream,
             "test_set": test_set, "metric": "top1", "value": v} for s, v in enumerate(values)]


def _scene_frame(motion=(0.9, 0.85, 0.88), scene=((0.7, 0.65, 0.66), (0.1, 0.2, 0.15)), moco=(0.4, 0.45, 0.42),
                 oracle=(0.6, 0.58, 0.66)):
    rows = _rows("motion_learnability", "hmdb51_unbiased", "swapped", motion)
    rows += _rows("motion_learnability", "hmdb51", "swapped", (0.0, 0.0, 0.0))  # another downstream: never read
    rows += _rows("scene_shortcut", "hmdb51", "test", scene[0]) + _rows("scene_shortcut", "hmdb51", "swapped", scene[1])
    rows += _rows("moco", "hmdb51", "swapped", moco)
    rows += _rows("moco", "ucf101", "swapped", (0.9, 0.9, 0.9), "linear")  # the primary set's: not this set's
    if oracle is not None:
        rows += _rows("moco+oracle_mask", "hmdb51", "swapped", oracle)
    return pd.DataFrame(rows)


def _statuses(found):
    return {g["gate"]: g["status"] for g in found["gates"]}


def test_a_scene_set_that_meets_every_threshold_passes_each_gate():
    found = C.set_gates(_scene_frame(), "hmdb51", HMDB)
    assert _statuses(found) == {"a": "pass", "b": "pass", "c": "pass", "d": "pass"} and found["overall"] == "pass"
    assert found["gates"][0]["swapped"]["mean"] == pytest.approx((0.9 + 0.85 + 0.88) / 3)  # read on the unbiased copy


@pytest.mark.parametrize("frame, gate", [
    (dict(motion=(0.79, 0.79, 0.79)), "a"),                                  # (a) below the primary's 80%
    (dict(scene=((0.59, 0.59, 0.59), (0.1, 0.1, 0.1))), "b"),                # the scene not tempting enough
    (dict(scene=((0.9, 0.9, 0.9), (0.26, 0.26, 0.26))), "b"),                # the static row works on swapped clips
    (dict(motion=(0.8, 0.8, 0.8), moco=(0.51, 0.51, 0.51), oracle=(0.9, 0.92, 0.95)), "c"),  # MoCo < 30 pp below
    (dict(oracle=(0.49, 0.5, 0.55)), "d"),                                   # the oracle's effect under 10 pp
])
def test_each_scene_gate_fails_just_past_its_threshold(frame, gate):
    found = C.set_gates(_scene_frame(**frame), "hmdb51", HMDB)
    assert _statuses(found)[gate] == "fail" and found["overall"] == "fail"


def test_the_oracle_gate_is_the_paired_t_test_and_missing_without_its_runs():
    oracle, moco = (0.6, 0.52, 0.75), (0.4, 0.45, 0.42)
    d = next(g for g in C.set_gates(_scene_frame(oracle=oracle, moco=moco), "hmdb51", HMDB)["gates"]
             if g["gate"] == "d")
    assert d["p_value"] == pytest.approx(stats.ttest_rel(oracle, moco).pvalue)
    missing = C.set_gates(_scene_frame(oracle=None), "hmdb51", HMDB)
    assert _statuses(missing)["d"] == "missing" and missing["overall"] == "missing"


def test_a_set_without_its_generated_copies_has_no_gates_to_pass():
    found = C.set_gates(_scene_frame(), "hmdb51", {"gates": "scene"})
    assert set(_statuses(found).values()) == {"not available"} and found["overall"] == "not available"


def _order_frame(motion=(0.8, 0.78, 0.85), scene=(0.1, 0.12, 0.08), moco=(0.5, 0.55, 0.6)):
    return pd.DataFrame(_rows("motion_learnability", "diving48", "test", motion)
                        + _rows("scene_shortcut", "diving48", "test", scene) + _rows("moco", "diving48", "test", moco))


@pytest.mark.parametrize("frame, gate, expected", [
    ({}, None, "pass"),
    (dict(motion=(0.74, 0.74, 0.74)), "a", "fail"),     # the order not learned well above 50%
    (dict(motion=(0.9, 0.9, 0.64)), "a", "fail"),       # one seed below 65%
    (dict(scene=(0.19, 0.19, 0.19)), "b", "fail"),      # chance 1/12 + 10 pp = 18.3%
    (dict(scene=(0.18, 0.18, 0.18)), "b", "pass"),
    (dict(moco=(0.75, 0.72, 0.8)), "c", "fail"),        # the motion row barely beats MoCo
])
def test_order_gates(frame, gate, expected):
    found = C.set_gates(_order_frame(**frame), "diving48", DIVING)
    if gate is None:
        assert set(_statuses(found).values()) == {"pass"}
    else:
        assert _statuses(found)[gate] == expected


def test_the_gates_evaluations_are_fine_tunings_of_the_gate_runs():
    assert C.set_gate_evaluations("hmdb51", HMDB) == [
        ("motion_learnability", "hmdb51_unbiased", "finetune"), ("scene_shortcut", "hmdb51", "finetune"),
        ("moco", "hmdb51", "finetune"), ("moco+oracle_mask", "hmdb51", "finetune")]
    assert {r for r, _, _ in C.set_gate_evaluations("diving48", DIVING)} == {
        "motion_learnability", "scene_shortcut", "moco"}


def test_calibration_gates_report_each_set_beside_the_primary():
    frame = pd.concat([_scene_frame(), _order_frame()])
    gates = C.calibration_gates(frame, sets={"hmdb51": HMDB, "diving48": DIVING}, primary="ucf101")
    assert gates["overall"] == "missing"  # the primary's gate runs are absent from this frame
    assert {n: f["overall"] for n, f in gates["sets"].items()} == {"hmdb51": "pass", "diving48": "pass"}


def test_planning_keeps_the_sets_the_tables_read_and_their_generated_copies():
    cfg = load_config("default")
    assert cfg["data"]["evaluation_sets"] == {
        "hmdb51": {**HMDB, "static": "hmdb51_static"}, "actor_hmdb51": {"gates": "scene", "swapped": "actor_hmdb51_swapped",
                                         "unbiased": "actor_hmdb51_unbiased"}, "diving48": {"gates": "order"}}
    assert resolve.test_sets_for(cfg, "hmdb51") == {"test": "hmdb51", "swapped": "hmdb51_swapped"}
    assert resolve.test_sets_for(cfg, "hmdb51_unbiased") == {"test": "hmdb51_unbiased", "swapped": "hmdb51_swapped"}
    assert resolve.test_sets_for(cfg, "diving48") == {"test": "diving48"}
    # each scene-swapped set is contrasted with its own static twin, never another set's
    assert [resolve.static_twin_for(cfg, f) for f in ("ucf101", "hmdb51", "hmdb51_unbiased", "actor_hmdb51",
                                                     "diving48")] == ["ucf101_static", "hmdb51_static",
                                                                      "hmdb51_static", None, None]
    assert load_config("default", overrides={"tables": ["be_table2"]})["data"]["evaluation_sets"].keys() == {
        "diving48"}


def test_a_real_root_has_no_evaluation_set_gates(tmp_path):
    cfg = load_config("default", overrides={"data": {"real": {"hmdb51": {"root": str(tmp_path), "format": "hmdb51"}}}})
    assert "hmdb51" not in cfg["data"]["evaluation_sets"] and resolve.test_sets_for(cfg, "hmdb51") == {"test": "hmdb51"}


def _record(verdict="reproduced", downstreams=("hmdb51",), swapped="inconclusive"):
    return {"table": "t", "label": "T", "claims": [{"claim": "c", "verdict": verdict, "swapped_verdict": swapped,
                                                    "downstreams": list(downstreams), "detail": ""}]}


@pytest.mark.parametrize("overall, downstreams, expected", [
    ("fail", ["hmdb51"], table_pages.UNDECIDABLE), ("missing", ["hmdb51"], table_pages.UNDECIDABLE),
    ("pass", ["hmdb51"], "reproduced"), ("fail", ["diving48"], "reproduced")])
def test_a_claim_on_a_set_that_fails_its_gates_cannot_be_decided(overall, downstreams, expected):
    calibration = {"overall": "pass", "sets": {"hmdb51": {"overall": overall, "gates": [
        {"gate": "c", "status": overall}]}}}
    claim = table_pages.gate_claims([_record(downstreams=downstreams)], calibration, "ucf101")[0]["claims"][0]
    assert claim["verdict"] == expected
    if expected == table_pages.UNDECIDABLE:
        assert claim["method_verdict"] == "reproduced" and claim["swapped_method_verdict"] == "inconclusive"
        assert claim["swapped_verdict"] == table_pages.UNDECIDABLE and "hmdb51: (c)" in claim["detail"]
        assert table_pages.tally([{"claims": [claim]}])[table_pages.UNDECIDABLE] == 1


def test_the_primary_sets_gates_decide_its_claims_too_and_untestable_claims_stay_so():
    calibration = {"overall": "fail", "gates": [{"gate": "d", "status": "fail"}], "sets": {}}
    gated = table_pages.gate_claims([_record(downstreams=["ucf101"]), _record("not testable", ["ucf101"])],
                                    calibration, "ucf101")
    assert [r["claims"][0]["verdict"] for r in gated] == [table_pages.UNDECIDABLE, "not testable"]


def test_each_claim_names_the_sets_it_is_judged_on():
    """A claim's `downstreams` are its reproduced cells' sets: what gate_claims reads to call it undecidable."""
    from scenebias.tables.plan import plan_table
    from scenebias.tables.published import load_paper_tables
    from scenebias.tables.regenerate import claim_downstreams

    cfg, tables = load_config("default"), load_paper_tables()
    found = {tid: {c["id"]: claim_downstreams(c, plan_table(cfg, tables[tid])) for c in tables[tid]["claims"]}
             for tid in ("be_table2", "be_figure4", "be_figure5")}
    assert all(sets in ([], ["diving48"]) for sets in found["be_table2"].values())
    assert ["diving48"] in found["be_table2"].values()
    assert ["hmdb51"] in found["be_figure4"].values()  # the static-bias correlation: every reproduced cell's set
    assert any("actor_hmdb51" in sets for sets in found["be_figure5"].values())


def test_a_cell_reads_its_sets_own_test_split_not_the_swapped_copy_that_sorts_first():
    """Records are written with sorted keys: on a fine-tuning set "swapped" comes before "test"."""
    from scenebias.tables import regenerate as rg

    record = {"downstream": "hmdb51", "test_sets": {"swapped": "hmdb51_swapped", "test": "hmdb51"},
              "results": {"swapped": {"top1": 0.1, "per_class_acc": [0.1, 0.1], "correct": [0, 1]},
                          "test": {"top1": 0.6, "per_class_acc": [0.5, 0.7], "correct": [1, 1]}}}
    cell = type("Cell", (), {"metric": "top1", "table": "t", "row": "r", "column": "c"})()
    assert rg.own_test_set(record) == "test" and rg.cell_value(record, cell, "x") == pytest.approx(60.0)
    assert list(rg.per_class(record, "x")) == [0.5, 0.7]
    assert list(rg.per_video_correct(record, cell)["value"]) == [1, 1]
    primary = {"downstream": "ucf101", "test_sets": {"biased": "ucf101", "swapped": "ucf101_swapped"}}
    assert rg.own_test_set(primary) == "biased"
