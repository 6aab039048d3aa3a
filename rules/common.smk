# Shared by every rule: the validated config, paths, the run x seed x protocol grid, wildcard constraints.
import hashlib
import json
import re

from scenebias.config import validate as _validate_config
from scenebias.io import write_json

config = _validate_config(config, "snakemake config")  # schema defaults filled in, names checked

PROFILE = config["profile"]
DATA = config["paths"]["data"].format(profile=PROFILE)
RESULTS = config["paths"]["results"].format(profile=PROFILE)
REPORTS = config["paths"]["reports"].format(profile=PROFILE)
METRICS = config["paths"]["metrics"].format(profile=PROFILE, results=RESULTS)
RUNS = list(config["runs"])
SEEDS = [int(s) for s in config["seeds"]]
PROTOCOLS = ["linear", "finetune", "retrieval", "classifier"]
RESOLVED_CONFIG = f"{RESULTS}/config.json"


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


wildcard_constraints:
    run=_alternatives(RUNS),
    seed=r"\d+",
    protocol=_alternatives(PROTOCOLS),


def _write_resolved_config():
    """Jobs read the full validated config from one file; rewritten only when it changes."""
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    try:
        with open(RESOLVED_CONFIG) as fh:
            if fh.read() == text:
                return
    except FileNotFoundError:
        pass
    write_json(RESOLVED_CONFIG, config)


_write_resolved_config()


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


def pretrain_benchmarks():
    return [f"{RESULTS}/benchmarks/pretrain/{run}/seed{seed}.tsv" for run in RUNS for seed in SEEDS]
