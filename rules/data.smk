rule generate:
    """The generated scene-bias video set: official layouts, H.264, ground-truth sidecars, manifest."""
    output:
        manifest=f"{DATA}/manifest.json",
    params:
        stage=section_hash("data"),
        out=DATA,
    log:
        f"{RESULTS}/logs/generate.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate.tsv"
    threads: config["data"]["workers"]
    shell:
        "scenebias generate --config-json \"$SCENEBIAS_CONFIG_JSON\" --out {params.out:q} --quiet > {log:q} 2>&1"
