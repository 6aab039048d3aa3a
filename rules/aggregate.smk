rule aggregate:
    """Every metrics.json into one tidy table: run, method, role, seed, protocol, test_set, metric, value."""
    localrule: True  # seconds of reading JSON: not worth a cluster job
    input:
        eval_outputs(),
    output:
        table=METRICS,
    log:
        log_file(layout.AGGREGATE),
    conda:
        SCENEBIAS_ENV
    shell:
        "scenebias aggregate {input:q} --out {output.table:q} > {log:q} 2>&1"


rule calibration:
    """The calibration gates from the gate runs alone (scenebias.analysis.calibration): `snakemake calibration`
    answers "can this preset measure anything?" without running every method (the calibration study's target)."""
    localrule: True
    input:
        eval_outputs(calibration_keys()),
    output:
        gates=layout.calibration(RESULTS),
    log:
        log_file(layout.CALIBRATION),
    conda:
        SCENEBIAS_ENV
    shell:
        "scenebias calibration --config-json \"$SCENEBIAS_CONFIG_JSON\" {input:q} --out {output.gates:q} > {log:q} 2>&1"
