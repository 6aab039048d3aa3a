rule pretrain:
    """One run (method + options) for one seed. Checkpoints live outside the outputs, so a killed or
    retried job resumes where it stopped."""
    input:
        manifest=MANIFEST,
    output:
        model=f"{RESULTS}/pretrain/{{run}}/seed{{seed}}/model.pt",
    params:
        stage=lambda w: section_hash("data", "clip", "backbone", "pretrain", run=w.run),
        work=lambda w: f"{RESULTS}/checkpoints/{w.run}/seed{w.seed}",
    log:
        f"{RESULTS}/logs/pretrain/{{run}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{run}}/seed{{seed}}.tsv"
    threads: config["threads"]
    shell:
        "scenebias pretrain --config-json \"$SCENEBIAS_CONFIG_JSON\" --run {wildcards.run:q} --seed {wildcards.seed}"
        " --out {output.model:q} --work-dir {params.work:q} --quiet > {log:q} 2>&1"
