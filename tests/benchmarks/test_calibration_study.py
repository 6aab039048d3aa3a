"""The calibration study's runner (benchmarks/calibration/study.py): the study table gathers every candidate run so
far, in the study's order (the study file's candidates are checked in tests/workflow/test_workflow.py)."""
import json

from benchmarks.calibration import study as S


def test_the_table_gathers_every_candidate_run_so_far_in_study_order(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "ROOT", tmp_path)
    study = {"candidates": {"b": {"why": "second"}, "a": {"why": "first"}, "never-run": {}}}
    for name, status in (("a", "pass"), ("b", "fail")):
        folder = tmp_path / "results" / f"cal-{name}"
        folder.mkdir(parents=True)
        (folder / "calibration.json").write_text(json.dumps({"overall": status, "gates": []}))
    found = S.collected(study)
    assert list(found) == ["b", "a"] and found["a"]["overall"] == "pass"
    table = S.study_table(found, study)
    assert table.index("| b | second |") < table.index("| a | first |") and "never-run" not in table
