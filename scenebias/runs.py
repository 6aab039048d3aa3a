"""A run's resolved settings: its spec with defaults filled in, its backbone and the crop that backbone sees."""
from __future__ import annotations

from typing import Any

from .errors import ConfigError


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


def pretrain_precision_key(run: str, spec: dict[str, Any]) -> str:
    """The config key that sets the run's pretraining precision: its own `pretrain.precision`, else the preset's."""
    return f"runs.{run}.pretrain.precision" if "precision" in (spec.get("pretrain") or {}) else "pretrain.precision"


def run_spec(cfg: dict[str, Any], run: str) -> dict[str, Any]:
    if run not in cfg["runs"]:
        raise ConfigError(f"run {run!r} is not in runs; expected one of: {', '.join(cfg['runs'])}")
    spec = dict(cfg["runs"][run])
    spec["flavour"] = spec.get("flavour") or cfg["data"]["pretrain_flavour"]
    spec["protocols"] = spec.get("protocols") or cfg["evaluate"]["protocols"]
    return spec
