"""The numbers the report shows, recomputed here: `build_report` on a small synthetic metrics table (three seeds,
the four calibration runs and two methods) must show each leaderboard cell as the mean ± Student-t 95% half-width of
that run's per-seed values (swapped, biased and contrasted columns each from their own values), rank the runs by
their swapped mean, show gate values equal to scipy's paired t-test and the hand-computed means, and show a claim's
effect and p as computed from its per-seed differences. Whether gate (d) can be judged depends on where the primary
data come from: generated data carry the ground truth it needs, a real root does not."""
from __future__ import annotations

import copy
import html
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import brentq

from scenebias.analysis.aggregate import COLUMNS
from scenebias.plan import load_config
from scenebias.report import build
from scenebias.tables import regenerate as rg
from scenebias.tables.plan import plan_table
from scenebias.tables.published import load_paper_tables

SEEDS = (0, 1, 2)
# per run: role, protocol, {test_set/metric: per-seed values}; every method row's columns differ from each other
RUNS = {
    "motion_learnability": ("calibration", "classifier", {"swapped/top1": [0.90, 0.84, 0.87]}),
    "scene_shortcut": ("calibration", "classifier", {"biased/top1": [0.95, 0.91, 0.93],
                                                     "swapped/top1": [0.10, 0.06, 0.08]}),
    "moco": ("method", "linear", {"biased/top1": [0.88, 0.90, 0.85], "swapped/top1": [0.05, 0.07, 0.04],
                                  "swapped/contrasted_acc": [0.02, 0.01, 0.03],
                                  "swapped_static/top1": [0.30, 0.25, 0.20]}),
    "moco+oracle_mask": ("reference", "linear", {"biased/top1": [0.70, 0.74, 0.69],
                                                 "swapped/top1": [0.25, 0.22, 0.30],
                                                 "swapped/contrasted_acc": [0.15, 0.11, 0.19]}),
    "moco+be": ("method", "linear", {"biased/top1": [0.80, 0.86, 0.83], "swapped/top1": [0.12, 0.09, 0.16],
                                     "swapped/contrasted_acc": [0.06, 0.04, 0.09]}),
}


def _metrics(path, runs=RUNS):
    rows = []
    for run, (role, protocol, cells) in runs.items():
        for key, values in cells.items():
            test_set, metric = key.split("/")
            for seed, v in zip(SEEDS, values):
                rows.append({"run": run, "method": run.split("+")[0], "role": role, "seed": seed,
                             "protocol": protocol, "downstream": "ucf101", "backbone": "tiny3d",
                             "pretrain_flavour": "ucf101", "test_set": test_set, "metric": metric, "value": v,
                             "wall_time_s": 1.0, "source": "synthetic"})
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


def _mean_half(values) -> tuple[float, float]:
    x = np.asarray(values, dtype=float)
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def _pct(values) -> str:
    m, h = _mean_half(values)
    return f"{100 * m:.1f} ± {100 * h:.1f}"


@pytest.fixture(scope="module")
def smoke_cfg():
    return load_config("smoke")


@pytest.fixture
def report_cfg(smoke_cfg, tmp_path, monkeypatch):
    cfg = copy.deepcopy(smoke_cfg)
    cfg["paths"]["results"] = str(tmp_path / "results")
    cfg["data"]["manifest"] = {**cfg["data"]["manifest"], "dir": str(tmp_path / "manifests")}
    # the report reads the downstream set's class names only (4 classes: chance 25 %)
    monkeypatch.setattr(build, "split", lambda cfg, flavour, subset: SimpleNamespace(
        class_names=["rise", "fall", "slide", "orbit"], records=[]))
    return cfg


def _claim_record(tmp_path, default_cfg, tables):
    """FAME Table 6 "Grid outperforms FAME slightly on UCF101", judged on hand-made per-seed values."""
    table = tables["fame_table6"]
    claim = next(c for c in table["claims"] if c["id"] == "grid_beats_fame_ucf101")
    fame, grid = np.array([60.0, 61.5, 59.0]), np.array([63.1, 63.9, 62.0])
    values = pd.DataFrame([{"row": row, "column": "ucf101", "seed": s, "value": float(v)}
                           for row, vals in (("grid", grid), ("fame", fame)) for s, v in enumerate(vals)])
    judged = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [claim]}), values)[0]
    record = {"table": "fame_table6", "label": "FAME Table 6", "paper_caption": "p", "caption": "c",
              "summary": [], "wide": {"columns": ["row"], "data": []}, "claims": [judged]}
    path = tmp_path / "fame_table6.json"
    path.write_text(json.dumps(record))
    return path, grid - fame


