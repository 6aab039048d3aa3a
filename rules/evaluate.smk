rule evaluate:
    """One protocol on a saved model, reported on every test set (biased, scene-swapped, static twin)."""
    input:
        model=f"{RESULTS}/pretrain/{{run}}/seed{{seed}}/model.pt",
    output:
        metrics=f"{RESULTS}/eval/{{run}}/seed{{seed}}/{{protocol}}.json",
    params:
        stage=lambda w: section_hash("data", "clip", "evaluate", run=w.run),
    log:
        f"{RESULTS}/logs/evaluate/{{run}}/seed{{seed}}/{{protocol}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{run}}/seed{{seed}}/{{protocol}}.tsv"
    threads: config["threads"]
    shell:
        "scenebias evaluate --config-json \"$SCENEBIAS_CONFIG_JSON\" --run {wildcards.run:q} --seed {wildcards.seed}"
        " --protocol {wildcards.protocol} --model {input.model:q} --out {output.metrics:q} --quiet"
        " > {log:q} 2>&1"
