"""Single runs, shared by the CLI and the Snakemake rules: generate, pretrain, evaluate.

Every run reads the validated config, writes its outputs atomically and records provenance.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import data_dir
from .data.datasets import ClipDataset
from .data.formats import read_split
from .data.frame_cache import dataset_frames
from .data.manifest import RealRoot, manifest_options
from .data.synthetic import FLAVOUR_FORMAT
from .data.synthetic.annotations import actor_mask_source as from_annotations
from .data.transforms import colour_augment, normalize
from .errors import ConfigError, DataError
from .evaluate import finetune as ft
from .evaluate import linear as lin
from .evaluate import protocol as proto
from .evaluate import retrieval as ret
from .evaluate.protocol import contrasted_accuracy
from .evaluate.protocol import seed_everything as seed_all
from .io import atomic_path, write_json
from .layout import PROTOCOLS
from .models.backbones import build_backbone, complexity
from .plugins import get_method
from .provenance import provenance
from .tables.plan import table_downstreams
from .train import distributed as ddp
from .train.loop import TrainConfig, read_log, train


# ----------------------------------------------------------------------------------------------- setup
def resolve_device(cfg: dict[str, Any]) -> str:
    wanted = cfg.get("device", "cpu")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but no CUDA device is available; use 'cpu' or 'auto'")
    return wanted


def seed_everything(seed: int, threads: int) -> None:
    """Seeded and deterministic for a fixed thread count (jobs run side by side, one thread each by default)."""

    torch.set_num_threads(threads)
    seed_all(seed)


def run_backbone(cfg: dict[str, Any], run: str) -> dict[str, Any]:
    """The run's backbone ({name, options}): its own `backbone` (e.g. a paper table's I3D) or the preset's."""
    own = cfg["runs"][run].get("backbone")
    return {"name": own["name"], "options": own.get("options", {})} if own else \
        {"name": cfg["backbone"]["name"], "options": cfg["backbone"].get("options", {})}


def with_backbone_crop(cfg: dict[str, Any], backbone: str) -> dict[str, Any]:
    """`cfg` as a run of `backbone` sees it: `clip.crop_size` is `clip.crop_size_by_backbone[backbone]` where the
    preset names that backbone (the paper preset: FAME's scripts train and test I3D at 224 px), for the run's
    pretraining and evaluation clips alike; `cfg` itself, untouched, for every other backbone."""
    crop = (cfg["clip"].get("crop_size_by_backbone") or {}).get(backbone)
    return cfg if crop is None else {**cfg, "clip": {**cfg["clip"], "crop_size": crop}}


def run_spec(cfg: dict[str, Any], run: str) -> dict[str, Any]:
    if run not in cfg["runs"]:
        raise ConfigError(f"run {run!r} is not in runs; expected one of: {', '.join(cfg['runs'])}")
    spec = dict(cfg["runs"][run])
    spec["flavour"] = spec.get("flavour") or cfg["data"]["pretrain_flavour"]
    spec["protocols"] = spec.get("protocols") or cfg["evaluate"]["protocols"]
    return spec


def manifest_path(cfg: dict[str, Any], flavour: str | None = None) -> Path:
    """The dataset manifest whose hash goes into provenance.

    Without real roots (`data.real` empty) this is the generated set's manifest.json, for any flavour.
    With them: a real flavour's own manifest `<data.manifest.dir>/<flavour>.manifest.json`
    (scenebias.data.manifest.build_manifest), a generated flavour's the generated manifest.json, and with no
    flavour the combined `<data.manifest.dir>/datasets.json` (combine_manifests over `dataset_manifests`).
    """
    real = cfg["data"].get("real") or {}
    if not real or (flavour is not None and flavour not in real):
        return data_dir(cfg) / "manifest.json"

    folder = manifest_options(cfg)["dir"]
    return folder / "datasets.json" if flavour is None else folder / f"{flavour}.manifest.json"


def dataset_manifests(cfg: dict[str, Any]) -> dict[str, Path]:
    """{flavour: its manifest} for every flavour the config reads (pretraining, downstream, test sets, the
    static counterpart, per-run flavours, the paper tables' downstream sets, the evaluation sets' copies): the
    inputs of the combined manifest."""

    d = cfg["data"]
    used = {d["pretrain_flavour"], d["downstream_flavour"], *d["test_sets"].values(),
            *(spec.get("flavour") for spec in cfg.get("runs", {}).values()), *table_downstreams(cfg),
            *evaluation_set_copies(cfg)}
    if d.get("static_counterpart"):
        used.add(d["static_counterpart"])
    return {f: manifest_path(cfg, f) for f in sorted(u for u in used if u)}


