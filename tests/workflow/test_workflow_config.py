"""The workflow's config (rules/common.smk) is the one `scenebias --preset` builds: the same merge of
config/config.yaml, the --configfile presets and --config, the same validation and planning. Jobs get it as
SCENEBIAS_CONFIG_JSON and their stage hashes come from it, so it must not drift."""
import copy
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _workflow_config(configfiles, config=None) -> str:
    """SCENEBIAS_CONFIG_JSON as the parsed workflow sets it (Snakemake's API, in this process)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    before = os.environ.pop("SCENEBIAS_CONFIG_JSON", None)
    try:
        with SnakemakeApi(OutputSettings()) as api:
            api.workflow(resource_settings=ResourceSettings(), snakefile=REPO / "Snakefile", workdir=REPO,
                         config_settings=ConfigSettings(configfiles=configfiles, config=config or {}))._workflow
            return os.environ["SCENEBIAS_CONFIG_JSON"]
    finally:
        if before is None:
            os.environ.pop("SCENEBIAS_CONFIG_JSON", None)
        else:
            os.environ["SCENEBIAS_CONFIG_JSON"] = before


@pytest.mark.parametrize("preset, overrides", [("default", None), ("smoke", None), ("paper", None),
                                                ("default", {"tables": ["all"]})])
def test_the_workflow_config_is_the_cli_config(preset, overrides):
    from scenebias.plan import load_config

    expected = json.dumps(load_config(preset, overrides=overrides), sort_keys=True)
    got = _workflow_config([REPO / "config" / "presets" / f"{preset}.yaml"], overrides)
    assert got == expected


def _workflow_runs(configfiles) -> list[str]:
    """RUNS as rules/common.smk lists them (the order of metrics.csv and the report)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        return list(api.workflow(resource_settings=ResourceSettings(), snakefile=REPO / "Snakefile", workdir=REPO,
                                 config_settings=ConfigSettings(configfiles=configfiles))._workflow.globals["RUNS"])


@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_the_workflow_lists_runs_in_the_cli_order(preset):
    """Snakemake reads config/config.yaml into the --configfile values (a preset's runs first); validation puts
    config.yaml's runs first again, as the CLI merges them."""
    from scenebias.config import BASE_CONFIG
    from scenebias.io import read_yaml
    from scenebias.plan import load_config

    runs = _workflow_runs([REPO / "config" / "presets" / f"{preset}.yaml"])
    assert runs == list(load_config(preset)["runs"])
    base = list(read_yaml(BASE_CONFIG)["runs"])
    assert runs[:len(base)] == base


def test_the_workflow_reads_snakemakes_config_not_its_internals():
    """rules/common.smk validates the `config` Snakemake merged (configfile directive, --configfile, --config),
    not the files and values it was given (workflow.overwrite_configfiles, workflow.config_settings: not API)."""
    sources = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    for path in sources:
        text = path.read_text()
        assert "overwrite_configfiles" not in text and "config_settings" not in text, path


def test_a_file_that_names_another_backbone_starts_from_its_defaults_with_options_null(tmp_path):
    """Key-by-key merging keeps the smoke preset's tiny3d width under a file's R3D-18: an error that says how
    to drop it; `options: null` gives R3D-18's defaults. The paper preset's backbone needs neither, because
    config/config.yaml names tiny3d without options."""
    from scenebias.errors import ConfigError
    from scenebias.plan import load_config

    other = tmp_path / "r3d.yaml"
    other.write_text("backbone: {name: r3d_18}\n")
    with pytest.raises(ConfigError, match=r"backbone\.options: \['width'\].*'r3d_18'.*options: null"):
        load_config("smoke", [other])
    other.write_text("backbone: {name: r3d_18, options: null}\n")
    assert load_config("smoke", [other])["backbone"] == {"name": "r3d_18", "options": {}}
    assert load_config("paper")["backbone"] == {"name": "r2plus1d_18", "options": {}}
    assert load_config("default")["backbone"] == {"name": "tiny3d", "options": {"width": 16}}  # written out
