"""A killed workflow recovers with the command the README gives ("Interrupted run"): `make reproduce` again.

The whole process group of a running `make reproduce` is killed with SIGKILL (as a power loss does) after some
but not all jobs finished; Snakemake's lock stays behind and a plain rerun stops with its LockException; `make
reproduce` removes the stale lock itself, resumes, and ends with the same metrics as an uninterrupted run. The
target is `calibration` on the smoke preset: 14 jobs, about half a minute on 2 cores.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VENV = BIN.parent
TARGET = "calibration"
IGNORED = {"provenance"}  # git commit, library versions, wall times: differ between any two runs
# envs/scenebias.yaml and its post-deploy script: the rules' conda: directive (Snakemake records the env in its metadata)
WORKFLOW_FILES = ["Snakefile", "rules", "config", "Makefile", "pyproject.toml", "envs/requirements.lock",
                  "envs/scenebias.yaml", "envs/scenebias.post-deploy.sh"]

pytestmark = pytest.mark.skipif(not Path("/proc/self").is_dir() or shutil.which("make") is None,
                                reason="needs GNU make and Linux /proc (the Makefile's stale-lock check)")


def _working_copy(root: Path) -> Path:
    """The workflow's files in a folder of their own: its own .snakemake (locks), results/, data/ and reports/."""
    root.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src, dst = REPO / name, root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)  # mtimes kept: make must not think the venv needs reinstalling
    return root


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TARGETS"}}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _make(target: str) -> list[str]:
    """`make <target> PRESET=smoke TARGETS=calibration CORES=2` with this interpreter's venv, never reinstalled."""
    return ["make", "--no-print-directory", "-o", f"{VENV}/.installed", target, f"VENV={VENV}", "PRESET=smoke",
            f"TARGETS={TARGET}", "CORES=2"]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)


def _locks(cwd: Path) -> list[str]:
    return sorted(p.name for p in (cwd / ".snakemake/locks").glob("*.lock"))


def _strip(obj):
    """A result without what legitimately differs between runs (provenance, *_time_s)."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in IGNORED and not k.endswith("_time_s")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _results(results: Path) -> dict[str, str]:
    """Every metrics JSON of the target (evaluations, calibration gates) and every training log, stripped and
    serialised (NaN compares equal to NaN as text)."""
    files = [*results.glob("eval/**/*.json"), *results.glob("pretrain/**/train_log.json"),
             results / "calibration.json"]
    return {str(f.relative_to(results)): json.dumps(_strip(json.loads(f.read_text())), sort_keys=True)
            for f in files}


def _alive_in_group(pgid: int) -> list[int]:
    """Processes of the group that are still running (zombies aside)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _fail(proc: subprocess.CompletedProcess, cwd: Path, what: str):
    logs = "".join(p.read_text()[-2000:] for p in (cwd / "results/smoke/logs").rglob("*.log"))
    pytest.fail(f"{what} (rc {proc.returncode})\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}\n{logs}")


@pytest.mark.slow
def test_killed_workflow_recovers_with_make_reproduce(tmp_path):
    start = time.monotonic()
    cwd = _working_copy(tmp_path / "work")
    results = cwd / "results/smoke"

    # 1. the uninterrupted run
    ref = _run(_make("reproduce"), cwd)
    if ref.returncode != 0:
        _fail(ref, cwd, "uninterrupted run failed")
    expected = _results(results)
    # 4 evaluations on the primary set, 8 for the HMDB51-like and Actor sets' gates, 4 training logs, the gates;
    # the lock released
    assert len(expected) == 17 and not _locks(cwd)
    # Its outputs go; the generated videos and frame cache stay (generate and frame_cache are not run twice).
    shutil.rmtree(results)

    # 2. the same run, its whole process group killed once the first pretraining job has finished
    log = tmp_path / "killed.log"
    with log.open("w") as out:
        proc = subprocess.Popen(_make("reproduce"), cwd=cwd, env=_env(), start_new_session=True, stdout=out,
                                stderr=subprocess.STDOUT)
    # Snakemake logs "Finished jobid" once a job's outputs are recorded complete (a model.pt alone may not be yet)
    finished = re.compile(r"Finished jobid: \d+ \(Rule: pretrain\)")
    deadline = time.monotonic() + 300
    while not finished.search(log.read_text()):
        assert proc.poll() is None, "the run ended before it could be killed:\n" + log.read_text()
        assert time.monotonic() < deadline, "no pretraining job finished in 300 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # make, snakemake and its jobs: one process group
    proc.wait()
    assert any((results / "pretrain").glob("*/seed0/model.pt"))
    deadline = time.monotonic() + 30
    while _alive_in_group(proc.pid):
        assert time.monotonic() < deadline, f"processes outlived SIGKILL: {_alive_in_group(proc.pid)}"
        time.sleep(0.1)
    assert not (results / "calibration.json").exists()  # some jobs done, not all
    assert len(list(results.glob("eval/**/*.json"))) < 4
    assert _locks(cwd), "the killed run left no lock: the test did not kill a running workflow"

    # 3. without recovery the next run stops at once: the failure a user meets
    plain = _run([str(BIN / "snakemake"), TARGET, "--cores", "2", "--rerun-incomplete", "--configfile",
                  "config/presets/smoke.yaml"], cwd)
    assert plain.returncode != 0 and "Directory cannot be locked" in plain.stdout + plain.stderr

    # 4. the documented recovery: the same command again; it unlocks (nothing else runs here) and resumes
    again = _run(_make("reproduce"), cwd)
    if again.returncode != 0:
        _fail(again, cwd, "recovery with `make reproduce` failed")
    assert "unlocking" in again.stderr
    steps = re.findall(r"\d+ of (\d+) steps", again.stdout + again.stderr)
    # only what the kill left undone (17 jobs after the data: 4 pretrainings, 12 evaluations, the gates)
    assert steps and int(steps[-1]) < 17, steps
    assert not _locks(cwd)

    # 5. identical metrics
    got = _results(results)
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == expected[name], name
    print(f"kill, recover and compare: {time.monotonic() - start:.0f} s; recovery ran {steps[-1]} jobs")


def test_make_unlock_removes_a_stale_lock(tmp_path):
    cwd = _working_copy(tmp_path / "work")
    (cwd / ".snakemake/locks").mkdir(parents=True)
    (cwd / ".snakemake/locks/0.output.lock").write_text("results/smoke/calibration.json\n")
    proc = _run(_make("unlock"), cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not _locks(cwd)


def test_reproduce_keeps_a_lock_another_snakemake_holds(tmp_path):
    """A lock is only removed when no snakemake works in the folder: here one does (its program name is all the
    check reads), so Snakemake's own LockException stands and the lock stays."""
    cwd = _working_copy(tmp_path / "work")
    (cwd / ".snakemake/locks").mkdir(parents=True)
    (cwd / ".snakemake/locks/0.output.lock").write_text("results/smoke/calibration.json\n")
    other = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 120"], cwd=cwd)
    try:
        time.sleep(0.3)  # until exec has renamed it
        proc = _run(_make("reproduce"), cwd)
    finally:
        other.kill()
        other.wait()
    assert proc.returncode != 0
    assert "are kept" in proc.stderr and f"pid {other.pid}" in proc.stderr and "make unlock" in proc.stderr
    assert "Directory cannot be locked" in proc.stdout + proc.stderr
    assert _locks(cwd) == ["0.output.lock"]
    assert not (cwd / "results/smoke/pretrain").exists()  # nothing ran