def split(cfg: dict[str, Any], flavour: str, subset: str):
    """One subset of a flavour: from its real root when `data.real` names it (with `data.on_missing`;
    skipped videos are in the result's `.skipped`), else from the generated set."""

    real = cfg["data"].get("real") or {}
    if flavour in real:

        return RealRoot.from_config(flavour, real[flavour]).read(subset, cfg["data"].get("on_missing", "error"))
    root = data_dir(cfg) / flavour
    if flavour not in FLAVOUR_FORMAT:
        raise ConfigError(f"unknown dataset flavour {flavour!r}; expected one of: {', '.join(FLAVOUR_FORMAT)}"
                          + (f", or a real root ({', '.join(real)})" if real else " (or a data.real root)"))
    if not root.exists():
        raise DataError(f"{root}: dataset folder not found (run `scenebias generate` or the `generate` rule)")
    return read_split(FLAVOUR_FORMAT[flavour], root, subset)


def clip_dataset(cfg: dict[str, Any], records, mode: str, seed: int, static: bool = False,
                 clip_len_factor: int = 1, flavour: str | None = None, actor_masks: bool = False,
                 shared_start: bool = False):
    """Clips of `records`; with `data.frame_cache` on, frames come from the flavour's frame cache; with
    `actor_masks`, pair/triple items carry each view's ground-truth actor masks (generated flavours only)."""

    c = cfg["clip"]
    return ClipDataset(records, clip_len=c["clip_len"] * clip_len_factor, stride=c["stride"], mode=mode,
                       num_test_clips=cfg["evaluate"]["test_clips"], crop_size=c["crop_size"], static=static,
                       seed=seed, cache=True, scale=tuple(c["crop_scale"]),
                       **dataset_frames(cfg, flavour),
                       actor_masks=actor_mask_source(cfg, flavour) if actor_masks else None,
                       shared_start=shared_start)


def actor_mask_source(cfg: dict[str, Any], flavour: str | None):
    """The generator's ground-truth actor masks of a flavour (record -> (T, H, W) bool). Real datasets have no
    ground truth: asking for it there is an error naming the flavour."""

    if flavour is None or flavour in (cfg["data"].get("real") or {}):
        raise ConfigError(f"ground-truth actor masks (an oracle-mask run) exist only for generated data, but the "
                          f"pretraining flavour {flavour!r} is a real dataset root; the positive control is not "
                          f"available there (drop the run or pretrain it on a generated flavour)")
    return from_annotations(data_dir(cfg) / flavour)


def augment_factory(generator: torch.Generator, augmentation: str = "contrastive",
                    colour: dict[str, Any] | None = None):
    """One step's batch augmentation for a method's declared `augmentation` (TrainObjective.augmentation):
    "contrastive" is MoCo v2's colour stack (jitter, grayscale, blur; `colour` overrides its parameters and the
    order of its `stages`, the preset's `pretrain.colour`) then normalisation; "finetune" is the fine-tuning
    protocol's: its colour augmentation when `colour` is given (the preset's `evaluate.finetune.colour`, complete),
    then normalisation (its crop and flip happen in the dataset, as for every method)."""

    if augmentation == "contrastive":
        kw = dict(colour or {})
        if "jitter" in kw:
            kw["jitter"] = tuple(kw["jitter"])
        return lambda x: normalize(colour_augment(x, generator, **kw))
    if augmentation == "finetune":
        if colour is None:
            return normalize
        return lambda x: normalize(colour_augment(x, generator, **colour))
    raise ConfigError(f"augmentation {augmentation!r}: expected 'contrastive' or 'finetune'")


def augmentation_colour(cfg: dict[str, Any], augmentation: str, tcfg: TrainConfig) -> dict[str, Any] | None:
    """The colour options of a declared augmentation: the pretraining stack's (`pretrain.colour`) for
    "contrastive", the fine-tuning protocol's (`evaluate.finetune.colour`, completed; None: no colour) for
    "finetune", so a supervised row trains exactly as the fine-tuning protocol does."""
    if augmentation == "finetune":
        return ft.FinetuneConfig.from_dict(cfg["evaluate"]["finetune"]).colour
    return tcfg.colour


