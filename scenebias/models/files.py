"""Model files: what a pretraining run saves (backbone, head, run and provenance) and how it is loaded back."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from ..io import atomic_path
from ..runs import run_backbone
from .backbones import build_backbone


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
