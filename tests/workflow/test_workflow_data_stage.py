"""A finished model is not retrained for data it does not read: after a tiny run on a real root, a dry run with
another root, another test set or a speed-only key schedules no `pretrain` job, while a change to the pretraining
root or to the frames does (rules/common.smk data_stage, scenebias.resolve.data_stage); the model and its
evaluation record the hash of the manifest their jobs took as input.

The root is the tiny generated set's ucf101 videos and split files copied into the official layout, as
tests/workflow/test_workflow_real_roots.py does; the run trains one smoke-preset run for one epoch and evaluates
it with the linear probe, on 2 cores in about a minute.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAYOUT = {"ucf101": ["UCF101", "ucfTrainTestlist"], "hmdb51": ["videos", "testTrainMulti_7030_splits"]}
RUN = "moco"


def _snakemake(*args):
    exe = Path(sys.executable).with_name("snakemake")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(exe), "--nolock", *args], cwd=REPO, env=env, capture_output=True, text=True)


def _copy_root(generated: Path, flavour: str, out: Path) -> dict[str, str]:
    """A flavour's videos and split files (not its annotations) in the official layout; its data.real entry."""
    for part in LAYOUT[flavour]:
        src, dst = generated / flavour / part, out / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    return {"root": str(out), "format": flavour}


@pytest.fixture(scope="module")
def finished(tiny_dataset, tmp_path_factory):
    """A finished tiny run (manifest, frame cache, one model, its linear probe) and a dry run of it under a
    changed config: dry(data=..., ...) -> {rule: jobs scheduled}."""
    tmp = tmp_path_factory.mktemp("data_stage")
    roots = {f: _copy_root(tiny_dataset, f, tmp / "roots" / f) for f in LAYOUT}
    base = {
        "data": {"real": {"ucf101": roots["ucf101"]}, "manifest": {"dir": str(tmp / "manifests")},
                 "test_sets": {"biased": "ucf101"}, "static_counterpart": None, "workers": 1},
        "paths": {k: str(tmp / k / "{preset}") for k in ("data", "results", "reports", "frame_cache")},
        "pretrain": {"epochs": 1, "batch_size": 4},
        "evaluate": {"linear": {"epochs": 1}},
    }
    targets = [str(tmp / "results/smoke/pretrain" / RUN / "seed0/model.pt"),
               str(tmp / "results/smoke/eval" / RUN / "seed0/ucf101/linear.json")]

    def configfile(name: str, overlay: dict) -> str:
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(overlay))
        return str(path)

    def snakemake(*args, **data_changes):
        files = [configfile("base", base)]
        if data_changes:
            files.append(configfile("change", {"data": data_changes}))
        return _snakemake(*targets, *args, "--configfile", "config/presets/smoke.yaml", *files)

    proc = snakemake("--cores", "2")
    if proc.returncode != 0:
        logs = "".join(p.read_text()[-3000:] for p in (tmp / "results/smoke/logs").rglob("*.log"))
        pytest.fail(proc.stderr[-5000:] + logs)

    def dry(**data_changes) -> dict[str, int]:
        proc = snakemake("-n", **data_changes)
        assert proc.returncode == 0, proc.stderr[-5000:] + proc.stdout[-5000:]
        return {rule: proc.stdout.count(f"rule {rule}:") for rule in ("real_manifest", "frame_cache", "pretrain",
                                                                       "evaluate")}

    return tmp, roots, dry


NOTHING = {"real_manifest": 0, "frame_cache": 0, "pretrain": 0, "evaluate": 0}


def test_the_finished_run_is_up_to_date(finished):
    _, _, dry = finished
    assert dry() == NOTHING


def test_a_second_root_reruns_nothing_that_reads_the_first(finished):
    _, roots, dry = finished
    assert dry(real={"hmdb51": roots["hmdb51"]}) == NOTHING


def test_a_speed_only_key_or_the_generator_reruns_nothing(finished):
    _, _, dry = finished
    assert dry(memory_cache_mb=64, workers=2, generator={"scene_families": 6}) == NOTHING


def test_a_new_test_set_reruns_the_evaluation_only(finished):
    _, roots, dry = finished
    scheduled = dry(real={"hmdb51": roots["hmdb51"]}, test_sets={"other": "hmdb51"})
    assert scheduled["pretrain"] == 0 and scheduled["evaluate"] == 1  # it now reports on hmdb51 too


def test_the_pretraining_roots_own_settings_retrain(finished):
    tmp, roots, dry = finished
    moved = tmp / "roots" / "ucf101-moved"
    if not moved.exists():
        shutil.copytree(roots["ucf101"]["root"], moved)
    scheduled = dry(real={"ucf101": {**roots["ucf101"], "root": str(moved)}})
    assert scheduled == {"real_manifest": 1, "frame_cache": 1, "pretrain": 1, "evaluate": 1}
    assert dry(on_missing="skip")["pretrain"] == 1


def test_other_frames_retrain(finished):
    _, _, dry = finished
    scheduled = dry(frames={"short_side": 48})
    assert scheduled["real_manifest"] == 0  # listing and hashing the root does not depend on the frames
    assert scheduled["frame_cache"] == scheduled["pretrain"] == scheduled["evaluate"] == 1


def test_the_model_and_its_evaluation_record_the_manifest_they_read(finished):
    """Not the combined manifest over every root: the one that is an input of their jobs."""
    tmp, _, _ = finished
    own = json.loads((tmp / "manifests" / "ucf101.manifest.json").read_text())["hash"]
    record = json.loads((tmp / "results/smoke/eval" / RUN / "seed0/ucf101/linear.json").read_text())
    assert record["provenance"]["dataset_manifest_hash"] == own  # the downstream flavour's
    assert record["provenance"]["pretrain"]["dataset_manifest_hash"] == own  # the pretraining flavour's
