rule evaluate:
    """One protocol on a saved model and a downstream flavour, reported on each of its test sets (the
    primary downstream flavour: biased, scene-swapped and static twin; any other: its own test split)."""
    input:
        model=f"{RESULTS}/pretrain/{{run}}/seed{{seed}}/model.pt",
        frames=lambda w: frame_cache_inputs(eval_flavours(w.downstream)),
    output:
        metrics=f"{RESULTS}/eval/{{run}}/seed{{seed}}/{{downstream}}/{{protocol}}.json",
    params:
        stage=lambda w: section_hash("data", "clip", "evaluate", run=w.run),
    log:
        f"{RESULTS}/logs/evaluate/{{run}}/seed{{seed}}/{{downstream}}/{{protocol}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{run}}/seed{{seed}}/{{downstream}}/{{protocol}}.tsv"
    threads: config["threads"]
    resources:
        # one GPU slot unless the config says cpu (Snakemake resources are ints); mem_mb and runtime
        # (minutes) are defaults for a scheduler, overridden by a profile's set-resources
        gpu=1 if config["device"] != "cpu" else 0,
        mem_mb=16000,
        runtime=240,
    shell:
        "scenebias evaluate --config-json \"$SCENEBIAS_CONFIG_JSON\" --run {wildcards.run:q} --seed {wildcards.seed}"
        " --protocol {wildcards.protocol} --downstream {wildcards.downstream} --model {input.model:q}"
        " --out {output.metrics:q} --quiet > {log:q} 2>&1"
