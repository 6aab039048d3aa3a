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


def test_collect_writes_the_report_and_runs_no_candidate(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "ROOT", tmp_path)
    monkeypatch.setattr(S, "run_candidate", lambda *a: (_ for _ in ()).throw(AssertionError("ran a candidate")))
    study_file = tmp_path / "study.yaml"
    study_file.write_text("base: default\nseeds: [0]\ncandidates:\n  a: {why: first}\n")
    folder = tmp_path / "results" / "cal-a"
    folder.mkdir(parents=True)
    (folder / "calibration.json").write_text(json.dumps({"overall": "pass", "gates": []}))
    assert S.main([str(study_file), "--collect"]) == 0
    assert "| a | first |" in (tmp_path / S.REPORT / "study.md").read_text()
    assert json.loads((tmp_path / S.REPORT / "study.json").read_text())["a"]["overall"] == "pass"


def test_collect_with_a_candidate_is_an_error_naming_both(tmp_path, monkeypatch):
    import pytest
    from scenebias.errors import ConfigError

    monkeypatch.setattr(S, "ROOT", tmp_path)
    study_file = tmp_path / "study.yaml"
    study_file.write_text("base: default\nseeds: [0]\ncandidates:\n  a: {why: first}\n")
    with pytest.raises(ConfigError, match="--collect.*--candidate"):
        S.main([str(study_file), "--collect", "--candidate", "a"])
    assert not (tmp_path / S.REPORT).exists()  # nothing written
