def evaluate_stage(run, downstream):
    """What an evaluation on `downstream` depends on: the data of the flavours it reads, which of them are its
    test sets and static twin (the names it reports under), the clip and evaluate sections and the run."""
    sets = {"test_sets": _test_sets_for(config, downstream), "static_twin": _static_twin_for(config, downstream)}
    return stable_hash([data_stage(eval_flavours(downstream)), sets, section_hash("clip", "evaluate", run=run)])


rule evaluate:
    """One protocol on a saved model and a downstream flavour, reported on each of its test sets (the
    primary downstream flavour: biased, scene-swapped and static twin; any other: its own test split)."""
    input:
        model=layout.model(RESULTS, "{run}", "{seed}"),
        frames=lambda w: frame_cache_inputs(eval_flavours(w.downstream)),
        manifests=lambda w: flavour_manifests(eval_flavours(w.downstream)),  # the downstream's is in its provenance
    output:
        metrics=layout.evaluation(RESULTS, "{run}", "{seed}", "{downstream}", "{protocol}"),
    params:
        stage=lambda w: evaluate_stage(w.run, w.downstream),
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
