"""One diagnosis run of the calibration study: a method trained by the suite's own objective and training loop, then
the suite's linear probe on the biased and scene-swapped test sets, in one process and one seed (minutes on a core).

    python -m benchmarks.calibration.diagnose NAME METHOD [--options JSON] [--config YAML ...] [--crop-scale LO HI]
        [--lr LR] [--colour JSON] [--epochs N] [--out results.jsonl]

It answers "does this setting let the positive control learn?" quickly, one factor at a time, before a candidate is
run through the workflow with three seeds (benchmarks/calibration/study.py). It prints (and appends to --out) one
JSON line: the last epoch's instance accuracy, positive / negative cosine and loss, and the probe's biased and
swapped top-1 (%). docs/calibration-study.md lists the runs behind the default's choice.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("method")
    parser.add_argument("--options", default="{}", help="method options as JSON, e.g. '{\"mask\": \"oracle\"}'")
    parser.add_argument("--config", action="append", default=[], help="YAML merged on the default preset")
    parser.add_argument("--crop-scale", type=float, nargs=2, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--colour", default=None, help="pretrain.colour as JSON (contrastive colour augmentation)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flavour", default=None, help="pretraining flavour (default data.pretrain_flavour)")
    parser.add_argument("--work-dir", default=None, help="checkpoint folder (default results/diagnose/NAME)")
    parser.add_argument("--out", default=None, help="append the result line to this JSONL file")
    args = parser.parse_args(argv)

    from scenebias import stages as P
    from scenebias.plan import load_config
    from scenebias.evaluate import linear as lin
    from scenebias.models.backbones import build_backbone
    from scenebias.plugins import get_method
    from scenebias.train.loop import TrainConfig, train

    cfg = load_config("default", args.config)
    torch.set_num_threads(cfg.get("threads", 1))
    torch.manual_seed(args.seed)
    flavour = args.flavour or cfg["data"]["pretrain_flavour"]
    records = P.split(cfg, flavour, "train").records
    classes = len(P.split(cfg, flavour, "train").class_names)
    backbone = P.run_backbone(cfg, "moco")
    objective = get_method(args.method).build(build_backbone(backbone["name"], **backbone["options"]), classes,
                                              {"queue_size": 256, **json.loads(args.options)}
                                              if "queue_size" in get_method(args.method).defaults
                                              else json.loads(args.options))
    pretrain = {**cfg["pretrain"], **({"lr": args.lr} if args.lr else {}),
                **({"epochs": args.epochs} if args.epochs is not None else {}),
                **({"colour": json.loads(args.colour)} if args.colour else {})}
    tcfg = TrainConfig.from_dict(pretrain)
    train_cfg = json.loads(json.dumps(cfg))
    if args.crop_scale:
        train_cfg["clip"]["crop_scale"] = list(args.crop_scale)
    dataset = P.clip_dataset(train_cfg, records, objective.dataset_mode, args.seed, flavour=flavour,
                             actor_masks=objective.needs_masks, static=bool(getattr(objective, "static", False)))
    colour = P.augmentation_colour(cfg, objective.augmentation, tcfg)
    t0 = time.time()
    log = train(objective, dataset, tcfg, args.work_dir or f"results/diagnose/{args.name}", args.seed,
                lambda g: P.augment_factory(g, objective.augmentation, colour), progress=False)
    seconds = time.time() - t0
    downstream = cfg["data"]["downstream_flavour"]
    probe_train = P.clip_dataset(cfg, P.split(cfg, downstream, "train").records, "single", args.seed, flavour=downstream)
    tests = {name: P.clip_dataset(cfg, P.split(cfg, fl, "test").records, "test", args.seed, flavour=fl)
             for name, fl in cfg["data"]["test_sets"].items()}
    probe = lin.LinearProbeConfig(epochs=100, lr=cfg["evaluate"]["linear"]["lr"], train_views=1)
    results = lin.linear_probe(objective.backbone, probe_train, tests, classes, probe, "cpu", args.seed)
    last = log[-1] if log else {}
    line = {"name": args.name, "method": args.method, "options": json.loads(args.options),
            "crop_scale": args.crop_scale, "lr": args.lr, "colour": tcfg.colour, "config": args.config,
            **{k: round(float(last[k]), 3) for k in ("instance_acc", "pos_sim", "neg_sim", "loss") if k in last},
            **{f"{name}_top1": round(100 * r["top1"], 1) for name, r in results.items() if isinstance(r, dict) and "top1" in r},
            "train_s": round(seconds)}
    print(json.dumps(line), flush=True)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    return line


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
