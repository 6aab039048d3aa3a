# Frame cache: every video of a flavour decoded once, resized to data.frames.short_side and stored as .npy or
# per-frame JPEG, so pretraining and evaluation read frames without decoding (scenebias/data/frame_cache.py).
# The caches live beside the generated set, never inside it (`generate` replaces its folder). Include after
# common.smk and data.smk. Jobs ask for it through frame_cache_inputs(flavours), which is empty unless
# data.frame_cache is true, so with the knob off this file adds no job.
#
# The output is the index only, not directory(): Snakemake deletes a failed job's outputs before rerunning
# it, and the entries already written are what makes a rerun resume (each is reused if its sha256 checks).
from scenebias.data.frame_cache import cache_root as _cache_root, decoder_id as _decoder_id
from scenebias.data.frame_cache import frame_spec as _frame_spec

FRAME_CACHE = bool(config["data"].get("frame_cache", False))
DATA_CACHE = _cache_root(config)
CACHE_FLAVOURS = sorted(DATASET_MANIFESTS)  # every flavour the config reads, generated or real


def frame_cache_index(flavour):
    return f"{DATA_CACHE}/{flavour}/index.json"


def frame_cache_inputs(flavours):
    """Inputs for a job that reads `flavours`: their cache indexes when data.frame_cache is on, else none."""
    return [frame_cache_index(f) for f in sorted(set(flavours))] if FRAME_CACHE else []


rule frame_cache:
    """Decoded frames of one flavour's train and test videos; resumes a killed build, reuses unchanged videos."""
    input:
        manifest=lambda w: str(_manifest_path(config, w.flavour)),
    output:
        index=f"{DATA_CACHE}/{{flavour}}/index.json",
    wildcard_constraints:
        flavour=_alternatives(CACHE_FLAVOURS),
    params:
        stage=lambda w: data_stage([w.flavour]),
        decoder=_decoder_id(),  # a new PyAV/libavcodec may decode differently: rebuild (new entry names)
        frames=_frame_spec(config).key,  # short side and storage: a new one rebuilds (new entry names)
        out=lambda w: f"{DATA_CACHE}/{w.flavour}",
    log:
        log_file(layout.frame_cache_job("{flavour}")),
    benchmark:
        benchmark_file(layout.frame_cache_job("{flavour}"))
    threads: config["data"]["workers"]
    conda:
        SCENEBIAS_ENV
    shell:
        "scenebias frame-cache --config-json \"$SCENEBIAS_CONFIG_JSON\" --flavour {wildcards.flavour:q}"
        " --out {params.out:q} --workers {threads} --quiet > {log:q} 2>&1"
