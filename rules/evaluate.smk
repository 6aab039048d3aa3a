rule evaluate:
    """One protocol on a saved model and a downstream flavour, reported on each of its test sets (the
    primary downstream flavour: biased, scene-swapped and static twin; any other: its own test split)."""
    input:
        model=layout.model(RESULTS, "{run}", "{seed}"),
        frames=lambda w: frame_cache_inputs(eval_flavours(w.downstream)),
    output:
        metrics=layout.evaluation(RESULTS, "{run}", "{seed}", "{downstream}", "{protocol}"),
    params:
        stage=lambda w: section_hash("data", "clip", "evaluate", run=w.run),
    log:
        log_file(layout.evaluate_job("{run}", "{seed}", "{downstream}", "{protocol}")),
    benchmark:
        benchmark_file(layout.evaluate_job("{run}", "{seed}", "{downstream}", "{protocol}"))
    threads: config["threads"]
    conda:
        SCENEBIAS_ENV
    resources:
        # one GPU slot unless the config says cpu (Snakemake resources are ints); mem_mb and runtime
        # (minutes) are defaults for a scheduler, overridden by an execution profile's set-resources
        gpu=1 if config["device"] != "cpu" else 0,
        mem_mb=16000,
        runtime=240,
    shell:
        "scenebias evaluate --config-json \"$SCENEBIAS_CONFIG_JSON\" --run {wildcards.run:q} --seed {wildcards.seed}"
        " --protocol {wildcards.protocol} --downstream {wildcards.downstream} --model {input.model:q}"
        " --out {output.metrics:q} --quiet > {log:q} 2>&1"
