"""Method plugin API: one method = one file in `methods/`, registered with `@register_method`.

A method is a `TrainObjective` subclass: the suite hands it the backbone and a batch of clips; it returns
the loss and the statistics to log. The suite owns the backbone, data, optimiser, schedule, checkpointing
and every evaluation, so methods are compared on equal terms. External packages register through the
entry-point group `scenebias.methods`.

A method file imports only the library (and torch), never another method: shared building blocks live in
`scenebias.augment` (FAME's mask and merge, BE's distractors, the derangement) and `scenebias.train.moco` (MoCo,
its objective `MocoObjective`, the hard-negative step), and a method built on another names it as its `parent`.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from .errors import ConfigError, PluginError, ScenebiasError
from .registry import Registry

Augment = Callable[[torch.Tensor], torch.Tensor]


class TrainObjective(nn.Module):
    """Base class of every method.

    dataset_mode: what a batch holds (an instance may override it from its options):
      "pair"   -> batch["views"] (B, 2, C, T, H, W): two clips of each video, independent starts and crops;
      "triple" -> batch["views"] (B, 3, C, T, H, W): as "pair" plus a third clip whose start frame differs
                  from view 0's (another moment of the same video: BE's hard negative, DSM's negative);
      "single" -> batch["clip"] (B, C, T, H, W); "none" -> nothing to train.
      Every batch also has "label" (B,) and "index" (B,) (the video's index in the training split).
    clip_len_factor: clips hold clip_len × this many frames (same stride, one crop), e.g. for Clip Order's
      consecutive sub-clips; the evaluations always see clip_len frames.
    static: train on static clips (one frame repeated), e.g. the static-video classifier.
    augmentation: the batch augmentation `training_loss` receives: "contrastive" (MoCo v2's colour jitter,
      grayscale and blur, then normalisation: every self-supervised method) or "finetune" (the fine-tuning
      protocol's: `evaluate.finetune.colour` when set, then normalisation; supervised rows, the static classifier
      and the calibration rows).
    needs_masks: batches also hold "masks" (B, V, T, H, W) bool, the ground-truth actor mask of each view
      (generated data only), e.g. for the oracle-mask positive control.
    shared_start: views 0 and 1 start at the same frame (two crops of the same frames, BE's positive pair);
      default two independent starts.
    """

    dataset_mode: ClassVar[str] = "pair"
    clip_len_factor: ClassVar[int] = 1
    static: bool = False
    augmentation: ClassVar[str] = "contrastive"
    needs_masks: bool = False
    shared_start: bool = False

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes

    def training_loss(self, batch: dict[str, torch.Tensor], augment: Augment,
                      generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`augment` applies the suite's colour augmentation and normalisation to a (B, C, T, H, W) batch;
        methods that mix clips (FAME, BE, Mixup) do so before calling it."""
        raise NotImplementedError

    def make_views(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """The clips this method feeds its encoder(s), before colour augmentation: each (B, C, T, H, W) in
        [0, 1]. View builders (FAME, BE, Mixup, DSM warps) live here; the contract tests check them."""
        if "views" in batch:
            return tuple(batch["views"].unbind(1))
        return (batch["clip"],)

    def classifier(self) -> nn.Module | None:
        """A clips -> logits model for methods trained with labels (used by the `classifier` protocol)."""
        return None

    @classmethod
    def needs_ground_truth(cls, options: dict[str, Any]) -> bool:
        """Whether training with these (complete) options reads the generator's ground truth, as `needs_masks`
        does: such a run exists only on generated data (the planner drops it on real roots, saying why)."""
        return False


@dataclass(frozen=True)
class MethodSpec:
    name: str
    objective: type[TrainObjective]
    defaults: dict[str, Any]
    paper: str
    description: str
    variants: dict[str, list[Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)  # options a preset pins (see `register_preset`)

    def options(self, overrides: dict[str, Any] | None, where: str = "method") -> dict[str, Any]:
        """Defaults updated with `overrides`; unknown keys and wrong types are errors naming the key."""
        merged = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key in self.fixed:
                raise ConfigError(f"{where}: option {key!r} is fixed to {self.fixed[key]!r} by the preset "
                                  f"{self.name!r}; use its base method to vary it")
            if key not in self.defaults:
                raise ConfigError(f"{where}: unknown option {key!r} for method {self.name!r}; "
                                  f"expected one of: {', '.join(sorted(self.defaults)) or '(none)'}")
            default = self.defaults[key]
            if default is not None and not _compatible(value, default):
                raise ConfigError(f"{where}.{key}: {value!r} should be of type {type(default).__name__}")
            if key in self.variants and value not in self.variants[key]:
                raise ConfigError(f"{where}.{key}: {value!r} is not one of {self.variants[key]}")
            merged[key] = value
        return merged

    def needs_ground_truth(self, overrides: dict[str, Any] | None = None) -> bool:
        """Whether a run of this method with `overrides` trains on generated ground truth (e.g. actor masks)."""
        return self.objective.needs_ground_truth({**self.options(overrides), **self.fixed})

    def build(self, backbone: nn.Module, num_classes: int, overrides: dict[str, Any] | None = None
              ) -> TrainObjective:
        return self.objective(backbone, num_classes, **self.options(overrides), **self.fixed)


def _compatible(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


METHODS: Registry[MethodSpec] = Registry("method")

# Registrations built on another method (`register_method(..., parent=...)`, `register_preset(..., base, ...)`)
# wait here, name -> (base, make the spec from the base's), until their base is registered: plugin files never
# import each other, and the order in which they are imported does not matter (`load_methods` resolves the rest).
_PENDING: dict[str, tuple[str, Callable[[MethodSpec], MethodSpec]]] = {}


def register_method(name: str, *, paper: str, defaults: dict[str, Any] | None = None, description: str = "",
                    variants: dict[str, list[Any]] | None = None, parent: str | None = None
                    ) -> Callable[[type[TrainObjective]], type]:
    """Register a `TrainObjective` subclass as method `name` with its options' `defaults` and `variants`.

    `parent`: the method it extends (its class must subclass the parent's, e.g. `parent="moco"` for a
    `scenebias.train.moco.MocoObjective` subclass). It inherits the parent's options, defaults and variants, in the
    parent's order, followed by its own (`defaults` and `variants` then list only what the method adds or
    changes), and any option a parent preset pins. The parent may be registered later (any plugin file or
    entry point); `load_methods` resolves it."""
    def deco(cls: type[TrainObjective]) -> type[TrainObjective]:
        own_defaults, own_variants = dict(defaults or {}), dict(variants or {})
        text = description or (cls.__doc__ or "").strip().splitlines()[0]
        if parent is None:
            _check_new(name)
            METHODS.register(name)(MethodSpec(name, cls, own_defaults, paper, text, own_variants))
            _resolve_pending(strict=False)  # methods and presets that were waiting for this one
            return cls

        def extend(base: MethodSpec) -> MethodSpec:
            if not issubclass(cls, base.objective):
                raise PluginError(f"method {name!r}: its class {cls.__name__} does not subclass "
                                  f"{base.objective.__name__}, the class of its parent {parent!r}")
            return MethodSpec(name, cls, {**base.defaults, **own_defaults}, paper, text,
                              {**base.variants, **own_variants}, dict(base.fixed))

        _register_after(name, parent, extend)
        return cls

    return deco


def register_preset(name: str, base: str, *, fixed: dict[str, Any], paper: str, description: str) -> None:
    """A named method that is another method with some options pinned (e.g. `moco+mixup` is `moco+be` with
    `distractor=mixup`): a variant with its own name in tables, never a copy of the code. `base` may be registered
    later (another plugin file); the preset is registered as soon as it is, at the latest by `load_methods`."""
    def pin(parent: MethodSpec) -> MethodSpec:
        for key in fixed:
            parent.options({key: fixed[key]}, where=f"preset {name!r}")  # the pinned values must be valid
        return MethodSpec(name, parent.objective, {k: v for k, v in parent.defaults.items() if k not in fixed},
                          paper, description, {k: v for k, v in parent.variants.items() if k not in fixed},
                          {**parent.fixed, **fixed})

    _register_after(name, base, pin)


def _check_new(name: str) -> None:
    if name in METHODS or name in _PENDING:
        raise ValueError(f"method {name!r} is registered twice")


def _register_after(name: str, base: str, make: Callable[[MethodSpec], MethodSpec]) -> None:
    _check_new(name)
    _PENDING[name] = (base, make)
    _resolve_pending(strict=False)


def _resolve_pending(strict: bool) -> None:
    """Register every waiting method whose base is registered, until none is left that can be (a chain such as a
    preset of a child of `moco` resolves whatever the order); `strict`: one still waiting is an error naming it."""
    progress = True
    while progress:
        progress = False
        for name, (base, make) in list(_PENDING.items()):
            if base in METHODS:
                del _PENDING[name]
                METHODS.register(name)(make(METHODS.get(base)))
                progress = True
    if strict and _PENDING:
        waiting = ", ".join(f"{name!r} (on {base!r})" for name, (base, _) in _PENDING.items())
        raise PluginError(f"methods built on a method that no plugin registers: {waiting}; registered: "
                          f"{', '.join(METHODS.names())}")


_loaded = False


def load_methods() -> Registry[MethodSpec]:
    """Load every `scenebias.methods` entry point once (the built-in methods are the `builtin` one, the package
    `scenebias_methods`), then register the methods and presets that were waiting for their base."""
    global _loaded
    if not _loaded:
        _loaded = True
        found = entry_points(group="scenebias.methods")
        if not any(ep.name == "builtin" for ep in found):
            raise PluginError("the built-in methods' entry point (scenebias.methods: builtin = scenebias_methods) is "
                              "not installed: install the suite with `make venv` (pip install -e .)")
        for ep in found:
            _import_plugin(ep.load, f"entry point {ep.name!r} = {ep.value!r} (group scenebias.methods)")
    _resolve_pending(strict=True)  # parents and preset bases from any file, in any import order
    return METHODS


def import_plugin_modules(package: str, path: list[str]) -> None:
    """Import every module of a plugin package (`path` is its `__path__`), each failure an error naming the file:
    how a package of methods, the built-in one included, registers all its files."""
    for info in pkgutil.iter_modules(path):
        _import_plugin(lambda: importlib.import_module(f"{package}.{info.name}"), f"{Path(path[0]) / info.name}.py")


def _import_plugin(load: Callable[[], Any], where: str) -> None:
    """Import one plugin; a broken one is an error naming its file, not a bare traceback from the registry."""
    try:
        load()
    except ScenebiasError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of third-party plugin code
        raise PluginError(f"{where}: the method plugin failed to import: {type(exc).__name__}: {exc}") from exc


def get_method(name: str) -> MethodSpec:
    return load_methods().get(name)


__all__ = ["TrainObjective", "MethodSpec", "METHODS", "register_method", "register_preset", "load_methods",
           "import_plugin_modules",
           "get_method"]
