# Shared by every rule: the validated config, paths, the run x seed x protocol grid, wildcard constraints.
import json
import os
import re

from scenebias import layout
from scenebias.plan import plan as _validate_config
from scenebias.plugins import get_method as _get_method
from scenebias.data.manifest import manifest_options as _manifest_options
from scenebias.data.sources import is_generated as _is_generated, primary_ground_truth as _primary_ground_truth
from scenebias.resolve import cam_flavours as _cam_flavours, data_stage as _data_stage
from scenebias.resolve import dataset_manifests as _dataset_manifests, manifest_path as _manifest_path
from scenebias.resolve import evaluation_set_copies as _evaluation_set_copies
from scenebias.resolve import static_twin_for as _static_twin_for, test_sets_for as _test_sets_for
from scenebias.provenance import SPEED_ONLY_KEYS, stable_hash
from scenebias.tables.plan import selected_tables as _selected_tables, table_evaluations as _table_evaluations


# `config` is Snakemake's own merge: config/config.yaml (the Snakefile's configfile directive), then each
# --configfile, then --config, mappings key by key (`scenebias --preset` merges the same way,
# scenebias.config.merge_config). Validation fills the schema's defaults, orders the runs and plans the tables' runs.
config = _validate_config(config, "config/config.yaml + --configfile + --config")

PRESET = config["preset"]
DATA = config["paths"]["data"].format(preset=PRESET)
RESULTS = config["paths"]["results"].format(preset=PRESET)
REPORTS = config["paths"]["reports"].format(preset=PRESET)
METRICS = config["paths"]["metrics"].format(preset=PRESET, results=RESULTS)
RUNS = list(config["runs"])
REAL_ROOTS = list(config["data"].get("real") or {})
# Every flavour's manifest in one (generated manifest.json, or the combined one): the paper tables' and the
# report's provenance. A job that reads data takes its own flavours' manifests instead (flavour_manifests).
MANIFEST = str(_manifest_path(config))
MANIFEST_DIR = str(_manifest_options(config)["dir"])
DATASET_MANIFESTS = {f: str(p) for f, p in _dataset_manifests(config).items()}
SEEDS = [int(s) for s in config["seeds"]]
PROTOCOLS = list(layout.PROTOCOLS)
DOWNSTREAM = config["data"]["downstream_flavour"]
TABLES = _selected_tables(config)
TABLE_EVALS = {t: _table_evaluations(config, t) for t in TABLES}  # table -> [(run, downstream, protocol)]
EVALUATION_SETS = config["data"]["evaluation_sets"]  # fine-tuning sets beside the primary, with gates of their own
FLAVOURS = sorted({DOWNSTREAM, *REAL_ROOTS, *(d for evals in TABLE_EVALS.values() for _, d, _ in evals),
                   *_evaluation_set_copies(config)})
# Generated ground truth (actor masks, swapped copies) for the primary sets: mask quality and the gates need it
GROUND_TRUTH = _primary_ground_truth(config)
# Whether any flavour the config reads is generated: on real roots alone, nothing is generated
GENERATES = any(_is_generated(config, f) for f in DATASET_MANIFESTS)


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


wildcard_constraints:
    run=_alternatives(RUNS),
    seed=r"\d+",
    protocol=_alternatives(PROTOCOLS),
    downstream=_alternatives(FLAVOURS),
    table=_alternatives(TABLES),


# Jobs get the validated config through the environment, not a shared file: two invocations with different
# configs (a preset and a study, say) can then run side by side on one results folder. It is not a
# params entry on purpose: each job's params carry only the hash of the sections it depends on.
os.environ["SCENEBIAS_CONFIG_JSON"] = json.dumps(config, sort_keys=True)

# The environment every job that runs `scenebias` declares (`conda:`): with `--sdm conda` Snakemake builds it once
# (envs/scenebias.yaml + envs/scenebias.post-deploy.sh: the locked requirements and this repository, editable) and
# runs the jobs in it; without, the directive is ignored and jobs run where Snakemake runs (docs/workflow.md,
# "Managed environment"). The path is relative to rules/, where every rule is defined.
SCENEBIAS_ENV = "../envs/scenebias.yaml"