# ---------------------------------------------------------------------------------------- model files
def save_model(path: str | os.PathLike, objective, cfg: dict[str, Any], run: str, seed: int,
               extra: dict[str, Any]) -> None:
    classifier = objective.classifier()
    head = None
    if classifier is not None:
        head = {k: v for k, v in classifier.state_dict().items() if not k.startswith("0.")}
    payload = {
        "format": "scenebias-model/1",
        "run": run, "seed": seed, "method": cfg["runs"][run]["method"],
        "options": cfg["runs"][run].get("options", {}),
        "backbone_name": run_backbone(cfg, run)["name"], "backbone_options": run_backbone(cfg, run)["options"],
        "backbone": objective.backbone.state_dict(), "head": head,
        "num_classes": objective.num_classes, "static": bool(getattr(objective, "static", False)),
        "meta": extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | os.PathLike) -> dict[str, Any]:
    """A model file with its backbone built under "backbone_module", on the CPU: the protocol that runs it puts
    it on its device (scenebias.device)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: model file not found")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise DataError(f"{p}: not a readable scenebias model file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != "scenebias-model/1":
        raise DataError(f"{p}: not a scenebias model file (expected format 'scenebias-model/1')")
    backbone = build_backbone(payload["backbone_name"], **payload["backbone_options"])
    backbone.load_state_dict(payload["backbone"], strict=True)
    payload["backbone_module"] = backbone
    return payload


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
        seed=seed, augmentation=trained_with, device=device, wall_time_s=time.time() - t0, manifest=manifest_path(cfg),
        backbone_params=cost["params"], backbone_flops=cost["flops"], train_videos=len(train_split.records),
        world_size=ddp.world_size())}  # DDP runs are the same training, not bit-identical to one process
    if ddp.is_main_process():  # under torchrun rank 0 alone writes; the others wait until the files exist
        save_model(out, objective, cfg, run, seed, meta)
        if log:
            write_json(Path(out).with_name("train_log.json"), log)
    ddp.barrier()
    return meta


# ------------------------------------------------------------------------------------------- evaluate
def test_sets_for(cfg: dict[str, Any], downstream: str) -> dict[str, str]:
    """Test set name -> flavour for a downstream flavour: the configured sets (biased, scene-swapped, ...) for
    `data.downstream_flavour`; for any other its own test split (named `test`) and, for an evaluation set or its
    unbiased copy (`data.evaluation_sets`), the set's scene-swapped copy (named `swapped`)."""
    if downstream == cfg["data"]["downstream_flavour"]:
        return dict(cfg["data"]["test_sets"])
    sets = {"test": downstream}
    spec = _evaluation_set_of(cfg, downstream)
    if spec.get("swapped"):
        sets["swapped"] = spec["swapped"]  # the set's scene-swapped copy, for its own and its unbiased copy's models
    return sets


def evaluation_set_copies(cfg: dict[str, Any]) -> set[str]:
    """Every generated copy (scene-swapped, static, unbiased) of the evaluation sets (`data.evaluation_sets`)."""
    return {f for spec in (cfg["data"].get("evaluation_sets") or {}).values() for k, f in spec.items() if k != "gates"}


def static_twin_for(cfg: dict[str, Any], downstream: str) -> str | None:
    """The flavour holding the static twin of `downstream`'s scene-swapped test set (its middle frames), if any:
    `data.static_counterpart` for the primary set, an evaluation set's `static` for the set and its unbiased copy."""
    if downstream == cfg["data"]["downstream_flavour"]:
        return cfg["data"].get("static_counterpart")
    return _evaluation_set_of(cfg, downstream).get("static")


def _evaluation_set_of(cfg: dict[str, Any], downstream: str) -> dict[str, Any]:
    """The data.evaluation_sets entry whose set or unbiased copy `downstream` is ({} for none)."""
    return next((spec for name, spec in (cfg["data"].get("evaluation_sets") or {}).items()
                 if downstream in (name, spec.get("unbiased"))), {})


