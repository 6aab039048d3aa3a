# Shared by every rule: the validated config, paths, the run x seed x protocol grid, wildcard constraints.
import hashlib
import json
import os
import re

from scenebias.config import validate as _validate_config
from scenebias.data.manifest import manifest_options as _manifest_options
from scenebias.pipeline import dataset_manifests as _dataset_manifests, manifest_path as _manifest_path

config = _validate_config(config, "snakemake config")  # schema defaults filled in, names checked

PROFILE = config["profile"]
DATA = config["paths"]["data"].format(profile=PROFILE)
RESULTS = config["paths"]["results"].format(profile=PROFILE)
REPORTS = config["paths"]["reports"].format(profile=PROFILE)
METRICS = config["paths"]["metrics"].format(profile=PROFILE, results=RESULTS)
RUNS = list(config["runs"])
REAL_ROOTS = list(config["data"].get("real") or {})
MANIFEST = str(_manifest_path(config))  # what pretraining depends on: generated manifest.json, or the combined one
MANIFEST_DIR = str(_manifest_options(config)["dir"])
DATASET_MANIFESTS = {f: str(p) for f, p in _dataset_manifests(config).items()}
SEEDS = [int(s) for s in config["seeds"]]
PROTOCOLS = ["linear", "finetune", "retrieval", "classifier"]


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


wildcard_constraints:
    run=_alternatives(RUNS),
    seed=r"\d+",
    protocol=_alternatives(PROTOCOLS),


# Jobs get the validated config through the environment, not a shared file: two invocations with different
# configs (a profile and a study, say) can then run side by side on one results folder. It is not a
# params entry on purpose: each job's params carry only the hash of the sections it depends on.
os.environ["SCENEBIAS_CONFIG_JSON"] = json.dumps(config, sort_keys=True)


envvars:
    "SCENEBIAS_CONFIG_JSON",


def section_hash(*keys, run=None):
    """Hash of the config sections a job depends on: a params entry, so editing them reruns the job."""
    part = {k: config.get(k) for k in keys}
    if run is not None:
        part["run"] = config["runs"][run]
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]


def run_protocols(run):
    return config["runs"][run].get("protocols") or config["evaluate"]["protocols"]


def eval_outputs():
    return [
        f"{RESULTS}/eval/{run}/seed{seed}/{protocol}.json"
        for run in RUNS
        for seed in SEEDS
        for protocol in run_protocols(run)
    ]


def benchmark_files():
    """Snakemake `benchmark:` records of every heavy job, for the report's compute table."""
    files = [f"{RESULTS}/benchmarks/generate.tsv", f"{RESULTS}/benchmarks/analysis/mask_quality.tsv"]
    files += [f"{RESULTS}/benchmarks/pretrain/{run}/seed{seed}.tsv" for run in RUNS for seed in SEEDS]
    files += [f"{RESULTS}/benchmarks/evaluate/{run}/seed{seed}/{protocol}.tsv"
              for run in RUNS for seed in SEEDS for protocol in run_protocols(run)]
    return files
