def pretrain_stage(run):
    """What a pretraining job depends on: its params entry and the name of its checkpoint folder. A run that
    trains with the fine-tuning augmentation also depends on that protocol's colour, when one is set. Of the data
    settings, only its own flavour's: a new root or test set elsewhere does not retrain it."""
    stage = stable_hash([data_stage([run_flavour(run)]), section_hash("clip", "backbone", "pretrain", run=run)])
    colour = config["evaluate"]["finetune"].get("colour")
    if colour is not None and _method_augmentation(config["runs"][run]["method"]) == "finetune":
        stage = stable_hash([stage, colour])
    return stage


rule pretrain:
    """One run (method + options) for one seed. Checkpoints live outside the outputs, so a killed or
    retried job resumes where it stopped."""
    input:
        manifest=lambda w: flavour_manifests([run_flavour(w.run)]),  # what its provenance records
        frames=lambda w: frame_cache_inputs([run_flavour(w.run)]),
    output:
        model=layout.model(RESULTS, "{run}", "{seed}"),
    params:
        stage=lambda w: pretrain_stage(w.run),
        # one checkpoint folder per training setting: a changed config never resumes an old checkpoint
        work=lambda w: f"{layout.checkpoints(RESULTS, w.run, w.seed)}/{pretrain_stage(w.run)}",
    log:
        log_file(layout.pretrain_job("{run}", "{seed}")),
    benchmark:
        benchmark_file(layout.pretrain_job("{run}", "{seed}"))
    threads: config["threads"]
    conda:
        SCENEBIAS_ENV
    resources:
        # one GPU slot unless the config says cpu (Snakemake resources are ints); mem_mb and runtime
        # (minutes) are defaults for a scheduler, overridden by an execution profile's set-resources
        gpu=1 if config["device"] != "cpu" else 0,
        mem_mb=16000,
        runtime=720,
    shell:
        "scenebias pretrain --config-json \"$SCENEBIAS_CONFIG_JSON\" --run {wildcards.run:q} --seed {wildcards.seed}"
        " --out {output.model:q} --work-dir {params.work:q} --quiet > {log:q} 2>&1"
