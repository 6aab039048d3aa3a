# Paper tables and figures: one target per table (`snakemake fame_table3`), each regenerated from exactly the
# evaluations its cells need (scenebias/tables/plan.py); `scenebias tables` lists the ids.
from scenebias.tables.published import load_paper_tables as _paper_tables, table_ids as _table_ids

TABLE_OUTPUTS = ["csv", "seeds.csv", "md", "tex", "png", "json"]
CAM_TABLES = [t for t in TABLES if _paper_tables()[t]["protocol"] == "cam"]  # figures drawn by the cams rule


def table_files(table):
    return [f"{REPORTS}/tables/{table}.{kind}" for kind in TABLE_OUTPUTS]


rule paper_table:
    """Reproduced mean ± 95% CI beside the published numbers, claim verdicts (paired tests over seeds),
    Markdown/LaTeX/CSV, a plot, the compute cost and provenance."""
    localrule: True  # seconds of statistics and plotting on finished evaluations
    input:
        evaluations=lambda w: eval_outputs(TABLE_EVALS[w.table]),
        cams=lambda w: cam_files() if w.table in CAM_TABLES else [],
        manifest=MANIFEST,  # every flavour's manifest, whose hash the table's provenance records
    output:
        # the plot goes into `snakemake --report` too, one subcategory per table
        [report(f"{REPORTS}/tables/{{table}}.{kind}", category="Paper tables", subcategory="{table}",
                caption="../reports/templates/paper_table.rst") if kind == "png"
         else f"{REPORTS}/tables/{{table}}.{kind}" for kind in TABLE_OUTPUTS],
    params:
        results=RESULTS,
        out=f"{REPORTS}/tables",
        stage=section_hash("tables", "seeds", "analysis"),  # analysis: the claims' smallest effect
        cams=lambda w, input: f"--cams-csv {input.cams[1]} --cams-png {input.cams[0]}" if input.cams else "",
    log:
        log_file(layout.table_job("{table}")),
    conda:
        SCENEBIAS_ENV
    shell:
        "scenebias table --config-json \"$SCENEBIAS_CONFIG_JSON\" --table {wildcards.table} --results {params.results:q}"
        " --out-dir {params.out:q} {params.cams} > {log:q} 2>&1"


for _table in TABLES:

    rule:
        name:
            _table
        localrule: True
        input:
            table_files(_table),


# A known table the preset does not regenerate (`tables:` in the config): a target that stops with how to get it,
# not Snakemake's bare "No rule to produce".
for _table in sorted(set(_table_ids()) - set(TABLES)):

    rule:
        name:
            _table
        localrule: True
        params:
            why=(f"{_table} is not among the tables of preset {config['preset']!r} (tables: "
                 f"{', '.join(TABLES) or 'none'}). Add it for this run: snakemake {_table} --config "
                 f"'tables=[{_table}]' (with the same --configfile), or every table: make tables"),
        shell:
            "echo {params.why:q} >&2; exit 1"

