"""One home for the workflow's names and paths (scenebias.layout): the evaluation protocols, the CAM runs and the
results layout, as the schema, the workflow's rules, the CLI, the stages and the tables use them."""
import re
from pathlib import Path

import pytest
import yaml

from scenebias import layout

REPO = Path(__file__).resolve().parents[2]


def _protocol_enums(node, where=""):
    """Every JSON-schema `enum` in config/schema.yaml that lists protocols (it names `linear`), with its path."""
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list) and "linear" in node["enum"]:
            yield where, node["enum"]
        for key, value in node.items():
            yield from _protocol_enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _protocol_enums(value, f"{where}/{i}")


def test_the_schema_spells_the_protocols_of_the_one_constant():
    """config/schema.yaml stays JSON schema (a literal enum, twice: runs.*.protocols and evaluate.protocols); the
    lists must be scenebias.layout.PROTOCOLS, and the schema's default a subset of it."""
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text(encoding="utf-8"))
    enums = list(_protocol_enums(schema))
    assert len(enums) == 2, enums
    for where, enum in enums:
        assert tuple(enum) == layout.PROTOCOLS, where
    default = schema["properties"]["evaluate"]["properties"]["protocols"]["default"]
    assert set(default) <= set(layout.PROTOCOLS)


def test_every_protocol_has_an_evaluation_and_a_cli_choice():
    from scenebias.cli import build_parser
    from scenebias.evaluate.registry import protocols

    # registered where each is defined; layout.PROTOCOLS fixes the workflow's order
    assert sorted(protocols()) == sorted(layout.PROTOCOLS)
    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    choices = next(a.choices for a in evaluate._actions if a.dest == "protocol")
    assert tuple(choices) == layout.PROTOCOLS


def test_paper_table_protocols_map_to_suite_protocols():
    """scenebias.tables.plan.PROTOCOLS maps a paper's protocol to the suite's evaluation that reproduces it."""
    from scenebias.tables.plan import PROTOCOLS as PAPER_PROTOCOLS

    assert set(PAPER_PROTOCOLS.values()) <= set(layout.PROTOCOLS)


def test_paths_with_wildcards_are_the_rule_patterns():
    assert layout.model("results/smoke", "{run}", "{seed}") == "results/smoke/pretrain/{run}/seed{seed}/model.pt"
    assert layout.evaluation("r", "moco", 0, "ucf101", "linear") == "r/eval/moco/seed0/ucf101/linear.json"
    assert layout.log("r", layout.evaluate_job("moco", 0, "ucf101", "linear")) == \
        "r/logs/evaluate/moco/seed0/ucf101/linear.log"
    assert layout.benchmark("r", layout.pretrain_job("moco", 1)) == "r/benchmarks/pretrain/moco/seed1.tsv"
    assert layout.checkpoints("r", "moco", 2) == "r/checkpoints/moco/seed2"
    assert layout.cams_dir("r", 0) == "r/analysis/cams/seed0" and layout.cams_dir("r") == "r/analysis/cams"


def test_tables_read_the_evaluations_where_the_workflow_writes_them(tmp_path):
    from scenebias.tables.regenerate import eval_path_in

    path = eval_path_in(tmp_path)("moco+be", 2, "hmdb51", "finetune")
    assert path == tmp_path / "eval" / "moco+be" / "seed2" / "hmdb51" / "finetune.json"
    assert str(path) == layout.evaluation(tmp_path, "moco+be", 2, "hmdb51", "finetune")


def _pattern(f) -> str:
    """A rule's file pattern without its wildcard constraints: {run,moco|dsm} -> {run}."""
    return re.sub(r"\{(\w+),[^}]*\}", r"{\1}", str(f))


