"""The real Snakemake workflow, end to end on the smoke profile (generated videos -> report)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _snakemake(*args, cwd=REPO):
    exe = Path(sys.executable).with_name("snakemake")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def smoke_paths(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workflow")
    paths = {"paths": {"data": str(tmp / "data/{profile}"), "results": str(tmp / "results/{profile}"),
                       "reports": str(tmp / "reports/{profile}")}}
    extra = tmp / "paths.yaml"
    extra.write_text(yaml.safe_dump(paths))
    return tmp, extra


def test_dry_run_lists_every_job(smoke_paths):
    tmp, extra = smoke_paths
    proc = _snakemake("-n", "--nolock", "--configfile", "config/profiles/smoke.yaml", str(extra))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = proc.stdout + proc.stderr
    for rule in ("generate", "pretrain", "evaluate", "aggregate", "report"):
        assert rule in out


def test_each_paper_table_is_a_target_with_only_its_jobs(smoke_paths):
    tmp, extra = smoke_paths
    proc = _snakemake("fame_table4", "-n", "--nolock", "--configfile", "config/profiles/default.yaml", str(extra))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = proc.stdout
    # FAME Table 4: MoCo, intra- and inter-video FAME (the profile's moco+fame), fine-tuned on two sets, 3 seeds
    assert "moco+fame@background~intra" in out
    assert out.count("rule pretrain:") == 9 and out.count("rule evaluate:") == 18
    assert "rule paper_table:" in out and "dsm" not in out


def test_unknown_table_target_is_refused(smoke_paths):
    tmp, extra = smoke_paths
    proc = _snakemake("fame_table9", "-n", "--nolock", "--configfile", "config/profiles/smoke.yaml", str(extra))
    assert proc.returncode != 0


def test_scenebias_tables_lists_the_targets():
    from scenebias.paper_tables import table_ids

    proc = subprocess.run([str(Path(sys.executable).with_name("scenebias")), "tables"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and proc.stdout.split() == table_ids()


@pytest.mark.parametrize("study", sorted((REPO / "config/studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_studies_parse_and_expand_their_sweeps(smoke_paths, study):
    tmp, extra = smoke_paths
    proc = _snakemake("-n", "--nolock", "--configfile", "config/profiles/default.yaml", str(study), str(extra))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    sweeps = yaml.safe_load(study.read_text()).get("sweeps", {})
    for name in sweeps:
        assert f"pretrain/{name}@" in proc.stdout  # Paramspace-named runs are jobs of the DAG


def test_bad_config_fails_at_parse_time(smoke_paths, tmp_path):
    tmp, extra = smoke_paths
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: {name: c4d}\n")
    proc = _snakemake("-n", "--nolock", "--configfile", "config/profiles/smoke.yaml", str(extra), str(bad))
    assert proc.returncode != 0
    assert "c4d" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_smoke_profile_end_to_end(smoke_paths):
    tmp, extra = smoke_paths
    proc = _snakemake("--cores", "2", "--nolock", "--configfile", "config/profiles/smoke.yaml", str(extra))
    if proc.returncode != 0:
        logs = "".join(p.read_text()[-3000:] for p in (tmp / "results/smoke/logs").rglob("*.log"))
        pytest.fail(proc.stderr[-5000:] + logs)
    report = tmp / "reports/smoke/index.html"
    assert report.exists() and "background shortcut" in report.read_text()
    assert (tmp / "reports/smoke/plots/biased_vs_swapped.png").stat().st_size > 1000
    metrics = pd.read_csv(tmp / "results/smoke/metrics.csv")
    top1 = metrics[metrics["metric"] == "top1"]
    from scenebias.plugins import load_methods

    assert set(load_methods().names()) == set(top1["method"])  # every registered method, end to end
    assert {"moco+be", "rotnet+be", "fame_beta@beta~0.3", "motion_learnability", "scene_shortcut"} <= set(top1["run"])
    assert {"biased", "swapped"} <= set(top1["test_set"])
    assert top1["value"].between(0, 1).all()
    assert (tmp / "results/smoke/benchmarks/pretrain/moco/seed0.tsv").exists()
    smoke = yaml.safe_load((REPO / "config/profiles/smoke.yaml").read_text())
    for table in smoke["tables"]:  # every paper table of the profile: files, a report page, claim verdicts
        for kind in ("csv", "md", "tex", "png", "json"):
            assert (tmp / f"reports/smoke/tables/{table}.{kind}").stat().st_size > 0
        page = (tmp / f"reports/smoke/tables/{table}.html").read_text()
        assert "Claims" in page and f"{table}.png" in page
    record = json.loads((tmp / "reports/smoke/tables/be_figure4.json").read_text())
    assert record["correlation"]["classes"] >= 0 and record["claims"]
    assert "Paper tables and claims" in report.read_text()
    assert "paper tables" in (tmp / "reports/smoke/methods/moco_plus_fame.html").read_text()
    assert (tmp / "results/smoke/analysis/cams/seed0/cams.png").exists()
    masks = pd.read_csv(tmp / "results/smoke/analysis/mask_quality.csv")
    assert {"fame[paper]", "seed", "gauss", "grid"} <= set(masks["variant"])
    # nothing left to do: outputs are complete and up to date
    again = _snakemake("-n", "--nolock", "--configfile", "config/profiles/smoke.yaml", str(extra))
    assert "Nothing to be done" in again.stdout + again.stderr
