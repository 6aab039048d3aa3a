"""One diagnosis run of the calibration study: a method trained by the suite's own objective and training loop, then
the suite's linear probe on the biased and scene-swapped test sets, in one process and one seed (minutes on a core).

    python -m benchmarks.calibration.diagnose NAME METHOD [--options JSON] [--config YAML ...] [--crop-scale LO HI]
        [--lr LR] [--colour JSON] [--epochs N] [--batch-size B] [--loss in-batch --temperature T] [--out results.jsonl]

It answers "does this setting let the positive control learn?" quickly, one factor at a time, before a candidate is
run through the workflow with three seeds (benchmarks/calibration/study.py). It prints (and appends to --out) one
JSON line: the last epoch's instance accuracy, positive / negative cosine and loss, and the probe's biased and
swapped top-1 (%). docs/calibration-study.md lists the runs behind the default's choice.

`--loss in-batch` replaces a MoCo-based method's loss by a minimal contrastive loop: the method's own views
(FAME's merge included), both through the query encoder with gradients, the other clips of the batch as the only
negatives (the partner whose scene was pasted in among them), a symmetric InfoNCE at `--temperature`; no queue, no
momentum encoder. "inst." is then the in-batch accuracy (chance 1 / batch size).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


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
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--loss", choices=["method", "in-batch"], default="method",
                        help="the method's own loss, or the minimal in-batch contrastive loop (MoCo-based methods)")
    parser.add_argument("--temperature", type=float, default=0.1, help="the in-batch loss's temperature")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flavour", default=None, help="pretraining flavour (default data.pretrain_flavour)")
    parser.add_argument("--work-dir", default=None, help="checkpoint folder (default results/diagnose/NAME)")
    parser.add_argument("--out", default=None, help="append the result line to this JSONL file")
    args = parser.parse_args(argv)

    from scenebias.data.transforms import augment_factory
    from scenebias.resolve import clip_dataset, split
    from scenebias.runs import run_backbone
    from scenebias.stages import augmentation_colour
    from scenebias.plan import load_config
    from scenebias.evaluate import linear as lin
    from scenebias.models.backbones import build_backbone
    from scenebias.plugins import get_method
    from scenebias.train.loop import TrainConfig, train

    cfg = load_config("default", args.config)
    torch.set_num_threads(cfg.get("threads", 1))
    torch.manual_seed(args.seed)
    flavour = args.flavour or cfg["data"]["pretrain_flavour"]
    records = split(cfg, flavour, "train").records
    classes = len(split(cfg, flavour, "train").class_names)
    backbone = run_backbone(cfg, "moco")
    objective = get_method(args.method).build(build_backbone(backbone["name"], **backbone["options"]), classes,
                                              {"queue_size": 256, **json.loads(args.options)}
                                              if "queue_size" in get_method(args.method).defaults
                                              else json.loads(args.options))
    pretrain = {**cfg["pretrain"], **({"lr": args.lr} if args.lr else {}),
                **({"epochs": args.epochs} if args.epochs is not None else {}),
                **({"batch_size": args.batch_size} if args.batch_size else {}),
                **({"colour": json.loads(args.colour)} if args.colour else {})}
    tcfg = TrainConfig.from_dict(pretrain)
    train_cfg = json.loads(json.dumps(cfg))
    if args.crop_scale:
        train_cfg["clip"]["crop_scale"] = list(args.crop_scale)
    dataset = clip_dataset(train_cfg, records, objective.dataset_mode, args.seed, flavour=flavour,
                             actor_masks=objective.needs_masks, static=bool(getattr(objective, "static", False)))
    colour = augmentation_colour(cfg, objective.augmentation, tcfg)
    if args.loss == "in-batch":
        objective.training_loss = _in_batch_loss(objective, args.temperature)
    t0 = time.time()
    log = train(objective, dataset, tcfg, args.work_dir or f"results/diagnose/{args.name}", args.seed,
                lambda g: augment_factory(g, objective.augmentation, colour), progress=False)
    seconds = time.time() - t0
    downstream = cfg["data"]["downstream_flavour"]
    probe_train = clip_dataset(cfg, split(cfg, downstream, "train").records, "single", args.seed, flavour=downstream)
    tests = {name: clip_dataset(cfg, split(cfg, fl, "test").records, "test", args.seed, flavour=fl)
             for name, fl in cfg["data"]["test_sets"].items()}
    probe = lin.LinearProbeConfig(epochs=100, lr=cfg["evaluate"]["linear"]["lr"], train_views=1)
    results = lin.linear_probe(objective.backbone, probe_train, tests, classes, probe, "cpu", args.seed)
    last = log[-1] if log else {}
    line = {"name": args.name, "method": args.method, "options": json.loads(args.options),
            "crop_scale": args.crop_scale, "lr": args.lr, "colour": tcfg.colour, "config": args.config,
            "objective": args.loss, "batch_size": tcfg.batch_size, **({"temperature": args.temperature}
                                                                  if args.loss == "in-batch" else {}),
            **{k: round(float(last[k]), 3) for k in ("instance_acc", "pos_sim", "neg_sim", "loss") if k in last},
            **{f"{name}_top1": round(100 * r["top1"], 1) for name, r in results.items() if isinstance(r, dict) and "top1" in r},
            "train_s": round(seconds)}
    print(json.dumps(line), flush=True)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    return line


def _in_batch_loss(objective, tau: float):
    """The minimal loop's loss for a MoCo-based objective: its views, one shared encoder, in-batch negatives."""
    if not hasattr(objective, "moco"):
        raise SystemExit("--loss in-batch needs a MoCo-based method (moco, moco+fame, ...)")
    encoder = objective.moco.encoder_q

    def loss(batch, augment, generator):
        view_a, view_b = objective.make_views(batch, generator)[:2]
        q = F.normalize(encoder(augment(view_a)), dim=1)
        k = F.normalize(encoder(augment(view_b)), dim=1)
        logits = q @ k.T / tau
        target = torch.arange(q.shape[0], device=q.device)
        off_diagonal = ~torch.eye(q.shape[0], dtype=torch.bool, device=q.device)
        with torch.no_grad():
            stats = {"instance_acc": (logits.argmax(dim=1) == target).float().mean(),
                     "pos_sim": logits.diagonal().mean() * tau, "neg_sim": logits[off_diagonal].mean() * tau}
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2, stats

    return loss


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
