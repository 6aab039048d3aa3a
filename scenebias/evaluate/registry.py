"""The evaluation protocols, registered where each is defined.

A protocol module registers its evaluation with the dataclass of its `evaluate.<name>` config section
(`@register_protocol("linear", config=LinearProbeConfig)`); `scenebias.stages.evaluate` runs whichever is asked
for, on the inputs it prepares (`EvaluationInputs`). The workflow's order of protocols (scenebias.layout.PROTOCOLS,
the `{protocol}` wildcard's values) and config/schema.yaml's two protocol enums are checked against this registry
in one place, tests/workflow/test_layout.py. docs/extending.md walks a new protocol end to end.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..registry import Registry, import_package_modules
from ..resolve import clip_dataset


@dataclass(frozen=True)
class EvaluationInputs:
    """What every protocol reads: the model and the downstream set's train split and test sets, as
    `scenebias.stages.evaluate` prepares them."""
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


@dataclass
class Protocol:
    """A registered protocol: its evaluation (inputs -> results by test set) and its config section's dataclass
    (None: it reads only `evaluate`'s shared keys)."""
    name: str
    evaluate: Callable[[EvaluationInputs], dict[str, Any]]
    config: type | None


PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(name: str, config: type | None = None):
    """Decorator: register `fn(EvaluationInputs) -> results` as the protocol `name`."""
    def deco(fn: Callable[[EvaluationInputs], dict[str, Any]]):
        PROTOCOLS.register(name)(Protocol(name, fn, config))
        return fn
    return deco


def protocols() -> Registry[Protocol]:
    """The registry with every module of this package imported: each protocol registers itself on import, so a
    new protocol is a new module here (plus its name in layout.PROTOCOLS and config/schema.yaml)."""
    import_package_modules(__package__)
    return PROTOCOLS