def _build(cfg, tmp_path, table_records=None, runs=RUNS):
    out = tmp_path / "report"
    index = build.build_report(cfg, _metrics(tmp_path / "metrics.csv", runs), out, benchmarks=[],
                               mask_quality_csv=tmp_path / "no_mask_quality.csv", table_records=table_records)
    return out, index.read_text(encoding="utf-8")


def test_report_leaderboard_cells_are_each_columns_mean_and_interval(report_cfg, tmp_path):
    out, page = _build(report_cfg, tmp_path)
    board = pd.read_csv(out / "tables" / "leaderboard.csv")
    shown = [r for r, (role, protocol, _) in RUNS.items() if protocol == "linear" and role != "calibration"]
    ranked = sorted(shown, key=lambda r: -np.mean(RUNS[r][2]["swapped/top1"]))
    assert [r.split(" (")[0] for r in board["run"]] == ranked == ["moco+oracle_mask", "moco+be", "moco"]
    assert list(board["rank"]) == [1, 2, 3]
    for _, row in board.iterrows():
        cells = RUNS[row["run"].split(" (")[0]][2]
        assert row["swapped top-1 %"] == _pct(cells["swapped/top1"])
        assert row["biased top-1 %"] == _pct(cells["biased/top1"])
        assert row["contrasted %"] == _pct(cells["swapped/contrasted_acc"])
        assert row["seeds"] == 3
        for text in (row["swapped top-1 %"], row["biased top-1 %"], row["contrasted %"]):
            assert f"<td>{text}</td>" in page
    # e.g. MoCo's swapped column: 5.3 ± 3.8 (mean 5.33, sd 1.53, t(0.975, 2) = 4.303)
    assert board.set_index("run").loc["moco (baseline)", "swapped top-1 %"] == "5.3 ± 3.8"
    # the accuracy table's static-twin column is MoCo's swapped_static values
    acc = pd.read_csv(out / "tables" / "accuracy.csv")
    moco = acc[(acc["run"] == "moco") & (acc["protocol"] == "linear")].iloc[0]
    assert moco["static twin top-1 %"] == _pct(RUNS["moco"][2]["swapped_static/top1"])
    gap = np.array(RUNS["moco"][2]["biased/top1"]) - np.array(RUNS["moco"][2]["swapped/top1"])
    assert moco["gap (pp)"] == _pct(gap)


def test_report_gate_values_are_recomputed_from_the_seeds(report_cfg, tmp_path):
    out, page = _build(report_cfg, tmp_path)
    calibration = json.loads((out / "calibration.json").read_text())
    gates = {g["gate"]: g for g in calibration["gates"]}
    motion = RUNS["motion_learnability"][2]["swapped/top1"]
    m, h = _mean_half(motion)
    assert gates["a"]["swapped"]["mean"] == pytest.approx(m) and gates["a"]["swapped"]["ci95"] == pytest.approx(h)
    assert gates["a"]["status"] == "pass"  # mean 87 % >= 80 %, every seed >= 70 %
    moco = np.array(RUNS["moco"][2]["swapped/top1"])
    oracle = np.array(RUNS["moco+oracle_mask"][2]["swapped/top1"])
    assert gates["c"]["gap_pp"] == pytest.approx(100 * (np.mean(motion) - moco.mean()))
    diffs = 100 * (oracle - moco)
    effect, half = diffs.mean(), stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    p = stats.ttest_rel(oracle, moco).pvalue
    d = gates["d"]
    assert d["effect_pp"] == pytest.approx(effect) and d["effect_ci95_pp"] == pytest.approx(half)
    assert d["p_value"] == pytest.approx(p, rel=1e-9) and d["seeds"] == 3
    assert d["status"] == ("pass" if effect >= 10 and p < 0.05 else "fail") == "pass"
    assert calibration["overall"] == "pass"
    # the page shows the same numbers
    shown = f"{effect:+.1f} ± {half:.1f} pp, p {p:.3g} (3 seeds)"
    assert html.escape(shown) in page
    assert html.escape(f"swapped top-1 {_pct(motion)}%") in page
    assert html.escape(f"below (a) by {100 * (np.mean(motion) - moco.mean()):.1f} pp") in page


