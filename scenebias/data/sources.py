"""Where each dataset comes from: a real root the user declared (`data.real`), a stand-in the user opted into
(`data.substitutes`), or the generated set — and whether the ground truth that only generated data carries
(actor masks, scene-swapped and static twins, an unbiased copy) exists for the run at hand.

One home for these facts: the planner drops the runs that need ground truth where there is none, the tables
map a paper's dataset to a flavour, the workflow skips the rules that read annotations, and the report says
why each of them is missing.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError
from .synthetic import FLAVOUR_FORMAT

# why a gate, the oracle, mask quality or a CAM outline is missing on real data (shown in the report)
NO_GROUND_TRUTH = "real datasets carry no ground truth (actor masks; scene-swapped, static or unbiased copies)"


def real_flavours(cfg: Mapping[str, Any]) -> list[str]:
    """The flavours the config reads from real roots (`data.real`; scenebias.data.manifest.real_roots gives
    their RealRoot objects)."""
    return list(cfg["data"].get("real") or {})


def uses_real_data(cfg: Mapping[str, Any]) -> bool:
    """True when the config declares any real root: then no generated stand-in is used unless opted into."""
    return bool(real_flavours(cfg))


def is_generated(cfg: Mapping[str, Any], flavour: str | None) -> bool:
    """True for a flavour read from the generated set (with its ground truth), False for a real root."""
    return flavour is not None and flavour not in real_flavours(cfg) and flavour in FLAVOUR_FORMAT


def primary_ground_truth(cfg: Mapping[str, Any]) -> bool:
    """True when the primary pretraining and downstream sets are generated, so the calibration gates (unbiased,
    scene-swapped and static copies), the oracle-mask control and mask quality can be computed."""
    d = cfg["data"]
    return is_generated(cfg, d["pretrain_flavour"]) and is_generated(cfg, d["downstream_flavour"])


def substitute(cfg: Mapping[str, Any], dataset: str) -> str | None:
    """The flavour the user chose to stand in for `dataset` (`data.substitutes`), or None."""
    return (cfg["data"].get("substitutes") or {}).get(dataset)


def check_substitutes(cfg: Mapping[str, Any], source: str) -> None:
    """Each `data.substitutes` value must be a real root or a generated flavour; raises ConfigError naming it."""
    known = sorted({*real_flavours(cfg), *FLAVOUR_FORMAT})
    for dataset, flavour in (cfg["data"].get("substitutes") or {}).items():
        if flavour not in known:
            raise ConfigError(f"{source}: data.substitutes.{dataset}: {flavour!r} is neither a data.real root nor "
                              f"a generated flavour; expected one of: {', '.join(known)}")


def check_evaluation_sets(cfg: Mapping[str, Any], source: str) -> None:
    """Each `data.evaluation_sets` set and copy must be a real root or a generated flavour (planning keeps only the
    generated ones, so a mistyped name would silently lose its gates); raises ConfigError naming it."""
    known = sorted({*real_flavours(cfg), *FLAVOUR_FORMAT})
    for name, spec in (cfg["data"].get("evaluation_sets") or {}).items():
        named = {"": name, **{f".{key}": flavour for key, flavour in spec.items() if key != "gates"}}
        for key, flavour in named.items():
            if flavour not in known:
                raise ConfigError(f"{source}: data.evaluation_sets.{name}{key}: {flavour!r} is neither a data.real "
                                  f"root nor a generated flavour; expected one of: {', '.join(known)}")
