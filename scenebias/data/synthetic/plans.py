"""Planning: which videos each flavour holds (class, split, scene family, post steps), without pixels."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import formats
from .config import GeneratorConfig
from .flavours import FLAVOURS, ucf_class_name
from .seeding import _rng


def class_rhos(cfg: GeneratorConfig, namespace: str, num_classes: int, rho: float, spread: float) -> np.ndarray:
    """rho_c per class: evenly spread over [rho - spread, rho + spread] in a seeded class order, clipped."""
    k = cfg.scene_families
    if num_classes == 1:
        vals = np.array([rho])
    else:
        vals = rho - spread + 2 * spread * np.arange(num_classes) / (num_classes - 1)
    order = _rng(cfg.seed, namespace, "rho-order").permutation(num_classes)
    out = np.empty(num_classes)
    out[order] = vals
    return np.clip(out, 1.0 / k, 1.0)


def draw_scene_family(rng: np.random.Generator, label: int, rho_c: float, k: int) -> tuple[int, bool]:
    """Own family `label` with probability rho_c, else a uniformly random other family (so rho_c is exact)."""
    if rng.random() < rho_c:
        return label, True
    other = int(rng.integers(0, k - 1))
    fam = other + (other >= label)
    return fam, False


@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video; cheap to build, picklable."""

    flavour: str
    rel: str                 # video path relative to the flavour root (posix)
    label: int
    class_name: str
    subset: str              # "train", "test" or "unused"
    stages: tuple[str, ...]  # one motion, or two for Diving48-like classes
    num_frames: int          # this video's length (Diving48-like videos may differ from the others)
    namespace: str           # seeds actor / motion / scene variation: (seed, namespace, index)
    index: int
    scene_ns: str            # which set of scene families ("ucf", "hmdb", "diving")
    scene_family: int
    own_scene: bool
    post: str = "none"       # scene step: "none", "swap" or "static" (swap + middle frame)
    original_family: int = -1  # for swap/static: the family of the video it was made from
    swap_ns: str = ""        # for swap/static: the seed stream of the new scene (family and variation)
    actor_crop: bool = False  # crop every frame to the actor (after the scene step): the actor_* flavours

    @property
    def annotation_rel(self) -> str:
        return "annotations/" + str(Path(self.rel).with_suffix(".npz").as_posix())


def _scene_of(cfg: GeneratorConfig, flavour: str, idx: int, label: int, rho_c: float | None) -> tuple[int, bool]:
    """A video's scene family and whether it is its class's own: biased with rho_c, else uniform (unbiased)."""
    rng = _rng(cfg.seed, flavour, idx, "bias")
    if rho_c is not None:
        return draw_scene_family(rng, label, rho_c, cfg.scene_families)
    fam = int(rng.integers(0, cfg.scene_families))
    return fam, fam == label


def _ucf_plans(cfg: GeneratorConfig, flavour: str, biased: bool) -> list[VideoPlan]:
    names = cfg.ucf_names()
    motion_of = {ucf_class_name(m): m for m in cfg.ucf_classes}
    rhos = class_rhos(cfg, "ucf", len(names), cfg.rho, cfg.rho_spread)
    sizes = _rng(cfg.seed, "ucf-sizes")  # shared by ucf101 and ucf101_unbiased: "same classes and sizes"
    lo, hi = cfg.ucf_clips_per_group
    plans: list[VideoPlan] = []
    idx = 0
    for label, cname in enumerate(names):
        for g in range(1, cfg.ucf_groups + 1):
            for c in range(1, int(sizes.integers(lo, hi + 1)) + 1):
                fam, own = _scene_of(cfg, flavour, idx, label, float(rhos[label]) if biased else None)
                plans.append(VideoPlan(
                    flavour=flavour, rel=f"UCF101/{cname}/v_{cname}_g{g:02d}_c{c:02d}.avi", label=label,
                    class_name=cname, subset="test" if g <= cfg.ucf_test_groups else "train",
                    stages=(motion_of[cname],), num_frames=cfg.num_frames, namespace=flavour, index=idx,
                    scene_ns="ucf", scene_family=fam, own_scene=own))
                idx += 1
    return plans


def _swap_plans(cfg: GeneratorConfig, base: list[VideoPlan], flavour: str, post: str, swap_ns: str
                ) -> list[VideoPlan]:
    """The base's test videos on a scene family that is neither the class's own nor the original one."""
    out = []
    for p in base:
        if p.subset != "test":
            continue
        rng = _rng(cfg.seed, swap_ns, p.index, "swap-family")
        choices = [f for f in range(cfg.scene_families) if f not in (p.label, p.scene_family)]
        fam = int(choices[int(rng.integers(0, len(choices)))])
        out.append(dataclasses.replace(p, flavour=flavour, scene_family=fam, own_scene=False, post=post,
                                       original_family=p.scene_family, swap_ns=swap_ns))
    return out


