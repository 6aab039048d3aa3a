from scenebias.resolve import generator_stage as _generator_stage, real_manifest_stage as _real_manifest_stage


rule generate:
    """The generated scene-bias video set: official layouts, H.264, ground-truth sidecars, manifest."""
    output:
        manifest=f"{DATA}/manifest.json",
    params:
        stage=_generator_stage(config),  # one job writes every generated flavour, from data.generator alone
        out=DATA,
    log:
        log_file(layout.GENERATE),
    benchmark:
        benchmark_file(layout.GENERATE)
    threads: config["data"]["workers"]
    conda:
        SCENEBIAS_ENV
    shell:
        "scenebias generate --config-json \"$SCENEBIAS_CONFIG_JSON\" --out {params.out:q} --quiet > {log:q} 2>&1"


# Real datasets (data.real): a checksummed manifest per root, whose hash goes into the provenance of the models
# and evaluations that read it, and one combined manifest for the paper tables' and the report's. Without real
# roots the generated set's manifest.json plays both parts.
if REAL_ROOTS:

    rule real_manifest:
        """Files, sizes and checksums of one real dataset root; missing (and, optionally, undecodable) videos listed."""
        input:
            actor_root_inputs,
        output:
            manifest=f"{MANIFEST_DIR}/{{flavour}}.manifest.json",
        wildcard_constraints:
            flavour=_alternatives(REAL_ROOTS),
        params:
            stage=lambda w: _real_manifest_stage(config, w.flavour),  # this root's settings alone
        log:
            log_file(layout.manifest_job("{flavour}")),
        benchmark:
            benchmark_file(layout.manifest_job("{flavour}"))
        conda:
            SCENEBIAS_ENV
        shell:
            "scenebias manifest --config-json \"$SCENEBIAS_CONFIG_JSON\" --flavour {wildcards.flavour:q}"
            " --out {output.manifest:q} --quiet > {log:q} 2>&1"

    rule dataset_manifest:
        """The combined manifest: every dataset the config reads, generated or real, by hash."""
        input:
            list(DATASET_MANIFESTS.values()),
        output:
            manifest=MANIFEST,
        log:
            log_file(layout.COMBINED_MANIFEST),
        conda:
            SCENEBIAS_ENV
        shell:
            "scenebias manifest --config-json \"$SCENEBIAS_CONFIG_JSON\" --combine --out {output.manifest:q}"
            " > {log:q} 2>&1"
