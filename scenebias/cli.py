"""`scenebias`: single runs of the workflow's stages, and the registries.

The Snakemake workflow calls these same commands; run them by hand to debug one job.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import ConfigError, ScenebiasError


def _config(args: argparse.Namespace) -> dict:
    from .config import from_json, load_config

    if getattr(args, "config_json", None):
        return from_json(args.config_json)
    if len(args.config) == 1 and args.config[0].endswith(".json"):  # a resolved config written by the workflow
        from .config import validate
        from .io import read_json

        return validate(read_json(args.config[0]), args.config[0])
    return load_config(args.profile, args.config)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help="config/profiles/<name>.yaml (default: default)")
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
    from .pipeline import pretrain

    cfg = _config(args)
    out = Path(args.out) if args.out else results_dir(cfg) / "pretrain" / args.run / f"seed{args.seed}" / "model.pt"
    work = Path(args.work_dir) if args.work_dir else results_dir(cfg) / "checkpoints" / args.run / f"seed{args.seed}"
    pretrain(cfg, args.run, args.seed, out, work, progress=not args.quiet)
    print(f"wrote {out}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .config import results_dir
    from .pipeline import evaluate

    cfg = _config(args)
    base = results_dir(cfg)
    model = Path(args.model) if args.model else base / "pretrain" / args.run / f"seed{args.seed}" / "model.pt"
    out = Path(args.out) if args.out else base / "eval" / args.run / f"seed{args.seed}" / f"{args.protocol}.json"
    record = evaluate(cfg, args.run, args.seed, args.protocol, model, out, progress=not args.quiet)
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


def cmd_mask_quality(args: argparse.Namespace) -> None:
    from .analysis.mask_quality import mask_quality
    from .config import results_dir

    cfg = _config(args)
    out = Path(args.out) if args.out else results_dir(cfg) / "analysis" / "mask_quality.csv"
    table = mask_quality(cfg, out)
    for _, r in table.iterrows():
        print(f"{r['variant']}\tbeta={r['beta']:g}\tIoU {r['iou_mean']:.3f} ± {r['iou_ci95']:.3f}"
              f"\tprecision {r['precision_mean']:.3f}\trecall {r['recall_mean']:.3f}")
    print(f"wrote {out} ({int(table['videos'].iloc[0])} videos)")


def cmd_manifest(args: argparse.Namespace) -> None:
    from .data.manifest import build_manifest, combine_manifests, manifest_options, real_roots
    from .pipeline import dataset_manifests, manifest_path

    cfg = _config(args)
    if not real_roots(cfg):  # the generated set writes its own manifest; never overwrite it with a combined one
        raise ConfigError(f"no data.real roots are configured; the generated set's manifest is {manifest_path(cfg)}")
    if args.flavour:
        roots = real_roots(cfg)
        if args.flavour not in roots:
            raise ConfigError(f"--flavour {args.flavour!r} is not a real root; data.real has: "
                              f"{', '.join(roots) or '(none)'}")
        opts = manifest_options(cfg)
        out = Path(args.out) if args.out else manifest_path(cfg, args.flavour)
        m = build_manifest(roots[args.flavour], out, checksum=opts["checksum"], decode_probe=opts["decode_probe"],
                           progress=not args.quiet)
        print(f"wrote {out} (hash {m['hash'][:16]})")
    else:
        out = Path(args.out) if args.out else manifest_path(cfg)
        m = combine_manifests(dataset_manifests(cfg), out)
        print(f"wrote {out} ({len(m['datasets'])} datasets, hash {m['hash'][:16]})")


def cmd_report(args: argparse.Namespace) -> None:
    from .report.build import build_report

    cfg = _config(args)
    index = build_report(cfg, Path(args.metrics), Path(args.out_dir), benchmarks=[Path(b) for b in args.benchmark])
    print(f"wrote {index}")


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
    p.add_argument("--protocol", required=True, choices=["linear", "finetune", "retrieval", "classifier"])
    p.add_argument("--model", help="model file (default: the run's pretrain output)")
    p.add_argument("--out", help="metrics JSON to write")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("methods", help="list registered methods and their variants, one per line")
    p.set_defaults(func=cmd_methods)
    p = sub.add_parser("backbones", help="list registered backbones, one per line")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("aggregate", help="collect metrics JSON files into one tidy table")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True, help=".csv or .parquet")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("mask-quality", help="IoU of FAME's mask variants with the generated set's actor masks")
    _add_config_args(p)
    p.add_argument("--out", help="CSV to write (default: <results>/analysis/mask_quality.csv)")
    p.set_defaults(func=cmd_mask_quality)

    p = sub.add_parser("manifest", help="checksummed manifest of a real dataset root (--flavour), or the combined "
                                        "manifest of every dataset the config reads (no --flavour)")
    _add_config_args(p)
    p.add_argument("--flavour", help="a flavour under data.real")
    p.add_argument("--out", help="file to write (default: the config's manifest path)")
    p.set_defaults(func=cmd_manifest)

    p = sub.add_parser("report", help="build the HTML/Markdown report from the tidy metrics table")
    _add_config_args(p)
    p.add_argument("--metrics", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--benchmark", action="append", default=[], help="Snakemake benchmark files (compute cost)")
    p.set_defaults(func=cmd_report)
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