def _hmdb_plans(cfg: GeneratorConfig, flavour: str, biased: bool) -> list[VideoPlan]:
    names = cfg.hmdb_names()
    rhos = class_rhos(cfg, "hmdb", len(names), *cfg.hmdb_bias())
    n_tr, n_te, n_un = cfg.hmdb_train_per_class, cfg.hmdb_test_per_class, cfg.hmdb_unused_per_class
    plans = []
    idx = 0
    for label, cname in enumerate(names):
        n = n_tr + n_te + n_un
        tags = np.array(["train"] * n_tr + ["test"] * n_te + ["unused"] * n_un)
        tags = tags[_rng(cfg.seed, "hmdb-tags", label).permutation(n)]  # shared: the same split for every copy
        for j in range(n):
            fam, own = _scene_of(cfg, flavour, idx, label, float(rhos[label]) if biased else None)
            plans.append(VideoPlan(
                flavour=flavour, rel=f"videos/{cname}/{cname}_{j + 1:03d}.avi", label=label, class_name=cname,
                subset=str(tags[j]), stages=(cname,), num_frames=cfg.num_frames, namespace=flavour, index=idx,
                scene_ns="hmdb", scene_family=fam, own_scene=own))
            idx += 1
    return plans


def _actor_copy(base: list[VideoPlan], flavour: str) -> list[VideoPlan]:
    """The same videos, cropped to the actor frame by frame."""
    return [dataclasses.replace(p, flavour=flavour, actor_crop=True) for p in base]


def _diving_plans(cfg: GeneratorConfig) -> list[VideoPlan]:
    vocab = cfg.diving_vocab()
    per = cfg.diving_train_per_class + cfg.diving_test_per_class
    total = per * len(vocab)
    # vid names are numbered in a seeded random order so the name carries no label information
    numbers = _rng(cfg.seed, "diving-names").permutation(total)
    plans = []
    idx = 0
    for label, stages in enumerate(vocab):
        for j in range(per):
            fam = int(_rng(cfg.seed, "diving48", idx, "bias").integers(0, cfg.scene_families))
            plans.append(VideoPlan(
                flavour="diving48", rel=f"rgb/synth{cfg.seed:04d}_{int(numbers[idx]):05d}.mp4", label=label,
                class_name=formats.diving48_class_name(stages),
                subset="train" if j < cfg.diving_train_per_class else "test", stages=tuple(stages),
                num_frames=cfg.diving_frames(), namespace="diving48", index=idx, scene_ns="diving",
                scene_family=fam, own_scene=fam == label))
            idx += 1
    return plans


def _plan_builders(cfg: GeneratorConfig, built: Callable[[str], list[VideoPlan]]
                   ) -> dict[str, Callable[[], list[VideoPlan]]]:
    """flavour -> how to plan it; copies name their base through `built` (planned once, shared)."""
    # a static twin draws from its swapped copy's stream (the same scene); each set has its own stream name
    return {
        "ucf101": lambda: _ucf_plans(cfg, "ucf101", biased=True),
        "ucf101_unbiased": lambda: _ucf_plans(cfg, "ucf101_unbiased", biased=False),
        "ucf101_swapped": lambda: _swap_plans(cfg, built("ucf101"), "ucf101_swapped", "swap", "ucf101_swapped"),
        "ucf101_static": lambda: _swap_plans(cfg, built("ucf101"), "ucf101_static", "static", "ucf101_swapped"),
        "hmdb51": lambda: _hmdb_plans(cfg, "hmdb51", biased=True),
        "actor_hmdb51": lambda: _actor_copy(built("hmdb51"), "actor_hmdb51"),
        "hmdb51_unbiased": lambda: _hmdb_plans(cfg, "hmdb51_unbiased", biased=False),
        "hmdb51_swapped": lambda: _swap_plans(cfg, built("hmdb51"), "hmdb51_swapped", "swap", "hmdb51_swapped"),
        "hmdb51_static": lambda: _swap_plans(cfg, built("hmdb51"), "hmdb51_static", "static", "hmdb51_swapped"),
        "actor_hmdb51_unbiased": lambda: _actor_copy(built("hmdb51_unbiased"), "actor_hmdb51_unbiased"),
        "actor_hmdb51_swapped": lambda: _actor_copy(built("hmdb51_swapped"), "actor_hmdb51_swapped"),
        "diving48": lambda: _diving_plans(cfg),
    }


def make_plans(cfg: GeneratorConfig) -> dict[str, list[VideoPlan]]:
    """Per flavour, the list of videos to render (cheap: no pixels). Only the configured flavours."""
    cache: dict[str, list[VideoPlan]] = {}

    def built(flavour: str) -> list[VideoPlan]:
        if flavour not in cache:
            cache[flavour] = builders[flavour]()
        return cache[flavour]

    builders = _plan_builders(cfg, built)
    want = set(cfg.flavours)
    return {f: built(f) for f in FLAVOURS if f in want}
