"""`scenebias`: single runs of the workflow's stages, and the registries.

The Snakemake workflow calls these same commands; run them by hand to debug one job.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from . import layout
from .errors import ConfigError, ScenebiasError


def _config(args: argparse.Namespace) -> dict:
    from .plan import from_json, load_config

    if getattr(args, "config_json", None):
        return from_json(args.config_json)
    if len(args.config) == 1 and args.config[0].endswith(".json"):  # a resolved config written by the workflow
        from .plan import plan as validate
        from .io import read_json

        return validate(read_json(args.config[0]), args.config[0])
    if getattr(args, "renamed_profile", None):
        raise ConfigError(f"--profile is now --preset (config/presets/<name>.yaml): --preset {args.renamed_profile}; "
                          "snakemake's --profile is an execution profile (profiles/)")
    return load_config(args.preset, args.config)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", help="config/presets/<name>.yaml (default: default)")
    p.add_argument("--profile", dest="renamed_profile", help=argparse.SUPPRESS)  # the old name: a clear error
    p.add_argument("--config", action="append", default=[], metavar="YAML",
                   help="extra YAML merged on top (repeatable), or one complete resolved config .json")
    p.add_argument("--config-json", help="the full config as JSON (used by the workflow)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_generate(args: argparse.Namespace) -> None:
    from .config import data_dir
    from .data.synthetic import GeneratorConfig, generate

    cfg = _config(args)
    out = Path(args.out) if args.out else data_dir(cfg)
    gen_cfg = GeneratorConfig.from_dict(cfg["data"]["generator"])
    manifest = generate(gen_cfg, out, workers=cfg["data"]["workers"], progress=not args.quiet)
    print(f"wrote {len(manifest['files'])} files to {out} (manifest hash {manifest['hash'][:16]})")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from .config import results_dir
    from .stages import pretrain

    cfg = _config(args)
    out = Path(args.out or layout.model(results_dir(cfg), args.run, args.seed))
    work = Path(args.work_dir or layout.checkpoints(results_dir(cfg), args.run, args.seed))
    pretrain(cfg, args.run, args.seed, out, work, progress=not args.quiet)
    print(f"wrote {out}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .config import results_dir
    from .stages import evaluate

    cfg = _config(args)
    base = results_dir(cfg)
    model = Path(args.model or layout.model(base, args.run, args.seed))
    downstream = args.downstream or cfg["data"]["downstream_flavour"]
    out = Path(args.out or layout.evaluation(base, args.run, args.seed, downstream, args.protocol))
    record = evaluate(cfg, args.run, args.seed, args.protocol, model, out, progress=not args.quiet,
                      downstream=downstream)
    from .analysis.aggregate import _flatten

    for keys, value in _flatten(record["results"]):
        print(f"{'/'.join(keys)}\t{value:.4f}")
    print(f"wrote {out}")


def cmd_methods(args: argparse.Namespace) -> None:
    from .plugins import load_methods

    registry = load_methods()
    for name in registry:
        spec = registry.get(name)
        print(name)
        for option, values in spec.variants.items():
            for value in values:
                if value != spec.defaults.get(option):
                    print(f"{name}[{option}={value}]")


def cmd_backbones(args: argparse.Namespace) -> None:
    from .models.backbones import BACKBONES

    for name in BACKBONES:
        print(name)


def cmd_aggregate(args: argparse.Namespace) -> None:
    from .analysis.aggregate import aggregate

    frame = aggregate([Path(p) for p in args.inputs], Path(args.out))
    print(f"wrote {args.out} ({len(frame)} rows)")


def cmd_calibration(args: argparse.Namespace) -> None:
    import pandas as pd

    from .analysis.aggregate import COLUMNS, rows_of
    from .analysis.calibration import calibration_gates, gate_sets
    from .data.sources import primary_ground_truth
    from .io import write_json

    cfg = _config(args)
    frame = pd.DataFrame([row for p in args.inputs for row in rows_of(Path(p))], columns=COLUMNS)
    gates = calibration_gates(frame, ground_truth=primary_ground_truth(cfg), sets=gate_sets(cfg),
                              primary=cfg["data"]["downstream_flavour"])
    write_json(Path(args.out), gates)
    for where, found in [(cfg["data"]["downstream_flavour"], gates), *gates["sets"].items()]:
        for g in found["gates"]:
            print(f"{where} ({g['gate']}) {g['name']}: {g['status']}")
        print(f"{where}: {found['overall']}")
    print(f"calibration: {gates['overall']} -> {args.out}")


def cmd_mask_quality(args: argparse.Namespace) -> None:
    from .analysis.mask_quality import mask_quality
    from .config import results_dir

    cfg = _config(args)
    out = Path(args.out or layout.mask_quality(results_dir(cfg)))
    table = mask_quality(cfg, out)
    for _, r in table.iterrows():
        print(f"{r['variant']}\tbeta={r['beta']:g}\tIoU {r['iou_mean']:.3f} ± {r['iou_ci95']:.3f}"
              f"\tprecision {r['precision_mean']:.3f}\trecall {r['recall_mean']:.3f}")
    print(f"wrote {out} ({int(table['videos'].iloc[0])} videos)")


def cmd_cams(args: argparse.Namespace) -> None:
    from .analysis.cam import parse_model_arg, run_cams, summarise_cams
    from .config import results_dir
    from .resolve import cam_flavours

    cfg = _config(args)
    base = results_dir(cfg)
    if args.model:
        models = [parse_model_arg(m) for m in args.model]
    else:  # the runs of FAME Fig. 4 / BE Figs. 6-7 that the config has
        models = [(run, str(Path(layout.model(base, run, args.seed))))
                  for run in layout.CAM_RUNS if run in cfg["runs"]]
    flavours = args.flavour or cam_flavours(cfg)
    out_png = Path(args.out_png or f"{layout.cams_dir(base)}/cams.png")
    out_csv = Path(args.out_csv or f"{layout.cams_dir(base)}/cams.csv")
    given = {k: v for k, v in (("max_videos", args.max_videos), ("beta", args.beta)) if v is not None}
    per_clip = run_cams(cfg, models, list(dict.fromkeys(flavours)), figure_clips=args.clips, cam=args.cam,
                        out_png=out_png, out_csv=out_csv, progress=not args.quiet, **given)
    for _, r in summarise_cams(per_clip).iterrows():
        print(f"{r['model']}\t{r['flavour']}\tCAM-in-actor {r['cam_in_actor_mean']:.3f} ± {r['cam_in_actor_ci95']:.3f}"
              f" (actor area {r['actor_area']:.3f})\tCAM-in-FAME-mask {r['cam_in_fame_mask_mean']:.3f} ± "
              f"{r['cam_in_fame_mask_ci95']:.3f} (mask area {r['fame_mask_area']:.3f})\t{int(r['clips'])} clips")
    print(f"wrote {out_png} and {out_csv}")


def cmd_manifest(args: argparse.Namespace) -> None:
    from .data.manifest import build_manifest, combine_manifests, manifest_options, real_roots
    from .resolve import dataset_manifests, manifest_path

    cfg = _config(args)
    roots = real_roots(cfg)
    if not roots:  # the generated set writes its own manifest; never overwrite it with a combined one
        raise ConfigError(f"no data.real roots are configured; the generated set's manifest is {manifest_path(cfg)}")
    if args.flavour and args.flavour not in roots:
        raise ConfigError(f"--flavour {args.flavour!r} is not a real root; data.real has: {', '.join(roots)}")
    if not args.combine:  # one root (--flavour), or every root
        opts = manifest_options(cfg)
        for flavour in [args.flavour] if args.flavour else list(roots):
            out = Path(args.out) if args.out and args.flavour else manifest_path(cfg, flavour)
            m = build_manifest(roots[flavour], out, checksum=opts["checksum"], decode_probe=opts["decode_probe"],
                               progress=not args.quiet)
            print(f"wrote {out} (hash {m['hash'][:16]})")
        if args.flavour:
            return
    inputs = dataset_manifests(cfg)
    absent = {f: p for f, p in inputs.items() if not p.exists()}
    if absent and not args.combine:  # generated flavours the config also reads: the workflow writes theirs
        print("not combined yet: " + "; ".join(f"{f} ({p} not found)" for f, p in absent.items()))
        return
    out = Path(args.out) if args.out else manifest_path(cfg)
    m = combine_manifests(inputs, out)
    print(f"wrote {out} ({len(m['datasets'])} datasets, hash {m['hash'][:16]})")


def cmd_frame_cache(args: argparse.Namespace) -> None:
    from .data.frame_cache import build_cache, flavour_cache_dir, frame_spec
    from .resolve import split

    cfg = _config(args)
    records = [r for subset in ("train", "test") for r in split(cfg, args.flavour, subset).records]
    out = Path(args.out) if args.out else flavour_cache_dir(cfg, args.flavour)
    workers = args.workers if args.workers is not None else cfg["data"]["workers"]
    s = build_cache(records, out, progress=not args.quiet, workers=workers, prune=True, spec=frame_spec(cfg))
    print(f"wrote {s['index']} ({s['videos']} videos at {s['frames']}, {s['entries']} entries, "
          f"{s['bytes'] / 2**20:.1f} MiB; "
          f"decoded {s['decoded']}, reused {s['reused']}, removed {s['stale_temps_removed']} stale temporary "
          f"and {s['pruned']} unreferenced entries)")


def cmd_report(args: argparse.Namespace) -> None:
    from .report.build import build_report

    cfg = _config(args)
    index = build_report(cfg, Path(args.metrics), Path(args.out_dir), benchmarks=[Path(b) for b in args.benchmark],
                         table_records=[Path(t) for t in args.table])
    print(f"wrote {index}")


def cmd_actor_crop(args: argparse.Namespace) -> None:
    from .data.actor import CropSettings, build_actor_hmdb51

    crop = CropSettings(size=args.size, smooth=args.smooth, score_threshold=args.score_threshold)
    s = build_actor_hmdb51(args.hmdb51_root, args.out, detector_weights=args.detector_weights, boxes=args.boxes,
                           crop=crop, video_dir=args.video_dir, split_dir=args.split_dir,
                           on_missing=args.on_missing, batch_size=args.batch_size, device=args.device,
                           progress=not args.quiet)
    print(f"wrote {args.out}: {s['videos']} videos ({s['cropped']} cropped, {s['resumed']} already done), "
          f"{s['frames']} frames, {s['frames_without_detection']} without a person, "
          f"{s['videos_without_detection']} videos without any (kept whole), {s['missing']} missing")


def cmd_tables(args: argparse.Namespace) -> None:
    from .tables.published import table_ids

    for tid in table_ids():
        print(tid)


def cmd_table(args: argparse.Namespace) -> None:
    from .config import report_dir, results_dir
    from .report.table_pages import tally as claim_tally
    from .tables.render import build_table

    cfg = _config(args)
    out = Path(args.out_dir) if args.out_dir else report_dir(cfg) / "tables"
    cams = (Path(args.cams_csv), Path(args.cams_png)) if args.cams_csv and args.cams_png else None
    record = build_table(cfg, args.table, args.results or results_dir(cfg), out, cams=cams)
    def tally(key: str) -> str:
        counts = claim_tally([record], key)
        return ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "none"

    print(f"{record['label']}: {out / args.table}.{{md,tex,csv,png,json}}; claims: {tally('verdict')}"
          f" (on the scene-swapped test: {tally('swapped_verdict')})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scenebias", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="generate the scene-bias video set (official layouts, H.264)")
    _add_config_args(p)
    p.add_argument("--out", help="output folder (default: paths.data of the config)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("pretrain", help="pretrain one run (method + options) for one seed; resumes automatically")
    _add_config_args(p)
    p.add_argument("--run", required=True, help="a name under `runs:` in the config")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="model file to write")
    p.add_argument("--work-dir", help="checkpoint folder (kept between attempts)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("evaluate", help="evaluate a saved model with one protocol on every test set")
    _add_config_args(p)
    p.add_argument("--run", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--protocol", required=True, choices=list(layout.PROTOCOLS))
    p.add_argument("--downstream", help="downstream flavour (default: data.downstream_flavour)")
    p.add_argument("--model", help="model file (default: the run's pretrain output)")
    p.add_argument("--out", help="metrics JSON to write")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("methods", help="list registered methods and their variants, one per line")
    p.set_defaults(func=cmd_methods)
    p = sub.add_parser("tables", help="list the paper tables and figures (workflow targets), one id per line")
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("table", help="regenerate one paper table from the workflow's evaluation records")
    _add_config_args(p)
    p.add_argument("--table", required=True, help="a table id (scenebias tables)")
    p.add_argument("--results", help="results folder (default: paths.results of the config)")
    p.add_argument("--out-dir", help="folder for <table>.{md,tex,csv,seeds.csv,png,json} (default: <reports>/tables)")
    p.add_argument("--cams-csv", help="class activation map scores (scenebias cams), for the CAM figures")
    p.add_argument("--cams-png", help="class activation map figure (scenebias cams), for the CAM figures")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("backbones", help="list registered backbones, one per line")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("aggregate", help="collect metrics JSON files into one tidy table")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True, help=".csv or .parquet")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("calibration", help="the calibration gates (motion learnable, scene tempting, MoCo takes "
                                           "the shortcut, the oracle beats MoCo) from evaluation records")
    _add_config_args(p)
    p.add_argument("inputs", nargs="+", help="evaluation records (metrics JSON) of the gate runs")
    p.add_argument("--out", required=True, help="calibration.json")
    p.set_defaults(func=cmd_calibration)

    p = sub.add_parser("mask-quality", help="IoU of FAME's mask variants with the generated set's actor masks")
    _add_config_args(p)
    p.add_argument("--out", help="CSV to write (default: <results>/analysis/mask_quality.csv)")
    p.set_defaults(func=cmd_mask_quality)

    p = sub.add_parser("cams", help="class activation maps of models on the same test clips (FAME Fig. 4, BE "
                                    "Figs. 6-7) and the share of CAM energy on the actor / FAME's mask")
    _add_config_args(p)
    p.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                   help=f"a model file and its row label (repeatable; default: runs {', '.join(layout.CAM_RUNS)} "
                        "of --seed under the results folder)")
    p.add_argument("--seed", type=int, default=0, help="seed of the default models")
    p.add_argument("--flavour", action="append", default=[],
                   help="test split(s) to draw clips from (repeatable; default: the pretraining flavour and the "
                        "swapped test set)")
    p.add_argument("--clips", type=int, default=4, help="clips per flavour in the figure")
    p.add_argument("--max-videos", type=int, help="test videos measured per flavour, evenly spaced (default 200)")
    p.add_argument("--cam", choices=["energy", "gradcam"], default="energy",
                   help="feature-energy CAM (any model) or Grad-CAM of the predicted class (models with a head)")
    p.add_argument("--beta", type=float, help="FAME mask foreground share β (default 0.5, FAME's)")
    p.add_argument("--out-png", help="figure (default: <results>/analysis/cams/cams.png)")
    p.add_argument("--out-csv", help="per-clip table (default: <results>/analysis/cams/cams.csv)")
    p.set_defaults(func=cmd_cams)

    p = sub.add_parser("manifest", help="checksummed manifest of a real dataset root (--flavour), or of every root "
                                        "and then the combined manifest of every dataset the config reads")
    _add_config_args(p)
    p.add_argument("--flavour", help="a flavour under data.real (default: every root)")
    p.add_argument("--combine", action="store_true",
                   help="only combine the existing per-dataset manifests (what the workflow's rule does)")
    p.add_argument("--out", help="file to write (default: the config's manifest path)")
    p.set_defaults(func=cmd_manifest)

    p = sub.add_parser("frame-cache", help="decode every video of a flavour's train and test splits once, resized "
                                           "and stored as data.frames says (resumable, checksummed)")
    _add_config_args(p)
    p.add_argument("--flavour", required=True, help="dataset flavour (generated, or a data.real root)")
    p.add_argument("--out", help="cache folder (default: <paths.frame_cache>/<flavour>)")
    p.add_argument("--workers", type=int, help="decoding processes (default: data.workers)")
    p.set_defaults(func=cmd_frame_cache)

    p = sub.add_parser("report", help="build the HTML/Markdown report from the tidy metrics table")
    _add_config_args(p)
    p.add_argument("--metrics", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--benchmark", action="append", default=[], help="Snakemake benchmark files (compute cost)")
    p.add_argument("--table", action="append", default=[], metavar="JSON",
                   help="a paper table's record (scenebias table): one report page each")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("actor-crop", help="Actor-HMDB51 (BE Figure 5): crop every HMDB51 frame to its persons")
    p.add_argument("--hmdb51-root", required=True, help="HMDB51 root in the official layout")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--detector-weights", help="state dict of torchvision's fasterrcnn_resnet50_fpn (COCO)")
    src.add_argument("--boxes", help="person boxes CSV: video,frame,x0,y0,x1,y1[,score]")
    p.add_argument("--out", required=True, help="output root (HMDB51 layout)")
    p.add_argument("--score-threshold", type=float, default=0.5)
    p.add_argument("--size", type=int, default=112, help="output side in px (even)")
    p.add_argument("--smooth", type=int, default=5, help="moving-median window in frames (odd; 1 = off)")
    p.add_argument("--video-dir", help="video folder, if not <root>/videos")
    p.add_argument("--split-dir", help="split-file folder, if not <root>/testTrainMulti_7030_splits")
    p.add_argument("--on-missing", choices=["error", "skip"], default="error",
                   help="a listed video that is not on disk: an error, or skipped and counted")
    p.add_argument("--batch-size", type=int, default=4, help="frames per detector call")
    p.add_argument("--device", default="cpu", help="detector device, e.g. cuda (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_actor_crop)
    return parser


def main(argv: list[str] | None = None) -> int:
    # torch.jit.script deprecation, raised by library imports we do not control
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ScenebiasError as exc:
        print(f"scenebias {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