@pytest.fixture(scope="module")
def smoke_workflow():
    """The parsed workflow of the smoke preset (Snakemake's API; the rule objects are internal to the pinned
    Snakemake 9, as in tests/workflow/test_profiles.py)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=REPO / "Snakefile", workdir=REPO,
                                config_settings=ConfigSettings(configfiles=[REPO / "config/presets/smoke.yaml"]))
        wf = workflow._workflow
        yield {rule.name: rule for rule in wf.rules}, wf.globals


def test_the_rules_write_where_the_layout_says(smoke_workflow):
    rules, g = smoke_workflow
    results = g["RESULTS"]
    assert _pattern(rules["pretrain"].output[0]) == layout.model(results, "{run}", "{seed}")
    assert _pattern(rules["pretrain"].log[0]) == layout.log(results, layout.pretrain_job("{run}", "{seed}"))
    wildcards = ("{run}", "{seed}", "{downstream}", "{protocol}")
    assert _pattern(rules["evaluate"].output[0]) == layout.evaluation(results, *wildcards)
    assert _pattern(rules["evaluate"].benchmark) == layout.benchmark(results, layout.evaluate_job(*wildcards))
    assert _pattern(rules["cams"].output[0]) == f"{layout.cams_dir(results, '{seed}')}/cams.png"
    assert g["CAM_RUNS"] == [r for r in layout.CAM_RUNS if r in g["RUNS"]]
    assert g["PROTOCOLS"] == list(layout.PROTOCOLS)


def test_every_job_that_runs_scenebias_declares_the_managed_environment(smoke_workflow):
    """`--sdm conda` runs each of them in envs/scenebias.yaml (docs/workflow.md, "Managed environment"); without it the
    directive is ignored."""
    rules, _ = smoke_workflow
    shell_rules = {name for name, rule in rules.items() if rule.shellcmd and "scenebias " in rule.shellcmd}
    assert {"generate", "frame_cache", "pretrain", "evaluate", "mask_quality", "cams", "paper_table",
            "report"} <= shell_rules
    for name in shell_rules:
        env = rules[name].conda_env
        assert env is not None, name
        assert (REPO / "rules" / str(env)).resolve() == REPO / "envs" / "scenebias.yaml", name
    # rules a smoke config does not define (real roots' manifests, Actor-HMDB51) too: one env per shell rule
    for smk in (REPO / "rules").glob("*.smk"):
        if smk.name != "common.smk":
            text = smk.read_text(encoding="utf-8")
            shells = text.count('"scenebias ')  # rules whose shell runs the suite (not a plain `echo ... exit 1`)
            assert shells == text.count("conda:") == text.count("SCENEBIAS_ENV"), smk.name


def test_the_schema_spells_the_registered_split_formats():
    """A data.real root's `format` enum in config/schema.yaml is the registered split formats, in their order
    (scenebias.data.formats: each format module registers its reader)."""
    from scenebias.data.formats import SPLIT_FORMATS, format_names

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text(encoding="utf-8"))
    real = schema["properties"]["data"]["properties"]["real"]["additionalProperties"]
    assert tuple(real["properties"]["format"]["enum"]) == format_names() == tuple(SPLIT_FORMATS.registered())
    assert SPLIT_FORMATS.names() == ["diving48", "hmdb51", "kinetics400", "ucf101"]


def test_every_paper_table_protocol_is_a_suite_protocol_or_a_registered_table_kind():
    """benchmarks/paper_tables/schema.yaml's protocols: each maps to a suite protocol (scenebias.tables.plan.PROTOCOLS)
    or names a kind of table registered in scenebias.tables.kinds; every registered kind is allowed there."""
    from scenebias.tables.kinds import TABLE_KINDS, table_kind
    from scenebias.tables.plan import PROTOCOLS as PAPER_PROTOCOLS

    schema = yaml.safe_load((REPO / "benchmarks" / "paper_tables" / "schema.yaml").read_text(encoding="utf-8"))
    allowed = set(schema["$defs"]["protocol"]["enum"])
    table_kind({"protocol": "linear"})  # imports every kind module
    assert set(TABLE_KINDS.names()) <= allowed
    assert allowed == set(PAPER_PROTOCOLS) | set(TABLE_KINDS.names())
