"""The path users take: their own datasets as `data.real` roots over the paper preset, the whole workflow run.

Generated videos and split files — no annotations, as a real dataset has none — are copied into three folders in
the official UCF101, HMDB51 and Diving48 layouts and declared as real roots over config/presets/paper.yaml,
shrunk to CPU minutes by tests/fixtures/paper_on_cpu.yaml (sizes and schedules only: every protocol and
evaluation option of the paper preset stays). The run must end with the paper tables and a report that says what
real data cannot give, with nothing generated.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# what a real copy of each dataset holds: videos and the official split files
LAYOUT = {"ucf101": ["UCF101", "ucfTrainTestlist"],
          "hmdb51": ["videos", "testTrainMulti_7030_splits"],
          "diving48": ["rgb", "Diving48_V2_train.json", "Diving48_V2_test.json", "Diving48_vocab.json"]}
TABLES = ["fame_table2", "be_table3", "fame_table3", "be_table2", "be_figure4", "fame_figure4"]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def real_roots_from_generated(generated: Path, out: Path) -> dict[str, dict[str, str]]:
    """Copy each flavour's videos and split files (not its annotations) into `out/<flavour>`; the data.real
    entries that declare them."""
    real = {}
    for flavour, parts in LAYOUT.items():
        for part in parts:
            src, dst = generated / flavour / part, out / flavour / part
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
        real[flavour] = {"root": str(out / flavour), "format": flavour}
    return real


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real_roots")
    gen = subprocess.run([_bin("scenebias"), "generate", "--preset", "smoke", "--out", str(tmp / "generated"),
                          "--quiet"], env=_env(), capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    real = real_roots_from_generated(tmp / "generated", tmp / "roots")
    roots = tmp / "my-roots.yaml"
    roots.write_text(yaml.safe_dump({
        "data": {"real": real, "manifest": {"dir": str(tmp / "manifests")}},
        "paths": {"data": str(tmp / "never-generated" / "{preset}"), "results": str(tmp / "results" / "{preset}"),
                  "reports": str(tmp / "reports" / "{preset}"), "frame_cache": str(tmp / "cache" / "{preset}")}}))
    proc = subprocess.run([_bin("snakemake"), "--cores", "2", "--nolock", "--keep-going", "--configfile",
                           "config/presets/paper.yaml", "tests/fixtures/paper_on_cpu.yaml", str(roots)],
                          cwd=REPO, env=_env(), capture_output=True, text=True)
    return tmp, proc


def _ok(real_run) -> Path:
    tmp, proc = real_run
    assert proc.returncode == 0, (proc.stdout[-6000:] + proc.stderr[-6000:])
    return tmp


def test_the_roots_hold_no_ground_truth(real_run):
    tmp, _ = real_run
    assert not list((tmp / "roots").rglob("annotations"))
    assert (tmp / "roots" / "ucf101" / "ucfTrainTestlist" / "trainlist01.txt").is_file()


def test_the_workflow_runs_end_to_end_and_generates_nothing(real_run):
    tmp = _ok(real_run)
    assert not (tmp / "never-generated").exists()
    for flavour in LAYOUT:
        assert (tmp / "manifests" / f"{flavour}.manifest.json").is_file()
        assert (tmp / "cache" / "paper" / flavour / "index.json").is_file()


def test_every_protocol_of_the_paper_preset_ran_on_the_real_roots(real_run):
    tmp = _ok(real_run)
    metrics = pd.read_csv(tmp / "results" / "paper" / "metrics.csv")
    assert {"linear", "finetune", "retrieval", "classifier"} <= set(metrics["protocol"])
    assert {"ucf101", "hmdb51", "diving48"} <= set(metrics["downstream"])
    assert set(metrics["test_set"].dropna()) <= {"biased", "test"}  # no generated copy beside a real set
    retrieval = metrics[metrics["protocol"] == "retrieval"]["metric"]
    assert retrieval.str.startswith("clip_").any() and retrieval.str.startswith("plain/").any(), set(retrieval)
    assert not metrics["run"].isin(["moco+oracle_mask", "motion_learnability", "scene_shortcut"]).any()
    used = json.loads((tmp / "reports" / "paper" / "config.json").read_text())["evaluate"]  # what the jobs ran with
    assert used["test_clips"] == 10 and used["clip_average"] == "by_backbone" and used["linear"]["views"] == "per_epoch"
    assert used["finetune"]["colour"]["p_jitter"] == 0.8 and used["retrieval"]["clip_level_pooling"] == "max"


def test_the_paper_tables_are_filled_and_say_where_the_data_came_from(real_run):
    tmp = _ok(real_run)
    tables = tmp / "reports" / "paper" / "tables"
    for table in TABLES:
        assert (tables / f"{table}.md").is_file(), table
    caption = json.loads((tables / "fame_table2.json").read_text())["caption"]
    assert "kinetics400 → stand-in real root ucf101 (data.substitutes)" in caption
    values = pd.read_csv(tables / "be_table2.csv")
    assert values["reason"].isna().any()  # some Diving48 cells reproduced on the real root


def test_the_report_says_what_real_data_cannot_give(real_run):
    tmp = _ok(real_run)
    report = tmp / "reports" / "paper"
    page = (report / "index.html").read_text()
    calibration = json.loads((report / "calibration.json").read_text())
    assert calibration["overall"] == "not available"
    assert {g["status"] for g in calibration["gates"]} == {"not available"}
    assert "Not run on this data" in page and "moco+oracle_mask" in page
    assert "FAME mask quality vs ground truth</h2><p class='note'>Not available" in page
    assert "Data: real datasets <code>" in page and "ranked by test-split top-1" in page


def test_the_activation_maps_are_drawn_without_an_actor_outline(real_run):
    tmp = _ok(real_run)
    cams = pd.read_csv(next((tmp / "results" / "paper").rglob("cams.csv")))
    assert len(cams) and cams["cam_in_actor"].isna().all() and cams["cam_in_fame_mask"].notna().all()
    assert math.isclose(cams["cam_in_fame_mask"].between(0, 1).mean(), 1.0)
