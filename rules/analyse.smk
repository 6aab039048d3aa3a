rule mask_quality:
    """IoU, precision and recall of FAME's mask variants (fame paper/official-code colours, seed, gauss,
    grid) x beta against the generated set's ground-truth actor masks (pretraining flavour, train split)."""
    input:
        manifest=flavour_manifests([config["data"]["pretrain_flavour"]]),
    output:
        table=layout.mask_quality(RESULTS),
    params:
        stage=(data_stage([config["data"]["pretrain_flavour"]]) + section_hash("clip")
               + stable_hash(config["analysis"]["mask_quality"])),
    log:
        log_file(layout.MASK_QUALITY),
    benchmark:
        benchmark_file(layout.MASK_QUALITY)
    threads: config["threads"]
    conda:
        SCENEBIAS_ENV
    shell:
        "scenebias mask-quality --config-json \"$SCENEBIAS_CONFIG_JSON\" --out {output.table:q} --quiet > {log:q} 2>&1"


CAM_RUNS = [r for r in layout.CAM_RUNS if r in RUNS]
CAM_SEED = SEEDS[0]
CAM_FLAVOURS = _cam_flavours(config)  # the pretraining flavour and the scene-swapped test set's


def cam_files():
    """The class activation maps the CAM figures (FAME Figure 4, BE Figures 6-7) show: first seed."""
    if not CAM_RUNS:
        return []
    return [f"{layout.cams_dir(RESULTS, CAM_SEED)}/cams.png", f"{layout.cams_dir(RESULTS, CAM_SEED)}/cams.csv"]


rule cams:
    """Class activation maps of MoCo, MoCo+BE and MoCo+FAME on the same test clips of the pretraining and the
    scene-swapped flavour, with the ground-truth actor outline and FAME's mask; per clip, the CAM energy share
    inside the actor and inside FAME's mask."""
    input:
        models=expand(layout.model(RESULTS, "{run}", "{{seed}}"), run=CAM_RUNS),
        manifests=flavour_manifests(CAM_FLAVOURS),
    output:
        figure=f"{layout.cams_dir(RESULTS, '{seed}')}/cams.png",
        table=f"{layout.cams_dir(RESULTS, '{seed}')}/cams.csv",
    params:
        models=lambda w, input: " ".join(f"--model {run}={path}" for run, path in zip(CAM_RUNS, input.models)),
        stage=data_stage(CAM_FLAVOURS) + section_hash("clip"),
    log:
        log_file(layout.cams_job("{seed}")),
    benchmark:
        benchmark_file(layout.cams_job("{seed}"))
    threads: config["threads"]
    conda:
        SCENEBIAS_ENV
    resources:
        # one GPU slot unless the config says cpu (Snakemake resources are ints); mem_mb and runtime
        # (minutes) are defaults for a scheduler, overridden by an execution profile's set-resources
        gpu=1 if config["device"] != "cpu" else 0,
        mem_mb=8000,
        runtime=60,
    shell:
        "scenebias cams --config-json \"$SCENEBIAS_CONFIG_JSON\" {params.models} --out-png {output.figure:q}"
        " --out-csv {output.table:q} --quiet > {log:q} 2>&1"
