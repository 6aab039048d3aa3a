"""The real Snakemake workflow, end to end on the smoke preset (generated videos -> report)."""
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from scenebias.tables.published import table_ids
from scenebias.plan import load_config

REPO = Path(__file__).resolve().parents[2]


def _snakemake(*args, cwd=REPO):
    exe = Path(sys.executable).with_name("snakemake")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def smoke_paths(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workflow")
    paths = {"paths": {"data": str(tmp / "data/{preset}"), "results": str(tmp / "results/{preset}"),
                       "reports": str(tmp / "reports/{preset}"), "frame_cache": str(tmp / "frame_cache/{preset}")}}
    extra = tmp / "paths.yaml"
    extra.write_text(yaml.safe_dump(paths))
    return tmp, extra


def _job_counts(out: str) -> dict[str, int]:
    """The dry run's "Job stats" table: {rule: number of jobs}."""
    lines = out.split("Job stats:", 1)[1].splitlines()
    counts = {}
    for line in lines[3:]:  # "Job stats:", "job  count", "----  -----", then one row per rule
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def _expected_evaluations(cfg) -> set[tuple[str, str, str]]:
    """Every (run, downstream, protocol): each run's own protocols on the primary downstream set (runs derived
    from the paper tables have none), every selected paper table's cells, and the fine-tuning sets' gates."""
    from scenebias.analysis.calibration import set_gate_evaluations
    from scenebias.tables.plan import selected_tables, table_evaluations

    own = {(run, cfg["data"]["downstream_flavour"], protocol) for run, spec in cfg["runs"].items()
           if not spec.get("from_tables") for protocol in (spec.get("protocols") or cfg["evaluate"]["protocols"])}
    gates = {key for name, spec in cfg["data"]["evaluation_sets"].items() for key in set_gate_evaluations(name, spec)
             if key[0] in cfg["runs"]}
    return own | gates | {key for table in selected_tables(cfg) for key in table_evaluations(cfg, table)}


def test_dry_run_lists_every_job(smoke_paths):
    from scenebias.plan import load_config

    tmp, extra = smoke_paths
    proc = _snakemake("-n", "--nolock", "--configfile", "config/presets/smoke.yaml", str(extra))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = proc.stdout
    counts = _job_counts(out)
    cfg = load_config("smoke")
    runs, seeds = list(cfg["runs"]), cfg["seeds"]
    evaluations = _expected_evaluations(cfg)
    assert counts["generate"] == 1 and counts["aggregate"] == 1 and counts["report"] == 1
    assert counts["pretrain"] == len(runs) * len(seeds)  # every run of the preset, once per seed
    assert counts["evaluate"] == len(evaluations) * len(seeds)
    assert counts["paper_table"] == len(cfg["tables"])
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    # and they are the right jobs, not only the right number
    for run in runs:
        for seed in seeds:
            assert f"{tmp}/results/smoke/pretrain/{run}/seed{seed}/model.pt" in out, run
    for run, downstream, protocol in evaluations:
        for seed in seeds:
            assert f"{tmp}/results/smoke/eval/{run}/seed{seed}/{downstream}/{protocol}.json" in out
    for table in cfg["tables"]:
        assert f"{tmp}/reports/smoke/tables/{table}.json" in out


def test_each_paper_table_is_a_target_with_only_its_jobs(smoke_paths):
    tmp, extra = smoke_paths
    every_table = tmp / "every-table.yaml"  # the default preset regenerates the headline tables; make tables all
    every_table.write_text("tables: [all]\n")
    proc = _snakemake("fame_table4", "-n", "--nolock", "--configfile", "config/presets/default.yaml", str(extra),
                      str(every_table))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = proc.stdout
    # FAME Table 4: MoCo, intra- and inter-video FAME (the preset's moco+fame), fine-tuned on two sets, 3 seeds
    assert "moco+fame@background~intra" in out
    assert out.count("rule pretrain:") == 9 and out.count("rule evaluate:") == 18
    assert "rule paper_table:" in out and "dsm" not in out


def test_unknown_table_target_is_refused(smoke_paths):
    tmp, extra = smoke_paths
    proc = _snakemake("fame_table9", "-n", "--nolock", "--configfile", "config/presets/smoke.yaml", str(extra))
    assert proc.returncode != 0
    assert "No rule to produce fame_table9" in proc.stderr + proc.stdout  # refused for the target, not a crash
    assert "Traceback" not in proc.stderr


def test_a_table_outside_the_preset_says_how_to_get_it(smoke_paths):
    tmp, extra = smoke_paths
    cfg = load_config("smoke")
    table = next(t for t in table_ids() if t not in cfg["tables"])
    proc = _snakemake(table, "--cores", "1", "--nolock", "--configfile", "config/presets/smoke.yaml", str(extra))
    assert proc.returncode != 0
    out = proc.stderr + proc.stdout
    assert f"{table} is not among the tables of preset 'smoke'" in out
    assert f"--config 'tables=[{table}]'" in out and "make tables" in out


def test_scenebias_tables_lists_the_targets():
    from scenebias.tables.published import table_ids

    proc = subprocess.run([str(Path(sys.executable).with_name("scenebias")), "tables"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and proc.stdout.split() == table_ids()


def _is_calibration_study(path):
    return "candidates" in yaml.safe_load(path.read_text())


@pytest.mark.parametrize("study", sorted(p for p in (REPO / "config/studies").glob("*.yaml")
                                         if not _is_calibration_study(p)), ids=lambda p: p.stem)
def test_studies_parse_and_expand_their_sweeps(smoke_paths, study):
    tmp, extra = smoke_paths
    proc = _snakemake("-n", "--nolock", "--configfile", "config/presets/default.yaml", str(study), str(extra))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    spec = yaml.safe_load(study.read_text())
    base = yaml.safe_load((REPO / "config/config.yaml").read_text())  # the default preset is the base config
    seeds, downstream = spec.get("seeds") or base["seeds"], base["data"]["downstream_flavour"]
    for run, run_spec in (spec.get("runs") or {}).items():  # the study's own runs: pretrained and evaluated
        for seed in seeds:
            assert f"pretrain/{run}/seed{seed}/model.pt" in proc.stdout, (run, seed)
            for protocol in run_spec.get("protocols") or []:
                assert f"eval/{run}/seed{seed}/{downstream}/{protocol}.json" in proc.stdout, (run, protocol)
    for name, sweep in (spec.get("sweeps") or {}).items():  # Paramspace-named runs: one per grid point
        runs = set(re.findall(rf"pretrain/({re.escape(name)}@[^/\s]+)/seed", proc.stdout))
        assert len(runs) == math.prod(len(v) for v in sweep["grid"].values()), (name, sorted(runs))
    assert spec.get("runs") or spec.get("sweeps")  # a study that adds nothing would test nothing


def test_bad_config_fails_at_parse_time(smoke_paths, tmp_path):
    tmp, extra = smoke_paths
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: {name: c4d}\n")
    proc = _snakemake("-n", "--nolock", "--configfile", "config/presets/smoke.yaml", str(extra), str(bad))
    assert proc.returncode != 0
    assert "c4d" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_smoke_preset_end_to_end(smoke_paths):
    tmp, extra = smoke_paths
    proc = _snakemake("--cores", "2", "--nolock", "--configfile", "config/presets/smoke.yaml", str(extra))
    if proc.returncode != 0:
        logs = "".join(p.read_text()[-3000:] for p in (tmp / "results/smoke/logs").rglob("*.log"))
        pytest.fail(proc.stderr[-5000:] + logs)
    report = tmp / "reports/smoke/index.html"
    page = report.read_text()
    assert "background shortcut" in page
    # the first screen: gates, then the leaderboard, then the claims; the run list folded
    heads = [page.index(h) for h in ("<h2>Calibration gates", "<h2>Leaderboard", "<h2>Paper tables and claims")]
    assert heads == sorted(heads)
    assert page.index("<details><summary>") < heads[0] and "runs (method, role)</summary>" in page
    assert (tmp / "reports/smoke/plots/biased_vs_swapped.png").stat().st_size > 1000
    metrics = pd.read_csv(tmp / "results/smoke/metrics.csv")
    top1 = metrics[metrics["metric"] == "top1"]
    from scenebias.plugins import load_methods

    assert set(load_methods().names()) == set(top1["method"])  # every registered method, end to end
    assert {"moco+be", "rotnet+be", "fame_beta@beta~0.3", "motion_learnability", "scene_shortcut"} <= set(top1["run"])
    assert {"biased", "swapped"} <= set(top1["test_set"])
    assert top1["value"].between(0, 1).all()
    # each fine-tuning set beside the primary: tested on its scene-swapped copy, contrasted with its own static
    # twin, and judged by its own gates on the report's first screen
    hmdb = metrics[(metrics["downstream"] == "hmdb51") & (metrics["protocol"] == "finetune")]
    assert {"test", "swapped"} <= set(hmdb["test_set"]) and "contrasted_acc" in set(hmdb["metric"])
    sets = json.loads((tmp / "reports/smoke/calibration.json").read_text())["sets"]
    assert set(sets) == {"hmdb51", "actor_hmdb51"}
    gate_a = sets["hmdb51"]["gates"][0]
    assert gate_a["swapped"]["seeds"] == 1 and gate_a["status"] in ("pass", "fail")  # read, not missing
    assert page.index("The fine-tuning sets beside it") < heads[1]
    assert (tmp / "results/smoke/benchmarks/pretrain/moco/seed0.tsv").exists()
    smoke = yaml.safe_load((REPO / "config/presets/smoke.yaml").read_text())
    for table in smoke["tables"]:  # every paper table of the preset: files, a report page, claim verdicts
        for kind in ("csv", "md", "tex", "png", "json"):
            assert (tmp / f"reports/smoke/tables/{table}.{kind}").stat().st_size > 0
        page = (tmp / f"reports/smoke/tables/{table}.html").read_text()
        assert "Claims" in page and f"{table}.png" in page
    record = json.loads((tmp / "reports/smoke/tables/be_figure4.json").read_text())
    # BE Figure 4's correlation, recomputed from its per-class points: seed-averaged, MoCo-at-0 classes dropped
    points = pd.read_csv(tmp / "reports/smoke/tables/be_figure4.seeds.csv")
    n_classes = points["class"].nunique()
    assert n_classes > 0 and len(points) == n_classes * len(smoke["seeds"])
    means = points.groupby("class")[["static_top1", "relative_improvement"]].mean().dropna()
    corr = record["correlation"]
    assert corr["classes"] == len(means) and corr["classes_without_moco_accuracy"] == n_classes - len(means)
    if len(means) >= 3 and means["static_top1"].std() > 0 and means["relative_improvement"].std() > 0:
        from scipy import stats

        expected = stats.pearsonr(means["static_top1"], means["relative_improvement"])
        assert corr["pearson_r"] == pytest.approx(expected.statistic, abs=1e-9)
        assert corr["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    else:  # undefined: no number is made up (JSON null)
        assert corr["pearson_r"] is None and corr["p_value"] is None
    claim = {c["claim"]: c for c in record["claims"]}["negative_static_bias_correlation"]
    assert claim["verdict"] in ("reproduced", "contradicted", "inconclusive")  # judged, not "not testable"
    assert "Paper tables and claims" in report.read_text()
    assert "paper tables" in (tmp / "reports/smoke/methods/moco_plus_fame.html").read_text()
    assert (tmp / "results/smoke/analysis/cams/seed0/cams.png").exists()
    masks = pd.read_csv(tmp / "results/smoke/analysis/mask_quality.csv")
    assert {"fame[paper]", "seed", "gauss", "grid"} <= set(masks["variant"])
    # nothing left to do: outputs are complete and up to date
    again = _snakemake("-n", "--nolock", "--configfile", "config/presets/smoke.yaml", str(extra))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_the_calibration_study_names_valid_configs_for_every_candidate(tmp_path):
    """config/studies/calibration.yaml is not a config overlay but a list of candidates: each candidate's overlay
    (benchmarks.calibration.study.overlay) validates on the base preset and sets what the candidate says."""
    from benchmarks.calibration.study import load_study, overlay
    from scenebias.plan import load_config

    path = REPO / "config/studies/calibration.yaml"
    study = load_study(path)
    assert "chosen" in study["candidates"] and study["seeds"] == [0, 1, 2]
    for name, candidate in study["candidates"].items():
        file = tmp_path / f"{name}.yaml"
        file.write_text(yaml.safe_dump(overlay(study, name)))
        cfg = load_config(study["base"], [file])
        assert cfg["preset"] == f"cal-{name}" and cfg["seeds"] == [0, 1, 2]
        # a candidate names its actor palette, so a change of the default's does not change it; only the chosen
        # default and its generator-seed twins follow the default
        palette = candidate.get("overrides", {}).get("data", {}).get("generator", {}).get("actor_palette")
        assert (palette is None) == name.startswith("chosen"), name
        for section, values in candidate.get("overrides", {}).items():
            for key, value in values.items():
                got = cfg[section][key]
                if isinstance(value, dict):
                    assert {k: got[k] for k in value} == value, (name, section, key)
                else:
                    assert got == value, (name, section, key)
