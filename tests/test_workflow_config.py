"""The workflow's config (rules/common.smk) is the one `scenebias --profile` builds: the same merge of
config/config.yaml, the --configfile presets and --config, the same validation and planning. Jobs get it as
SCENEBIAS_CONFIG_JSON and their stage hashes come from it, so it must not drift."""
import copy
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("profile, overrides", [("default", None), ("smoke", None), ("paper", None),
                                                ("default", {"tables": ["all"]})])
def test_the_workflow_config_is_the_cli_config(profile, overrides):
    from scenebias.plan import load_config

    expected = json.dumps(load_config(profile, overrides=overrides), sort_keys=True)
    got = _workflow_config([REPO / "config" / "profiles" / f"{profile}.yaml"], overrides)
    assert got == expected


def test_snakemakes_own_merge_would_change_the_paper_profile():
    """Why rules/common.smk merges again instead of taking Snakemake's `config`: Snakemake merges nested mappings
    key by key, so paper.yaml's R(2+1)-D backbone would keep config.yaml's tiny3d options."""
    from snakemake.utils import update_config

    from scenebias.config import BASE_CONFIG, merge_config
    from scenebias.io import read_yaml

    paper = REPO / "config" / "profiles" / "paper.yaml"
    snakemakes = copy.deepcopy(read_yaml(BASE_CONFIG))
    update_config(snakemakes, read_yaml(paper))
    ours, _ = merge_config("paper")
    assert ours["backbone"] == {"name": "r2plus1d_18", "options": {}}
    assert snakemakes["backbone"] == {"name": "r2plus1d_18", "options": {"width": 16}}
