# Actor-HMDB51 (BE Figure 5) built from a real HMDB51 root: every frame cropped to its persons
# (scenebias.data.actor), written in the HMDB51 layout with the split files copied byte for byte.
# Active only when `data.actor` is set; its source must be a data.real root in the hmdb51 format. To train and
# test on the result, name it as a real root too: data.real.actor_hmdb51: {root: <data.actor.out>, format: hmdb51}
# (its manifest job then needs ACTOR_SUMMARY as input: see actor_root_inputs).
import shlex

from scenebias.errors import ConfigError as _ConfigError
from scenebias.resolve import actor_output as _actor_output, actor_settings as _actor_settings
from scenebias.resolve import actor_source as _actor_source

ACTOR = config["data"].get("actor") or {}
ACTOR_SUMMARY = None

if ACTOR:
    _ACTOR_SOURCE, _ACTOR_ROOT = _actor_source(config)
    if _ACTOR_ROOT is None or _ACTOR_ROOT["format"] != "hmdb51":
        raise _ConfigError(f"data.actor.source: {_ACTOR_SOURCE!r} must name a data.real root in the hmdb51 format "
                           f"(data.real has: {', '.join(REAL_ROOTS) or '(none)'})")
    if (ACTOR.get("detector_weights") is None) == (ACTOR.get("boxes") is None):
        raise _ConfigError("data.actor: set exactly one of detector_weights (a Faster R-CNN state dict) or boxes "
                           "(a person-boxes CSV)")
    ACTOR_OUT = str(_actor_output(config))
    ACTOR_SUMMARY = f"{ACTOR_OUT}/actor_crop_summary.json"

    def _actor_args():
        """CLI options from data.actor and the source root (video_dir / split_dir overrides, on_missing)."""
        opts = {
            "--hmdb51-root": _ACTOR_ROOT["root"],
            "--video-dir": _ACTOR_ROOT.get("video_dir"),
            "--split-dir": _ACTOR_ROOT.get("split_dir"),
            "--detector-weights": ACTOR.get("detector_weights"),
            "--boxes": ACTOR.get("boxes"),
            "--score-threshold": ACTOR.get("score_threshold", 0.5),
            "--size": ACTOR.get("size", 112),
            "--smooth": ACTOR.get("smooth", 5),
            "--batch-size": ACTOR.get("batch_size", 4),
            "--device": ACTOR.get("device", "cpu"),
            "--on-missing": config["data"]["on_missing"],
        }
        return " ".join(f"{k} {shlex.quote(str(v))}" for k, v in opts.items() if v is not None)

    rule actor_hmdb51:
        """Actor-HMDB51: person boxes (Faster R-CNN or a boxes file) -> smoothed square crops; resumable."""
        input:
            manifest=f"{MANIFEST_DIR}/{_ACTOR_SOURCE}.manifest.json",
        output:
            summary=ACTOR_SUMMARY,
        params:
            stage=stable_hash(_actor_settings(config)),  # data.actor and its source root: not other data keys
            args=_actor_args(),
            out=ACTOR_OUT,
        log:
            log_file(layout.ACTOR_HMDB51),
        benchmark:
            benchmark_file(layout.ACTOR_HMDB51)
        threads: config["data"]["workers"]
        conda:
            SCENEBIAS_ENV
        shell:
            "scenebias actor-crop {params.args} --out {params.out:q} --quiet > {log:q} 2>&1"


def actor_root_inputs(wildcards):
    """Input function for the real_manifest rule: a real root that is data.actor's output waits for it."""
    spec = (config["data"].get("real") or {}).get(wildcards.flavour) or {}
    if ACTOR_SUMMARY is not None and os.path.abspath(spec.get("root", "")) == os.path.abspath(ACTOR_OUT):
        return [ACTOR_SUMMARY]
    return []
