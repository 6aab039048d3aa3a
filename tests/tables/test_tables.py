"""Paper tables regenerated: the plan (cells -> runs and evaluations), the claim tests, the outputs."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenebias.analysis import stats as claim_stats
from scenebias.errors import ConfigError
from scenebias.tables.published import load_paper_tables, table_ids
from scenebias.plan import load_config, plan
from scenebias.tables import regenerate as rg
from scenebias.tables.plan import (TablePlan, all_cells, plan_table, resolve_run, selected_tables, table_cells,
                                   table_evaluations)
from scenebias.tables.render import build_table, latex, outputs


@pytest.fixture(scope="module")
def default_cfg():
    """The default preset with every table (`make tables`); `make reproduce` regenerates the headline ones."""
    return load_config("default", overrides={"tables": ["all"]})


@pytest.fixture(scope="module")
def tables():
    return load_paper_tables()


# ------------------------------------------------------------------------------------------------ plan
def test_default_preset_regenerates_the_headline_and_make_tables_every_table(default_cfg):
    assert selected_tables(load_config("default")) == ["be_figure4", "be_figure5", "be_table2"]
    assert selected_tables(default_cfg) == table_ids()
    assert len(table_ids()) == 14


def test_cells_reuse_preset_runs_and_derive_variants(default_cfg, tables):
    cells = {c.row: c for c in table_cells(default_cfg, tables["fame_table3"]) if c.column == "ucf101"}
    assert cells["baseline"].run == "moco"  # the preset's own MoCo run (queue_size 256) is reused
    assert cells["beta_07"].run == "moco+fame@beta~0.7"
    derived = default_cfg["runs"]["moco+fame@beta~0.7"]
    # the preset's options of the method plus exactly the option the table varies
    assert derived["options"] == {**default_cfg["runs"]["moco+fame"]["options"], "beta": 0.7}
    assert derived["from_tables"] is True
    # FAME's default beta is a named variant only if it differs from the preset's run
    from scenebias.plugins import get_method

    default_beta = get_method("moco+fame").options({})["beta"]
    expected = "moco+fame" if default_beta == 0.5 else "moco+fame@beta~0.5"
    assert cells["beta_05"].run == expected


def test_stand_in_flavours_and_unreproducible_cells_say_why(default_cfg, tables):
    cells = {(c.row, c.column): c for c in table_cells(default_cfg, tables["be_table1"])}
    imagenet = cells[("imagenet_supervised_i3d", "ucf101")]
    assert not imagenet.reproduced and "imagenet" in imagenet.reason
    k400 = cells[("moco_i3d_k400", "hmdb51")]
    assert k400.pretrain_flavour == "ucf101" and k400.downstream == "hmdb51" and k400.protocol == "finetune"
    actor = {(c.row, c.column): c for c in table_cells(default_cfg, tables["be_figure5"])}
    assert actor[("moco_be", "actor_hmdb51")].downstream == "actor_hmdb51"
    assert actor[("moco_be", "actor_hmdb51")].protocol == "finetune"


def test_diving48_pretraining_gets_its_own_run(default_cfg, tables):
    cells = {c.row: c for c in table_cells(default_cfg, tables["be_table2"])}
    run = cells["moco_be_i3d_diving48"].run
    assert default_cfg["runs"][run]["flavour"] == "diving48"
    assert run != cells["moco_be_i3d_ucf101"].run


def test_static_bias_figure_adds_reference_and_static_classifier(default_cfg, tables):
    evals = table_evaluations(default_cfg, "be_figure4")
    protocols = {(p, d) for _, d, p in evals}
    assert ("classifier", "hmdb51") in protocols and ("finetune", "hmdb51") in protocols
    static = [r for r, _, p in evals if p == "classifier"][0]
    spec = default_cfg["runs"][static]
    assert spec["method"] == "supervised" and spec["options"]["static"] is True and spec["flavour"] == "hmdb51"


def test_table_runs_are_idempotent_and_selectable(default_cfg):
    again = plan(default_cfg, "again")
    assert again["runs"] == default_cfg["runs"]
    only = load_config("default", overrides={"tables": ["fame_table4"]})
    derived = {r for r, s in only["runs"].items() if s.get("from_tables")}
    assert derived == {"moco+fame@background~intra"}
    with pytest.raises(ConfigError, match="fame_table99"):
        load_config("default", overrides={"tables": ["fame_table99"]})


def test_existing_identical_run_is_found(default_cfg):
    assert resolve_run(default_cfg, "moco", {}, "ucf101") == "moco"
    assert resolve_run(default_cfg, "moco", {"queue_size": 256}, "ucf101") == "moco"
    assert resolve_run(default_cfg, "moco", {"queue_size": 64}, "ucf101") == "moco@queue_size~64"


# ------------------------------------------------------------------------------------------------ claims
def _values(pairs: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [{"row": r, "column": c, "seed": s, "value": v} for (r, c), vals in pairs.items()
            for s, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["row", "column", "seed", "value"])


def test_paired_test_verdicts():
    greater = claim_stats.paired_comparison(np.array([2.0, 2.5, 1.8]), "greater", 0.0, None)
    assert greater["verdict"] == "reproduced" and greater["p_value"] < 0.05 and greater["effect"] == pytest.approx(2.1)
    assert claim_stats.paired_comparison(np.array([-2.0, -2.5, -1.8]), "greater", 0.0, None)["verdict"] == "contradicted"
    assert claim_stats.paired_comparison(np.array([3.0, -2.0, 0.5]), "greater", 0.0, None)["verdict"] == "inconclusive"
    assert claim_stats.paired_comparison(np.array([3.0]), "greater", 0.0, None)["verdict"] == "inconclusive"  # one seed: no test
    # identical differences (discrete accuracies): exact sign test, so three seeds cannot be "certain"
    same = claim_stats.paired_comparison(np.array([0.7, 0.7, 0.7]), "greater", 0.0, None)
    assert same["verdict"] == "inconclusive" and same["p_value"] == pytest.approx(0.25)
    assert claim_stats.paired_comparison(np.full(6, 0.7), "greater", 0.0, None)["verdict"] == "reproduced"  # 2 * 0.5**6 < 0.05
    # the same difference reached through different float sums (round-off in the 15th digit) is no spread either
    noisy = np.array([100 * (5 / 6 - 1), 100 * (10 / 12 - 1), 100 * 5 / 6 - 100]) + np.array([0, 1e-13, -1e-13])
    assert noisy.std() > 0
    judged = claim_stats.paired_comparison(noisy, "greater", 0.0, None)
    assert judged["p_value"] == pytest.approx(0.25) and judged["verdict"] == "inconclusive"
    assert judged["d_z"] == -math.inf
    assert claim_stats.paired_comparison(np.array([-2.0, -2.5, -1.8]), "less", 0.0, None)["verdict"] == "reproduced"
    # equivalence within ±1 pp: tight differences around 0 are equal, far ones are not
    assert claim_stats.paired_comparison(np.array([0.1, -0.1, 0.05, 0.0]), "approx_equal", 0.0, 1.0)["verdict"] == "reproduced"
    assert claim_stats.paired_comparison(np.array([5.0, 5.2, 4.9, 5.1]), "approx_equal", 0.0, 1.0)["verdict"] == "contradicted"


def test_claims_judged_from_values(default_cfg, tables):
    table = tables["fame_table4"]
    values = _values({("none", "ucf101"): [50, 51, 52], ("none", "hmdb51"): [30, 31, 32],
                      ("intra_video", "ucf101"): [55, 56, 58], ("intra_video", "hmdb51"): [35, 36, 38],
                      ("inter_video", "ucf101"): [49, 51, 52], ("inter_video", "hmdb51"): [29, 31, 33]})
    # inter − intra: p 0.0034 on each column, still < 0.05 after Holm over the claim's two comparisons
    verdicts = {v["claim"]: v for v in rg.judge_claims(plan_table(default_cfg, table), values)}
    assert verdicts["intra_beats_none"]["verdict"] == "reproduced"
    assert verdicts["inter_beats_intra"]["verdict"] == "contradicted"
    # the effect shown is the deciding (contradicting) comparison's, not a mean over columns
    assert verdicts["inter_beats_intra"]["effect"] < 0
    # inter − none: [−1, 0, 0] pp (UCF101) and [−1, 0, 1] (HMDB51): neither direction is significant, but both are
    # bounded within ±3 pp (the default's smallest meaningful effect) by the TOST, also after Holm over the two
    gaps = (np.array([-1.0, 0.0, 0.0]), np.array([-1.0, 0.0, 1.0]))
    tost = [max(stats.ttest_1samp(g, -3.0, alternative="greater").pvalue,
                stats.ttest_1samp(g, 3.0, alternative="less").pvalue) for g in gaps]
    assert max(2 * min(tost), max(tost)) < 0.05
    assert verdicts["inter_beats_none"]["verdict"] == "absent at this scale"
    assert all(v["holds_on_published"] is True for v in verdicts.values())


def test_claims_judged_again_on_the_scene_swapped_test(default_cfg, tables):
    """Biased top-1 tied (the scene shortcut's ceiling), swapped top-1 apart: the two verdicts differ, and the
    HMDB51-like column, which has no swapped copy, is named as not tested."""
    table = tables["fame_table4"]
    values = _values({("none", "ucf101"): [90, 90, 91], ("none", "hmdb51"): [30, 31, 32],
                      ("intra_video", "ucf101"): [90, 91, 90], ("intra_video", "hmdb51"): [31, 30, 32]})
    swapped = {("none", "ucf101"): [5.0, 6.0, 5.5], ("intra_video", "ucf101"): [9.0, 10.5, 9.8]}
    values["swapped"] = [swapped[(r, c)][s] if (r, c) in swapped else np.nan
                         for r, c, s in zip(values["row"], values["column"], values["seed"])]
    claim = {v["claim"]: v for v in rg.judge_claims(plan_table(default_cfg, table), values)}["intra_beats_none"]
    assert claim["verdict"] == "absent at this scale"  # tied within ±3 pp on the biased test, both columns
    assert claim["swapped_verdict"] == "reproduced" and claim["swapped_effect"] == pytest.approx(4.267, abs=1e-3)
    assert "hmdb51" in claim["swapped_detail"] and "no scene-swapped test set" in claim["swapped_detail"]
    no_swap = {v["claim"]: v for v in rg.judge_claims(plan_table(default_cfg, table), values.assign(swapped=np.nan))}
    assert no_swap["intra_beats_none"]["swapped_verdict"] == "not testable"


def test_claims_against_external_or_same_run_are_not_testable(default_cfg, tables):
    verdicts = {v["claim"]: v for v in rg.judge_claims(plan_table(default_cfg, tables["fame_table1"]), _values({}))}
    assert verdicts["fame_beats_mlrep_linear"]["verdict"] == "not testable"
    assert "external" in verdicts["fame_beats_mlrep_linear"]["detail"]
    assert math.isnan(verdicts["fame_beats_mlrep_linear"]["p_value"])  # no test, no number
    # BE Table 2: MoCo+BE (I3D) pretrained on "Kinetics" and on UCF101, and MoCo+BE R3D-18 on UCF101, are one run
    # on generated data (Kinetics runs on the UCF101 flavour, the preset's backbone): comparing them is not a test
    table = tables["be_table2"]
    claim = next(c for c in table["claims"] if c["id"] == "be_state_of_the_art")
    same_run_only = {**claim, "pairs": [["moco_be_i3d_k400", "moco_be_i3d_ucf101"],
                                        ["moco_be_i3d_k400", "moco_be_r3d18_ucf101"]]}
    judged = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [same_run_only]}), _values({}))[0]
    assert judged["verdict"] == "not testable" and judged["n_seeds"] == 0
    assert judged["detail"] == ("moco_be_i3d_k400/diving48 vs moco_be_i3d_ucf101/diving48: the same run and "
                                "evaluation on this preset; moco_be_i3d_k400/diving48 vs moco_be_r3d18_ucf101/"
                                "diving48: the same run and evaluation on this preset")
    # the full claim with numbers: the testable pairs are tested, the others are named with their reason
    values = _values({(c.row, c.column): [60.0 + s for s in (0, 1.5, 2.5)] if c.row == "moco_be_i3d_k400"
                      else [40.0 + s for s in (0, 0.5, 2.0)] for c in table_cells(default_cfg, table) if c.reproduced})
    full = rg.judge_claims(plan_table(default_cfg, {**table, "claims": [claim]}), values)[0]
    tested, not_tested = full["detail"].split("; not tested: ")
    assert len(tested.split("; ")) == 5 and full["verdict"] == "reproduced"
    reasons = [part.split(": ", 1)[1] for part in not_tested.split("; ")]
    assert sorted(reasons) == sorted(["an external row (published only)"] * 6
                                     + ["the same run and evaluation on this preset"] * 2
                                     + ["no real root and no generated stand-in for sports1m",
                                        "no real root and no generated stand-in for imagenet"])


def test_correlation_of_class_points():
    rng = np.random.default_rng(0)
    static = np.linspace(10, 90, 12)
    points = pd.DataFrame({"class": [f"c{i}" for i in range(12)] * 2, "seed": [0] * 12 + [1] * 12,
                           "static_top1": np.tile(static, 2),
                           "relative_improvement": np.tile(-0.8 * static, 2) + rng.normal(0, 3, 24)})
    r, p, k = rg.correlation(points)
    assert r < -0.9 and p < 1e-3 and k == 12
    flat = points.assign(relative_improvement=1.0)
    assert math.isnan(rg.correlation(flat)[0])  # no spread: undefined, not a number made up


# ------------------------------------------------------------------------------------------------ outputs
def _fake_records(cfg, table, results, value_of):
    for cell in all_cells(cfg, table):
        if not cell.reproduced:
            continue
        for seed in cfg["seeds"]:
            path = rg.eval_path_in(results)(cell.run, seed, cell.downstream, cell.protocol)
            path.parent.mkdir(parents=True, exist_ok=True)
            acc = value_of(cell, seed)
            test = {"top1": acc, "per_class_acc": [acc] * 6}
            metrics = {"test": test}
            if cell.downstream == cfg["data"]["downstream_flavour"]:
                metrics["swapped"] = {"top1": acc / 10}  # the primary set also has its scene-swapped copy
            record = {"run": cell.run, "seed": seed, "protocol": cell.protocol, "downstream": cell.downstream,
                      "test_sets": {"test": cell.downstream}, "results": metrics}
            path.write_text(json.dumps(record))


def test_build_table_writes_every_output(default_cfg, tables, tmp_path):
    table = tables["fame_table3"]
    bump = {"moco": 0.0}

    def value_of(cell, seed):
        return 0.5 + 0.01 * seed + (0.0 if bump.get(cell.run) is not None else 0.05 + 0.002 * seed * seed)

    _fake_records(default_cfg, table, tmp_path / "results", value_of)
    record = build_table(default_cfg, "fame_table3", tmp_path / "results", tmp_path / "out")
    files = outputs(tmp_path / "out", "fame_table3")
    assert all(f.is_file() for f in files.values())
    summary = pd.read_csv(files["csv"])
    base = summary[(summary["row"] == "baseline") & (summary["column"] == "ucf101")].iloc[0]
    assert base["mean"] == pytest.approx(51.0) and base["seeds"] == 3 and base["published"] == 75.8
    verdicts = {c["claim"]: c["verdict"] for c in record["claims"]}
    assert verdicts["beta_below_one_beats_baseline"] == "reproduced"  # +5.0, +5.2, +5.8 pp on the seeds
    swapped = {c["claim"]: c["swapped_verdict"] for c in record["claims"]}
    assert swapped["beta_below_one_beats_baseline"] == "reproduced"  # +0.50, +0.52, +0.58 pp (UCF101 only)
    md = files["md"].read_text()
    assert "75.8" in md and "51.0 ± " in md and "beta_below_one_beats_baseline" in md
    assert "UCF101 ours, scene-swapped" in md and "5.1 ± " in md  # HMDB51 has no swapped copy
    assert "HMDB51 ours, scene-swapped" not in md
    assert "on the scene-swapped test" in md and "| reproduced, +0.5 [" in md
    assert "\\begin{table}" in files["tex"].read_text() and "$\\pm$" in files["tex"].read_text()
    assert files["png"].stat().st_size > 5000


def test_missing_evaluation_is_an_error_naming_the_file(default_cfg, tmp_path):
    from scenebias.errors import DataError

    with pytest.raises(DataError, match="eval/moco/seed0/ucf101/finetune.json"):
        build_table(default_cfg, "fame_table3", tmp_path / "results", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_retrieval_cells_read_their_table_s_variant_and_level(default_cfg, tables):
    """FAME Table 2 reads the centred variant, BE Table 3 the plain one (their `protocol_options.variant`); BE
    Table 3 reads the clip level where the preset computes it (evaluate.retrieval.levels), else the video level."""
    fame = [c for c in table_cells(default_cfg, tables["fame_table2"]) if c.reproduced]
    be = [c for c in table_cells(default_cfg, tables["be_table3"]) if c.reproduced]
    assert fame and {c.retrieval for c in fame} == {("centred", "video")}
    assert be and {c.retrieval for c in be} == {("plain", "video")}
    clip_cfg = load_config("default", overrides={"tables": ["be_table3"],
                                                 "evaluate": {"retrieval": {"levels": ["video", "clip"]}}})
    clip_cells = [c for c in table_cells(clip_cfg, tables["be_table3"]) if c.reproduced]
    assert {c.retrieval for c in clip_cells} == {("plain", "clip")}
    assert {c.eval_key for c in clip_cells} == {c.eval_key for c in be}  # the same jobs compute both levels

    recalls = {"centred": 0.1, "plain": 0.2, "clip_centred": 0.3, "clip_plain": 0.4}
    record = {"test_sets": {"test": "hmdb51"},
              "results": {key: {"test": {"R@1": r, "R@5": r}} for key, r in recalls.items()}}
    cell = next(c for c in clip_cells if c.k in (1, 5))
    assert rg.cell_value(record, cell, "x.json") == pytest.approx(40.0)
    assert rg.cell_value(record, next(c for c in be if c.k in (1, 5)), "x.json") == pytest.approx(20.0)
    assert rg.cell_value(record, next(c for c in fame if c.k in (1, 5)), "x.json") == pytest.approx(10.0)


def test_latex_is_escaped_by_pandas_and_shows_the_papers_dagger(default_cfg):
    """FAME Table 6's '\\dagger' rows (pretrained on Kinetics-400) print a superscript dagger, not a raw command; the
    cells, the headers and the caption are escaped as pandas escapes LaTeX."""
    table = load_paper_tables()["fame_table6"]
    cells = tuple(dataclasses.replace(c, run=None, reason="not run here") for c in all_cells(default_cfg, table))
    summary = rg.summarise(table, rg.collect(TablePlan(default_cfg, table, cells), None).values)
    tex = latex(table, summary, "a_b & 50% of #1 → ± α")
    assert "Grid$^\\dagger$ & i3d / kinetics400 & 86.5 & -- &" in tex
    assert "FAME$^\\dagger$ &" in tex and " \\dagger" not in tex
    assert "\\caption{a\\_b \\& 50\\% of \\#1 $\\to$ $\\pm$ $\\alpha$}" in tex