@dataclass(frozen=True)
class EvaluationInputs:
    """What every protocol reads: the model and the downstream set's train split and test sets, as `evaluate`
    prepares them."""
    cfg: dict[str, Any]
    run: str
    spec: dict[str, Any]
    seed: int
    model: dict[str, Any]
    device: str
    downstream: str
    train_split: Any
    test_sets: dict[str, Any]
    clip_average: Any

    @property
    def backbone(self):
        return self.model["backbone_module"]

    @property
    def num_classes(self) -> int:
        return len(self.train_split.class_names)

    def train_clips(self, mode: str):
        """The downstream train split as clips: "single" (a training view) or "test" (the multi-clip gallery)."""
        return clip_dataset(self.cfg, self.train_split.records, mode, self.seed, self.model["static"],
                            flavour=self.downstream)


def _linear(e: EvaluationInputs) -> dict[str, Any]:

    train_set = e.train_clips("single")
    lcfg = lin.LinearProbeConfig.from_dict(proto.with_loader_workers(e.cfg["evaluate"], "linear"))
    return lin.linear_probe(e.backbone, train_set, e.test_sets, e.num_classes, lcfg, e.device, e.seed,
                            clip_average=e.clip_average)


def _finetune(e: EvaluationInputs) -> dict[str, Any]:

    train_set = e.train_clips("single")
    fcfg = ft.FinetuneConfig.from_dict(proto.with_loader_workers(e.cfg["evaluate"], "finetune"))
    return ft.finetune(e.backbone, train_set, e.test_sets, e.num_classes, fcfg, e.device, e.seed,
                       clip_average=e.clip_average)


def _retrieval(e: EvaluationInputs) -> dict[str, Any]:

    gallery = e.train_clips("test")
    ecfg = e.cfg["evaluate"]
    rcfg = ret.RetrievalConfig.from_dict({**proto.with_loader_workers(ecfg, "retrieval"),
                                          "batch_size": ecfg["batch_size"]})
    return ret.retrieval_levels(e.backbone, gallery, e.test_sets, rcfg, e.device)


def _classifier(e: EvaluationInputs) -> dict[str, Any]:

    model, run, spec = e.model, e.run, e.spec
    if model["head"] is None:
        raise ConfigError(f"runs.{run}.protocols: 'classifier' needs a method trained with labels, "
                          f"but {model['method']!r} has no classifier head")
    trained_on = split(e.cfg, spec["flavour"], "train").class_names
    if list(trained_on) != list(e.train_split.class_names):
        raise ConfigError(f"runs.{run}: the 'classifier' protocol tests on the classes it was trained on, but "
                          f"the run trained on {spec['flavour']!r} ({len(trained_on)} classes) and the downstream "
                          f"set {e.downstream!r} has other classes")
    classifier = get_method(model["method"]).build(e.backbone, model["num_classes"], model["options"])
    classifier.load_state_dict({"backbone." + k: v for k, v in model["backbone"].items()}
                               | {"head." + k.split(".", 1)[1]: v for k, v in model["head"].items()},
                               strict=True)
    net = classifier.classifier()  # multi_clip_predict puts it on the device and in eval mode
    ecfg = e.cfg["evaluate"]
    results = {}
    for name, ds in e.test_sets.items():
        probs, labels = proto.multi_clip_predict(net, ds, ecfg["batch_size"], e.device, proto.loader_workers(ecfg),
                                                 clip_average=e.clip_average)
        results[name] = proto.classification_metrics(probs, labels, e.num_classes)
    return results


# protocol -> its evaluation (the keys are scenebias.layout.PROTOCOLS, in that order; tests/test_layout.py)
EVALUATORS = {"linear": _linear, "finetune": _finetune, "retrieval": _retrieval, "classifier": _classifier}


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
    evaluator = EVALUATORS.get(protocol)
    if evaluator is None:
        raise ConfigError(f"unknown protocol {protocol!r}; expected {', '.join(PROTOCOLS[:-1])} or {PROTOCOLS[-1]}")
    results = evaluator(EvaluationInputs(cfg, run, spec, seed, model, device, downstream, train_split, test_sets,
                                         clip_average))
    _add_contrasted(results)
    record = {
        "run": run, "method": spec["method"], "role": spec["role"], "seed": seed, "protocol": protocol,
        "backbone": model["backbone_name"], "pretrain_flavour": spec["flavour"], "downstream": downstream,
        "test_sets": test_flavours,
        "results": results,
        "provenance": provenance(cfg={k: cfg[k] for k in ("data", "clip", "evaluate")} | {"run": spec},
                                 seed=seed, device=device, wall_time_s=time.time() - t0,
                                 manifest=manifest_path(cfg), model_file=str(model_path),
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
