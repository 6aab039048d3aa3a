# scenebias: generated (or real) videos -> pretrain(run, seed) -> evaluate(protocol, downstream) -> paper tables,
# aggregate -> report.
#   snakemake --cores all                                         # default preset
#   snakemake --cores all --configfile config/presets/smoke.yaml # another preset
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/actor.smk"
include: "rules/data.smk"
include: "rules/cache.smk"
include: "rules/pretrain.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/analyse.smk"
include: "rules/tables.smk"
include: "rules/report.smk"


rule all:
    localrule: True
    input:
        f"{REPORTS}/index.html",
        layout.calibration(RESULTS),
        [f for table in TABLES for f in table_files(table)],
    default_target: True
