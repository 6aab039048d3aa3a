"""The digest that shows a refactoring leaves a preset's outputs unchanged (benchmarks/outputs_digest.py)."""
import json

import torch

from benchmarks.outputs_digest import differences, digest, main


def _preset(root, value=0.5, wall=1.0, weight=1.0):
    ev = root / "results" / "p" / "eval" / "moco" / "seed0" / "ucf101"
    ev.mkdir(parents=True, exist_ok=True)
    (ev / "linear.json").write_text(json.dumps(
        {"results": {"biased": {"top1": value}}, "provenance": {"wall_time_s": wall, "git_commit": str(wall)}}))
    (root / "results" / "p" / "metrics.csv").write_text(f"run,value,wall_time_s\nmoco,{value},{wall}\n")
    model = root / "results" / "p" / "pretrain" / "moco" / "seed0"
    model.mkdir(parents=True, exist_ok=True)
    torch.save({"backbone": {"w": torch.full((2,), weight)}, "head": None, "meta": {"wall": wall}}, model / "model.pt")
    tables = root / "reports" / "p" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    (tables / "compute.csv").write_text(f"job,wall s\npretrain,{wall}\n")


def test_timings_and_provenance_do_not_count(tmp_path):
    _preset(tmp_path / "a", wall=1.0)
    _preset(tmp_path / "b", wall=7.5)
    a, b = digest(tmp_path / "a", "p"), digest(tmp_path / "b", "p")
    assert len(a) == 3  # eval JSON, metrics.csv, model; compute.csv is timings only
    assert differences(a, b) == []


def test_a_changed_result_or_weight_is_named(tmp_path):
    _preset(tmp_path / "a")
    _preset(tmp_path / "b", value=0.51)
    _preset(tmp_path / "c", weight=1.0 + 2**-20)
    a = digest(tmp_path / "a", "p")
    assert differences(a, digest(tmp_path / "b", "p")) == [
        "differs:     results/p/eval/moco/seed0/ucf101/linear.json", "differs:     results/p/metrics.csv"]
    assert differences(a, digest(tmp_path / "c", "p")) == ["differs:     results/p/pretrain/moco/seed0/model.pt"]


def test_cli_exit_status(tmp_path, capsys):
    _preset(tmp_path / "a")
    before = tmp_path / "before.json"
    assert main(["p", "--root", str(tmp_path / "a"), "--out", str(before)]) == 0
    assert main(["p", "--root", str(tmp_path / "a"), "--against", str(before)]) == 0
    _preset(tmp_path / "a", value=0.9)
    assert main(["p", "--root", str(tmp_path / "a"), "--against", str(before)]) == 1
    assert "linear.json" in capsys.readouterr().out
    assert main(["missing", "--root", str(tmp_path / "a")]) == 2
