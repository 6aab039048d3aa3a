"""The stages, shared by the CLI and the Snakemake rules: pretrain one run, evaluate it with one protocol.

Every stage reads the validated config, writes its outputs atomically and records provenance. What a stage reads
lives elsewhere: datasets in scenebias.resolve, a run's settings in scenebias.runs, model files in
scenebias.models.files.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from .device import resolve_device
from .data.transforms import augment_factory
from .errors import ConfigError
from .evaluate import finetune as ft
from .evaluate import protocol as proto
from .evaluate.protocol import contrasted_accuracy
from .evaluate.protocol import seed_everything as seed_all
from .evaluate.registry import EvaluationInputs, protocols
from .io import write_json
from .layout import PROTOCOLS
from .models.backbones import build_backbone, complexity
from .models.files import load_model, save_model
from .plugins import get_method
from .provenance import provenance
from .resolve import clip_dataset, manifest_path, split, static_twin_for, test_sets_for
from .runs import pretrain_precision_key, run_backbone, run_spec, with_backbone_crop
from .train import distributed as ddp
from .train import precision as amp
from .train.loop import TrainConfig, train


# ----------------------------------------------------------------------------------------------- setup
def seed_everything(seed: int, threads: int) -> None:
    """Seeded and deterministic for a fixed thread count (jobs run side by side, one thread each by default)."""

    torch.set_num_threads(threads)
    seed_all(seed)


def augmentation_colour(cfg: dict[str, Any], augmentation: str, tcfg: TrainConfig) -> dict[str, Any] | None:
    """The colour options of a declared augmentation: the pretraining stack's (`pretrain.colour`) for
    "contrastive", the fine-tuning protocol's (`evaluate.finetune.colour`, completed; None: no colour) for
    "finetune", so a supervised row trains exactly as the fine-tuning protocol does."""
    if augmentation == "finetune":
        return ft.FinetuneConfig.from_dict(cfg["evaluate"]["finetune"]).colour
    return tcfg.colour


# ------------------------------------------------------------------------------------------- pretrain
def pretrain(cfg: dict[str, Any], run: str, seed: int, out: str | os.PathLike, work_dir: str | os.PathLike,
             progress: bool = True) -> dict[str, Any]:

    t0 = time.time()
    spec = run_spec(cfg, run)
    device = ddp.init_from_env(resolve_device(cfg))  # under torchrun: joins the process group (cuda:LOCAL_RANK)
    seed_everything(seed, cfg.get("threads", 1))
    method = get_method(spec["method"])
    train_split = split(cfg, spec["flavour"], "train")
    bcfg = run_backbone(cfg, run)
    cfg = with_backbone_crop(cfg, bcfg["name"])
    backbone = build_backbone(bcfg["name"], **bcfg["options"])
    objective = method.build(backbone, len(train_split.class_names), spec.get("options"))
    tcfg = TrainConfig.from_dict({**cfg["pretrain"], **spec.get("pretrain", {})}, where=f"runs.{run}.pretrain")
    amp.check_device(pretrain_precision_key(run, spec), tcfg.precision, device)
    log: list[dict[str, Any]] = []
    trained_with: dict[str, Any] | None = None  # provenance: the augmentation a trained run used (None: untrained)
    if objective.dataset_mode != "none":
        dataset = clip_dataset(cfg, train_split.records, objective.dataset_mode, seed,
                               static=bool(getattr(objective, "static", False)),
                               clip_len_factor=objective.clip_len_factor, flavour=spec["flavour"],
                               actor_masks=objective.needs_masks, shared_start=objective.shared_start)
        augmentation = objective.augmentation
        colour = augmentation_colour(cfg, augmentation, tcfg)
        trained_with = {"kind": augmentation, "colour": colour}
        log = train(objective, dataset, tcfg, work_dir, seed, lambda g: augment_factory(g, augmentation, colour),
                    device=device, progress=progress)
    c = cfg["clip"]
    cost = complexity(objective.backbone.cpu(), (3, c["clip_len"], c["crop_size"], c["crop_size"]))
    meta = {"train_log": log, "provenance": provenance(
        cfg={k: cfg[k] for k in ("data", "clip", "backbone", "pretrain")} | {"run": spec,
                                                                           "augmentation": trained_with},
        seed=seed, augmentation=trained_with, device=device, wall_time_s=time.time() - t0,
        manifest=manifest_path(cfg, spec["flavour"]),  # what it trained on (the workflow job's input)
        backbone_params=cost["params"], backbone_flops=cost["flops"], train_videos=len(train_split.records),
        world_size=ddp.world_size())}  # DDP runs are the same training, not bit-identical to one process
    if ddp.is_main_process():  # under torchrun rank 0 alone writes; the others wait until the files exist
        save_model(out, objective, cfg, run, seed, meta)
        if log:
            write_json(Path(out).with_name("train_log.json"), log)
    ddp.barrier()
    return meta


# ------------------------------------------------------------------------------------------- evaluate
def evaluate(cfg: dict[str, Any], run: str, seed: int, protocol: str, model_path: str | os.PathLike,
             out: str | os.PathLike, progress: bool = True, downstream: str | None = None) -> dict[str, Any]:


    t0 = time.time()
    spec = run_spec(cfg, run)
    device = ddp.init_from_env(resolve_device(cfg))  # under torchrun: fine-tuning shards its batches
    seed_everything(seed, cfg.get("threads", 1))
    model = load_model(model_path)
    cfg = with_backbone_crop(cfg, model["backbone_name"])  # evaluated at the size it was trained at
    static = model["static"]
    downstream = downstream or cfg["data"]["downstream_flavour"]
    train_split = split(cfg, downstream, "train")
    test_flavours = test_sets_for(cfg, downstream)
    test_sets = {name: clip_dataset(cfg, split(cfg, flavour, "test").records, "test", seed, static=static,
                                    flavour=flavour)
                 for name, flavour in test_flavours.items()}
    counterpart = static_twin_for(cfg, downstream)
    if counterpart and "swapped" in test_sets:
        test_sets["swapped_static"] = clip_dataset(cfg, split(cfg, counterpart, "test").records, "test", seed,
                                                   static=True, flavour=counterpart)
    ecfg = cfg["evaluate"]
    # absent from a preset means softmax (the schema fills no default: existing presets' job hashes stay put)
    clip_average = proto.resolve_clip_average(ecfg.get("clip_average", "softmax"), model["backbone_name"])
    if protocol not in protocols():
        raise ConfigError(f"unknown protocol {protocol!r}; expected {', '.join(PROTOCOLS[:-1])} or {PROTOCOLS[-1]}")
    if protocol == "finetune":
        amp.check_device("evaluate.finetune.precision", ft.FinetuneConfig.from_dict(ecfg["finetune"]).precision, device)
    results = protocols().get(protocol).evaluate(EvaluationInputs(cfg, run, spec, seed, model, device, downstream,
                                                                  train_split, test_sets, clip_average))
    _add_contrasted(results)
    record = {
        "run": run, "method": spec["method"], "role": spec["role"], "seed": seed, "protocol": protocol,
        "backbone": model["backbone_name"], "pretrain_flavour": spec["flavour"], "downstream": downstream,
        "test_sets": test_flavours,
        "results": results,
        "provenance": provenance(cfg={k: cfg[k] for k in ("data", "clip", "evaluate")} | {"run": spec},
                                 seed=seed, device=device, wall_time_s=time.time() - t0,
                                 manifest=manifest_path(cfg, downstream), model_file=str(model_path),
                                 pretrain=model["meta"]["provenance"]),
    }
    if ddp.is_main_process():  # every rank holds the same results; one writes them
        write_json(out, record)
    ddp.barrier()
    return record


def _add_contrasted(results: dict[str, Any]) -> None:
    """Contrasted accuracy (StillMix): right on the scene-swapped clip and wrong on its static twin."""

    swapped, static = results.get("swapped"), results.get("swapped_static")
    if isinstance(swapped, dict) and isinstance(static, dict) and "correct" in swapped and "correct" in static:
        swapped["contrasted_acc"] = contrasted_accuracy(torch.tensor(swapped["correct"]),
                                                        torch.tensor(static["correct"]))
