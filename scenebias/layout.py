"""The workflow's names and paths: one home for the results layout, the evaluation protocols and the CAM runs.

`rules/common.smk` (every rule's outputs, logs and benchmarks), `scenebias.cli` (each command's default paths)
and `scenebias.tables.regenerate` (the evaluation records a table reads) all spell paths through this module.

Each path function takes the results folder (`paths.results` of the config, formatted) and names, and returns
the path as a string with '/' separators. Passed Snakemake wildcards ("{run}", "{seed}") it returns the rule's
pattern, so a rule's output and a command's default cannot drift apart:

    model(RESULTS, "{run}", "{seed}")  ->  "results/smoke/pretrain/{run}/seed{seed}/model.pt"

Logs and benchmark records are named by a job id relative to `<results>/logs/` and `<results>/benchmarks/` (the
report's compute table names a job by that id: scenebias.report.build.compute_table).
"""
from __future__ import annotations

# The suite's evaluation protocols, in this order: the `{protocol}` wildcard's values and `scenebias evaluate
# --protocol`'s choices. Each is registered where it is defined (scenebias.evaluate.registry); config/schema.yaml
# spells the list as JSON schema enums (runs.*.protocols, evaluate.protocols); tests/workflow/test_layout.py keeps all three
# equal.
PROTOCOLS = ("linear", "finetune", "retrieval", "classifier")

# The runs whose class activation maps FAME Figure 4 and BE Figures 6-7 show (those the config has): the cams
# rule's inputs and `scenebias cams`'s default models.
CAM_RUNS = ("moco", "moco+be", "moco+fame")


# --------------------------------------------------------------------------------------------- outputs
def model(results, run, seed) -> str:
    """A pretrained model (the pretrain job's output)."""
    return f"{results}/pretrain/{run}/seed{seed}/model.pt"


def train_log(results, run, seed) -> str:
    """A pretrained model's training log, beside it (`train_log(results, "*", "*")` globs every run's)."""
    return f"{results}/pretrain/{run}/seed{seed}/train_log.json"


def checkpoints(results, run, seed) -> str:
    """The folder a pretraining job keeps its checkpoints in (the workflow adds one subfolder per setting)."""
    return f"{results}/checkpoints/{run}/seed{seed}"


def evaluation(results, run, seed, downstream, protocol) -> str:
    """One evaluation record (metrics JSON): a run's model, one protocol, one downstream flavour."""
    return f"{results}/{_evaluation_id(run, seed, downstream, protocol, 'eval')}.json"


def mask_quality(results) -> str:
    return f"{results}/analysis/mask_quality.csv"


def cams_dir(results, seed=None) -> str:
    """The class activation maps (cams.png, cams.csv): per seed in the workflow; `scenebias cams` without an
    output writes them one level up."""
    return f"{results}/analysis/cams" + (f"/seed{seed}" if seed is not None else "")


def calibration(results) -> str:
    return f"{results}/calibration.json"


# ---------------------------------------------------------------------------------------------- job ids
GENERATE = "generate"
AGGREGATE = "aggregate"
CALIBRATION = "calibration"
REPORT = "report"
ACTOR_HMDB51 = "actor_hmdb51"
MASK_QUALITY = "analysis/mask_quality"
COMBINED_MANIFEST = "manifest/combined"


def pretrain_job(run, seed) -> str:
    return f"pretrain/{run}/seed{seed}"


def evaluate_job(run, seed, downstream, protocol) -> str:
    return _evaluation_id(run, seed, downstream, protocol, "evaluate")


def frame_cache_job(flavour) -> str:
    return f"frame_cache/{flavour}"


def manifest_job(flavour) -> str:
    return f"manifest/{flavour}"


def cams_job(seed) -> str:
    return f"analysis/cams/seed{seed}"


def table_job(table) -> str:
    return f"tables/{table}"


def log(results, job: str) -> str:
    """A job's log: <results>/logs/<job id>.log"""
    return f"{results}/logs/{job}.log"


def benchmark(results, job: str) -> str:
    """A job's Snakemake `benchmark:` record: <results>/benchmarks/<job id>.tsv"""
    return f"{results}/benchmarks/{job}.tsv"


def _evaluation_id(run, seed, downstream, protocol, kind: str) -> str:
    return f"{kind}/{run}/seed{seed}/{downstream}/{protocol}"


__all__ = ["PROTOCOLS", "CAM_RUNS", "model", "train_log", "checkpoints", "evaluation", "mask_quality", "cams_dir", "calibration",
           "pretrain_job", "evaluate_job", "frame_cache_job", "manifest_job", "cams_job", "table_job", "log",
           "benchmark", "GENERATE", "AGGREGATE", "CALIBRATION", "REPORT", "ACTOR_HMDB51", "MASK_QUALITY",
           "COMBINED_MANIFEST"]
