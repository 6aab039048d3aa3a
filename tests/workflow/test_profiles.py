"""Execution profiles (profiles/local-gpu, profiles/slurm) and the GPU resources of the heavy rules.

Dry runs check that each execution profile parses and plans the pretraining and evaluation jobs with the resources a
scheduler needs; one real (non-dry) run against a fake `sbatch` checks what the SLURM plugin would submit.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GPU_RULES = ("pretrain", "evaluate", "cams")
# A PATH with the venv and the system, nothing from the calling shell (no SLURM client tools a developer has).
BARE_PATH = os.pathsep.join([str(BIN), "/usr/bin", "/bin"])


def _snakemake(*args, env=None):
    env = dict(os.environ, PATH=BARE_PATH, **(env or {}))
    return subprocess.run([str(BIN / "snakemake"), *args, "--nolock"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def _jobs(dry_run_output):
    """(rule, resources) of every job a dry run lists; resources maps name -> value as Snakemake prints it."""
    jobs = []
    for block in re.split(r"^(?:local)?rule ", dry_run_output, flags=re.M)[1:]:
        rule = block.split(":", 1)[0]
        found = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        pairs = (item.split("=", 1) for item in found.group(1).split(", ")) if found else []
        jobs.append((rule, {name: value for name, value in pairs}))
    return jobs


def _resources_of(jobs, rule):
    return [resources for name, resources in jobs if name == rule]


@pytest.fixture(scope="module")
def paths_yaml(tmp_path_factory):
    """Data, results, cache and reports under a temporary folder, as in tests/workflow/test_workflow.py."""
    tmp = tmp_path_factory.mktemp("profiles")
    paths = {"paths": {key: str(tmp / key / "{preset}") for key in ("data", "results", "reports", "frame_cache")}}
    extra = tmp / "paths.yaml"
    extra.write_text(yaml.safe_dump(paths))
    return tmp, extra


def _config_yaml(tmp_path, **values):
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


@pytest.mark.parametrize("device, gpus", [("cpu", "0"), ("cuda", "1")])
def test_gpu_rules_ask_for_a_gpu_unless_the_device_is_cpu(paths_yaml, tmp_path, device, gpus):
    _, paths = paths_yaml
    proc = _snakemake("-n", "--configfile", "config/presets/smoke.yaml", str(paths),
                      _config_yaml(tmp_path, device=device))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    jobs = _jobs(proc.stdout)
    for rule in GPU_RULES:
        resources = _resources_of(jobs, rule)
        assert resources and all(r["gpu"] == gpus for r in resources), (rule, resources)
        assert all(int(r["mem_mb"]) > 0 and int(r["runtime"]) > 0 for r in resources)
    for rule in ("generate", "frame_cache", "aggregate"):  # CPU jobs never hold a GPU slot
        assert all("gpu" not in r for r in _resources_of(jobs, rule)), rule


def test_local_gpu_profile_plans_gpu_jobs_whatever_the_configfile_says(paths_yaml, tmp_path):
    _, paths = paths_yaml
    # the execution profile's `config: device: cuda` is a --config value: it wins over a config file's device
    proc = _snakemake("-n", "--profile", "profiles/local-gpu", "--configfile", "config/presets/smoke.yaml",
                      str(paths), _config_yaml(tmp_path, device="cpu"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    jobs = _jobs(proc.stdout)
    assert len(_resources_of(jobs, "pretrain")) > 1 and len(_resources_of(jobs, "evaluate")) > 1
    assert all(r["gpu"] == "1" for rule in GPU_RULES for r in _resources_of(jobs, rule))


def test_slurm_profile_dry_run_needs_no_slurm_tools(paths_yaml):
    _, paths = paths_yaml
    assert shutil.which("sbatch", path=BARE_PATH) is None, "a real sbatch would make this test prove nothing"
    proc = _snakemake("-n", "--profile", "profiles/slurm", "--configfile", "config/presets/smoke.yaml", str(paths))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    jobs = _jobs(proc.stdout)
    pretrain, evaluate = _resources_of(jobs, "pretrain"), _resources_of(jobs, "evaluate")
    assert pretrain and evaluate
    assert all(r["gpu"] == "1" and r["runtime"] == "720" and r["mem_mb"] == "16000" for r in pretrain)
    assert all(r["gpu"] == "1" and r["runtime"] == "240" for r in evaluate)
    generate = _resources_of(jobs, "generate")[0]  # a whole data set: the execution profile's longer limit, no GPU
    assert generate["runtime"] == "240" and "gpu" not in generate
    assert "slurm_account" in generate and "slurm_partition" in generate


FAKE_SBATCH = """#!/bin/sh
echo "$@" >> "$FAKE_SBATCH_LOG"
echo "sbatch: error: no cluster here (test double)" >&2
exit 1
"""


def test_slurm_profile_submits_pretraining_to_a_gpu_partition(paths_yaml, tmp_path):
    """A real run against a fake sbatch that records its arguments and refuses the job: what a cluster gets."""
    tmp, paths = paths_yaml
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text(FAKE_SBATCH)
    for tool in ("sacct", "squeue", "sinfo", "sacctmgr", "sshare", "scontrol"):  # queried, answer nothing
        (fake / tool).write_text("#!/bin/sh\nexit 0\n")
    for script in fake.iterdir():
        script.chmod(0o755)
    # the pretraining job's inputs exist, so it is the only job and the first submission
    manifest = tmp / "data/smoke/manifest.json"
    cache = tmp / "frame_cache/smoke/ucf101/index.json"
    for path in (manifest, cache):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    os.utime(manifest, (1, 1))  # older than the cache built from it
    log = tmp_path / "sbatch.log"
    model = tmp / "results/smoke/pretrain/moco/seed0/model.pt"
    env = {"PATH": os.pathsep.join([str(fake), BARE_PATH]), "FAKE_SBATCH_LOG": str(log),
           "SCENEBIAS_SLURM_ACCOUNT": "acct1", "SCENEBIAS_SLURM_PARTITION": "cpu1",
           "SCENEBIAS_SLURM_GPU_PARTITION": "gpu1"}
    proc = subprocess.run(
        [str(BIN / "snakemake"), str(model), "--nolock", "--profile", "profiles/slurm", "--retries", "0",
         "--slurm-init-seconds-before-status-checks", "1", "--slurm-logdir", str(tmp_path / "slurm_logs"),
         "--configfile", "config/presets/smoke.yaml", str(paths)],
        cwd=REPO, env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0  # the fake refuses every job
    calls = log.read_text().splitlines()
    assert len(calls) == 1, proc.stderr + proc.stdout
    args = calls[0].split(" --wrap")[0].split()
    assert "--gpus=1" in args
    for flag, value in (("-A", "acct1"), ("-p", "gpu1"), ("-t", "720"), ("--mem", "16000")):
        assert args[args.index(flag) + 1] == value, (flag, args)
    assert "pretrain:run=moco,seed=0" in calls[0] and "device=cuda" in calls[0]


def test_light_rules_run_on_the_submitting_node():
    """Seconds of work on finished files (aggregate, tables, report) is not worth a queued cluster job; the heavy
    rules are. A dry run does not print which is which, so the parsed workflow is asked (Snakemake's API; the
    set of local rules is internal to the pinned Snakemake 9)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=REPO / "Snakefile", workdir=REPO,
                                config_settings=ConfigSettings(configfiles=[REPO / "config/presets/smoke.yaml"]))
        local = set(workflow._workflow._localrules)
    assert {"aggregate", "paper_table", "report", "all", "fame_table3"} <= local
    assert not local & {"generate", "frame_cache", "mask_quality", *GPU_RULES}
