"""Dataset resolution: which flavours a config reads, where their manifests are, their splits and clips, their
test sets and static twins, the generator's ground truth, and the data settings each flavour's jobs depend on
(their stage hashes), for generated flavours and real roots alike."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import data_dir
from .data.datasets import ClipDataset
from .data.formats import read_split
from .data.frame_cache import dataset_frames, frame_spec
from .data.manifest import RealRoot, manifest_options
from .data.synthetic import FLAVOUR_FORMAT
from .data.synthetic.annotations import actor_mask_source as from_annotations
from .errors import ConfigError, DataError
from .provenance import stable_hash
from .tables.plan import table_downstreams

ACTOR_OUT = "data/actor/{preset}/actor_hmdb51"  # data.actor.out when unset


def manifest_path(cfg: dict[str, Any], flavour: str | None = None) -> Path:
    """A flavour's dataset manifest, or with no flavour the one covering every flavour the config reads.

    Without real roots (`data.real` empty) this is the generated set's manifest.json, for any flavour.
    With them: a real flavour's own manifest `<data.manifest.dir>/<flavour>.manifest.json`
    (scenebias.data.manifest.build_manifest), a generated flavour's the generated manifest.json, and with no
    flavour the combined `<data.manifest.dir>/datasets.json` (combine_manifests over `dataset_manifests`).
    A model's and an evaluation's provenance record their own flavour's (scenebias.stages), a paper table's
    the combined one.
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


def cam_flavours(cfg: dict[str, Any]) -> list[str]:
    """The flavours the activation maps read unless told otherwise: the pretraining flavour and the
    scene-swapped test set's, when there is one."""
    d = cfg["data"]
    return list(dict.fromkeys(f for f in (d["pretrain_flavour"], d["test_sets"].get("swapped")) if f))


# ------------------------------------------------------------------------------------------ stage hashes
# A job's params carry the hash of what it reads, so editing the config reruns exactly the jobs whose inputs
# changed. The data settings below are per flavour: which sets are evaluated where (data.test_sets,
# evaluation_sets, static_counterpart, downstream_flavour, pretrain_flavour) is not a flavour's data, and the
# speed-only keys (scenebias.provenance.SPEED_ONLY_KEYS) are left out, since the clips are identical either way.

def actor_output(cfg: dict[str, Any]) -> Path | None:
    """Where Actor-HMDB51 is written (`data.actor.out`, rules/actor.smk); None when `data.actor` is unset."""
    actor = cfg["data"].get("actor")
    return Path(actor.get("out", ACTOR_OUT).format(preset=cfg["preset"])) if actor else None


def actor_source(cfg: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The name of the root Actor-HMDB51 is cropped from (`data.actor.source`, default hmdb51) and its
    `data.real` entry (None when no root has that name)."""
    name = (cfg["data"].get("actor") or {}).get("source", "hmdb51")
    return name, (cfg["data"].get("real") or {}).get(name)


def actor_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """What the Actor-HMDB51 crops depend on: `data.actor`, its source root and `data.on_missing`."""
    d = cfg["data"]
    return {"actor": d.get("actor") or {}, "source": actor_source(cfg)[1], "on_missing": d.get("on_missing", "error")}


def real_root_source(cfg: dict[str, Any], flavour: str) -> dict[str, Any]:
    """What a real root's manifest depends on: its `data.real` entry, how files are checked (`data.manifest`
    checksum and decode probe; its folder is the output's path) and, for a root that is Actor-HMDB51's output,
    the crops' settings. Not the frames or `on_missing`: listing and hashing Kinetics takes hours."""
    opts = manifest_options(cfg)
    source = {"real": cfg["data"]["real"][flavour],
              "manifest": {"checksum": opts["checksum"], "decode_probe": opts["decode_probe"]}}
    out = actor_output(cfg)
    if out is not None and os.path.abspath(cfg["data"]["real"][flavour]["root"]) == os.path.abspath(out):
        source["actor"] = actor_settings(cfg)
    return source


def flavour_data(cfg: dict[str, Any], flavour: str) -> dict[str, Any]:
    """The data settings that decide a flavour's records and the frames a loader returns for them.

    Generated: the whole `data.generator` (one `generate` job writes every generated flavour). A real root:
    `real_root_source` and `data.on_missing` (which listed videos a split skips). Both: the frames
    (`data.frames`, its `auto` short side resolved from the clip crops)."""
    frames = frame_spec(cfg).key
    if flavour in (cfg["data"].get("real") or {}):
        return {**real_root_source(cfg, flavour), "on_missing": cfg["data"].get("on_missing", "error"),
                "frames": frames}
    return {"generator": cfg["data"].get("generator") or {}, "frames": frames}


def data_stage(cfg: dict[str, Any], flavours: Any) -> str:
    """The hash of the data settings of `flavours` (a job's params entry): unchanged by any setting of another
    flavour, by which sets are evaluated where, and by speed-only keys."""
    return stable_hash({f: flavour_data(cfg, f) for f in sorted(set(flavours))})


def generator_stage(cfg: dict[str, Any]) -> str:
    """What `generate` depends on: `data.generator` alone (the worker count is speed only)."""
    return stable_hash(cfg["data"].get("generator") or {})


def real_manifest_stage(cfg: dict[str, Any], flavour: str) -> str:
    """What a real root's manifest job depends on (`real_root_source`)."""
    return stable_hash(real_root_source(cfg, flavour))
