rule report:
    """HTML report (+ Markdown/CSV tables and PNG plots) under reports/<preset>/."""
    localrule: True
    input:
        metrics=METRICS,
        benchmarks=benchmark_files(),
        mask_quality=layout.mask_quality(RESULTS) if GROUND_TRUTH else [],
        tables=[f"{REPORTS}/tables/{table}.json" for table in TABLES],
        manifest=MANIFEST,  # with real roots, the per-root manifests it lists (files, missing, undecodable)
    output:
        index=report(
            f"{REPORTS}/index.html",
            category="Overview",
            caption="../reports/templates/caption.rst",
        ),
        calibration=f"{REPORTS}/calibration.json",
        results=f"{REPORTS}/results.md",  # the results page in Markdown, committed as it came out (docs/results.md)
        leaderboard=f"{REPORTS}/tables/leaderboard.csv",
        accuracy_plot=report(f"{REPORTS}/plots/biased_vs_swapped.png", category="Plots",
                             caption="../reports/templates/accuracy_plot.rst"),
        first_screen_plot=report(f"{REPORTS}/plots/first_screen.png", category="Plots",
                                 caption="../reports/templates/first_screen_plot.rst"),
        training_plot=report(f"{REPORTS}/plots/training_curves.png", category="Plots",
                             caption="../reports/templates/training_plot.rst"),
        accuracy_table=report(f"{REPORTS}/tables/accuracy.csv", category="Tables",
                              caption="../reports/templates/accuracy_table.rst"),
        mask_quality_plot=report(f"{REPORTS}/plots/mask_quality.png", category="Plots",
                                 caption="../reports/templates/mask_quality_plot.rst"),
        mask_quality_table=report(f"{REPORTS}/tables/mask_quality.csv", category="Tables",
                                  caption="../reports/templates/mask_quality_table.rst"),
    params:
        out=REPORTS,
        benchmark_args=lambda w, input: " ".join(f"--benchmark {b}" for b in input.benchmarks),
        table_args=lambda w, input: " ".join(f"--table {t}" for t in input.tables),
    log:
        log_file(layout.REPORT),
    conda:
        SCENEBIAS_ENV
    shell:
        "scenebias report --config-json \"$SCENEBIAS_CONFIG_JSON\" --metrics {input.metrics:q} --out-dir {params.out:q}"
        " {params.benchmark_args} {params.table_args} > {log:q} 2>&1"
