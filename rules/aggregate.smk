rule aggregate:
    """Every metrics.json into one tidy table: run, method, role, seed, protocol, test_set, metric, value."""
    localrule: True  # seconds of reading JSON: not worth a cluster job
    input:
        eval_outputs(),
    output:
        table=METRICS,
    log:
        f"{RESULTS}/logs/aggregate.log",
    shell:
        "scenebias aggregate {input:q} --out {output.table:q} > {log:q} 2>&1"