envvars:
    "SCENEBIAS_CONFIG_JSON",




def section_hash(*keys, run=None):
    """Hash of the config sections a job depends on: a params entry, so editing them reruns the job. The data
    section is hashed per flavour (data_stage)."""
    if "data" in keys:
        raise ValueError("section_hash: hash data settings with data_stage(flavours), for the flavours a job reads")
    part = {k: config.get(k) for k in keys}
    for key, skip in SPEED_ONLY_KEYS.items():
        if isinstance(part.get(key), dict):
            part[key] = {k: v for k, v in part[key].items() if k not in skip}
    if run is not None:
        part["run"] = config["runs"][run]
    return stable_hash(part)


def data_stage(flavours):
    """Hash of the data settings of the flavours a job reads (scenebias.resolve.data_stage): a new root, another
    flavour's settings or another choice of test sets leaves it, and the job, as it is."""
    return _data_stage(config, flavours)


def flavour_manifests(flavours):
    """The manifests of the flavours a job reads (one generated manifest.json for every generated flavour)."""
    return sorted({str(_manifest_path(config, f)) for f in flavours})


def _method_augmentation(method):
    """The batch augmentation a method declares (TrainObjective.augmentation)."""
    return _get_method(method).objective.augmentation


def run_protocols(run):
    spec = config["runs"][run]
    if spec.get("from_tables"):
        return []  # a run derived from the paper tables is evaluated as its tables say (TABLE_EVALS)
    return spec.get("protocols") or config["evaluate"]["protocols"]


def run_flavour(run):
    return config["runs"][run].get("flavour") or config["data"]["pretrain_flavour"]


def eval_flavours(downstream):
    """Flavours an evaluation on `downstream` reads: its train split and every test set's."""
    flavours = {downstream, *_test_sets_for(config, downstream).values()}
    if _static_twin_for(config, downstream):
        flavours.add(_static_twin_for(config, downstream))
    return sorted(flavours)


def eval_keys():
    """(run, downstream, protocol) of every evaluation: each run's own protocols on the primary downstream
    flavour, and every paper table's cells."""
    keys = {(run, DOWNSTREAM, protocol) for run in RUNS for protocol in run_protocols(run)}
    keys |= {key for evals in TABLE_EVALS.values() for key in evals}
    keys |= set(calibration_keys())
    return sorted(keys)


def calibration_keys():
    """(run, downstream, protocol) of the calibration gates' runs that this config has (analysis/calibration.py):
    the primary set's and every evaluation set's."""
    from scenebias.analysis.calibration import GATE_EVALUATIONS, set_gate_evaluations

    keys = [(run, DOWNSTREAM, protocol) for run, protocol in GATE_EVALUATIONS]
    keys += [key for name, spec in EVALUATION_SETS.items() for key in set_gate_evaluations(name, spec)]
    return sorted({(run, d, p) for run, d, p in keys if run in RUNS})


def eval_outputs(keys=None):
    return [layout.evaluation(RESULTS, run, seed, d, p) for run, d, p in (keys if keys is not None else eval_keys())
            for seed in SEEDS]


def log_file(job):
    """A job's log file (job: a scenebias.layout job id)."""
    return layout.log(RESULTS, job)


def benchmark_file(job):
    """A job's Snakemake `benchmark:` record (job: a scenebias.layout job id)."""
    return layout.benchmark(RESULTS, job)


def benchmark_files():
    """Snakemake `benchmark:` records of every heavy job, for the report's compute table."""
    files = [benchmark_file(layout.GENERATE)] if GENERATES else []
    files += [benchmark_file(layout.MASK_QUALITY)] if GROUND_TRUTH else []
    if config["data"].get("frame_cache"):
        files += [benchmark_file(layout.frame_cache_job(f)) for f in sorted(DATASET_MANIFESTS)]
    files += [benchmark_file(layout.pretrain_job(run, seed)) for run in RUNS for seed in SEEDS]
    files += [benchmark_file(layout.evaluate_job(run, seed, d, p)) for run, d, p in eval_keys() for seed in SEEDS]
    return files
