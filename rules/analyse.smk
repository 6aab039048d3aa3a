rule mask_quality:
    """IoU, precision and recall of FAME's mask variants (fame paper/official-code colours, seed, gauss,
    grid) x beta against the generated set's ground-truth actor masks (pretraining flavour, train split)."""
    input:
        manifest=MANIFEST,
    output:
        table=f"{RESULTS}/analysis/mask_quality.csv",
    params:
        stage=section_hash("data", "clip", "analysis"),
    log:
        f"{RESULTS}/logs/analysis/mask_quality.log",
    benchmark:
        f"{RESULTS}/benchmarks/analysis/mask_quality.tsv"
    threads: config["threads"]
    shell:
        "scenebias mask-quality --config-json \"$SCENEBIAS_CONFIG_JSON\" --out {output.table:q} --quiet > {log:q} 2>&1"


CAM_RUNS = [r for r in ("moco", "moco+be", "moco+fame") if r in RUNS]
CAM_SEED = SEEDS[0]


def cam_files():
    """The class activation maps the CAM figures (FAME Figure 4, BE Figures 6-7) show: first seed."""
    if not CAM_RUNS:
        return []
    return [f"{RESULTS}/analysis/cams/seed{CAM_SEED}/cams.png", f"{RESULTS}/analysis/cams/seed{CAM_SEED}/cams.csv"]


rule cams:
    """Class activation maps of MoCo, MoCo+BE and MoCo+FAME on the same test clips of the pretraining and the
    scene-swapped flavour, with the ground-truth actor outline and FAME's mask; per clip, the CAM energy share
    inside the actor and inside FAME's mask."""
    input:
        models=expand(f"{RESULTS}/pretrain/{{run}}/seed{{{{seed}}}}/model.pt", run=CAM_RUNS),
        manifest=MANIFEST,
    output:
        figure=f"{RESULTS}/analysis/cams/seed{{seed}}/cams.png",
        table=f"{RESULTS}/analysis/cams/seed{{seed}}/cams.csv",
    params:
        models=lambda w, input: " ".join(f"--model {run}={path}" for run, path in zip(CAM_RUNS, input.models)),
        stage=section_hash("data", "clip"),
    log:
        f"{RESULTS}/logs/analysis/cams/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analysis/cams/seed{{seed}}.tsv"
    threads: config["threads"]
    resources:
        # one GPU slot unless the config says cpu (Snakemake resources are ints); mem_mb and runtime
        # (minutes) are defaults for a scheduler, overridden by a profile's set-resources
        gpu=1 if config["device"] != "cpu" else 0,
        mem_mb=8000,
        runtime=60,
    shell:
        "scenebias cams --config-json \"$SCENEBIAS_CONFIG_JSON\" {params.models} --out-png {output.figure:q}"
        " --out-csv {output.table:q} --quiet > {log:q} 2>&1"
