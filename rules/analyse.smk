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