def test_report_shows_a_claims_effect_and_p_from_its_seeds(report_cfg, tmp_path):
    tables = load_paper_tables()
    record, diffs = _claim_record(tmp_path, load_config("default"), tables)
    out, page = _build(report_cfg, tmp_path, table_records=[record])
    effect, p = diffs.mean(), stats.ttest_1samp(diffs, 0.0).pvalue
    assert effect == pytest.approx((3.1 + 2.4 + 3.0) / 3) and p < 0.05
    # effect, its 95% interval (seed-level t: no per-video records here), the MDE, then the (Holm, m = 1) p
    sd, t_crit = diffs.std(ddof=1), stats.t.ppf(0.975, 2)
    low, high = effect - t_crit * sd / math.sqrt(3), effect + t_crit * sd / math.sqrt(3)
    mde = brentq(lambda m: stats.nct.sf(t_crit, 2, m * math.sqrt(3) / sd)
                 + np.nan_to_num(stats.nct.cdf(-t_crit, 2, m * math.sqrt(3) / sd)) - 0.8, 1e-6, 100.0)
    # then the seeds at which that MDE falls to ±δ (δ: the default's 3 pp, or the claim's larger stated margin)
    claim = next(c for c in tables["fame_table6"]["claims"] if c["id"] == "grid_beats_fame_ucf101")
    delta = max(3.0, claim.get("margin", 0.0))

    def power(n: int) -> float:
        crit, nc = stats.t.ppf(0.975, n - 1), delta * math.sqrt(n) / sd
        return stats.nct.sf(crit, n - 1, nc) + np.nan_to_num(stats.nct.cdf(-crit, n - 1, nc))

    needed = next(n for n in range(2, 1000) if power(n) >= 0.8)
    assert (f"<td>{effect:+.1f}</td><td title='seeds'>[{low:+.1f}, {high:+.1f}]</td><td>{mde:.1f}</td>"
            f"<td>{needed} seeds</td><td>{p:.3g}</td>") in page
    assert "reproduced</td>" in page


@pytest.mark.parametrize("real, available", [
    ((), True),                 # everything generated: the oracle and the swapped copies exist
    (("pretrain",), False),     # pretraining on a real root: no ground-truth masks, no oracle
    (("downstream",), False),   # testing on a real root: no scene-swapped copy to measure on
    (("pretrain", "downstream"), False),
])
def test_report_gate_d_is_judged_only_on_generated_data(report_cfg, tmp_path, real, available):
    cfg = report_cfg
    cfg["data"]["pretrain_flavour"], cfg["data"]["downstream_flavour"] = "hmdb51", "ucf101"
    flavours = {"pretrain": "hmdb51", "downstream": "ucf101"}
    cfg["data"]["real"] = {flavours[k]: {"root": str(tmp_path / k), "format": flavours[k]} for k in real}
    out, page = _build(cfg, tmp_path)
    gate = next(g for g in json.loads((out / "calibration.json").read_text())["gates"] if g["gate"] == "d")
    if available:
        assert gate["status"] == "pass" and gate["effect_pp"] == pytest.approx(
            100 * (np.mean(RUNS["moco+oracle_mask"][2]["swapped/top1"]) - np.mean(RUNS["moco"][2]["swapped/top1"])))
    else:
        assert gate["status"] == "not available"
        assert "p_value" not in gate


def test_the_results_page_shows_the_reports_gates_claims_and_leaderboard(report_cfg, tmp_path):
    record, diffs = _claim_record(tmp_path, load_config("default"), load_paper_tables())
    out, page = _build(report_cfg, tmp_path, table_records=[record])
    md = (out / "results.md").read_text()
    calibration = json.loads((out / "calibration.json").read_text())
    # one gates row for the primary set, each cell the HTML report's own wording of the same gate
    row = next(line for line in md.splitlines() if line.startswith("| `ucf101` |"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert cells[1] == f"**{calibration['overall']}**" == "**pass**"
    for gate, cell in zip(calibration["gates"], cells[2:]):
        assert cell == f"{gate['status']}: {build.gate_values(gate)}"
        assert html.escape(build.gate_values(gate)) in page
    # the claim: its verdict, effect and (Holm, m = 1) p from its per-seed differences, and the tally
    effect, p = diffs.mean(), stats.ttest_1samp(diffs, 0.0).pvalue
    claim = next(line for line in md.splitlines() if "`grid_beats_fame_ucf101`" in line)
    assert f"| reproduced | {effect:+.1f} |" in claim and f"| {p:.3g} |" in claim
    assert "On each set's own test split: 1 reproduced, 0 contradicted" in md
    # the leaderboard, ranked by swapped top-1 as in the HTML page (first data row: the oracle)
    assert (out / "plots" / "first_screen.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the README's picture
    board = md.split("## Leaderboard (linear probe)")[1].split("## Compute")[0].strip().splitlines()
    assert board[0].startswith("| rank | run |") and board[2].startswith("| 1 | moco+oracle_mask (positive control) |")
    assert f"| {_pct(RUNS['moco+oracle_mask'][2]['swapped/top1'])} |" in board[2]
