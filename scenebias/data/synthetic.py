"""The generated scene-biased video set.

An actor (random shape, colour, texture and size, drawn independently of the class) moves along a class
trajectory over a procedural background ("scene"). Classes are motions, not looks. With probability rho_c a
video of class c is shown on its class's own scene family, otherwise on a uniformly random other family, so
a model can reach high accuracy from the scene alone: the shortcut self-supervised video models learn.

Flavours (each a folder under the output dir, in the official layout that `formats.read_split` reads):

  ucf101           biased (rho), UCF101 layout, ucfTrainTestlist/{classInd,trainlist01,testlist01}.txt
  ucf101_unbiased  same classes and sizes, scene drawn uniformly from the K families (calibration row)
  ucf101_swapped   every ucf101 TEST video with the same actor layer, mask and trajectory pasted onto a
                   scene family that is neither its class's own nor its original one (seeded);
                   same file names, classInd + testlist01 (trainlist01 empty)
  ucf101_static    the static counterpart of each swapped video: its middle frame repeated T times
  hmdb51           other (disjoint) motion classes on their own scene families, biased with the same rho;
                   HMDB51 layout, <class>_test_split1.txt with tags 1 = train, 2 = test, 0 = unused
  actor_hmdb51     the hmdb51 videos cropped to the union of the actor's boxes over the whole video (made
                   square, clamped), resized back; same split files (mirrors Actor-HMDB51)
  diving48         two-stage motions (stage 1 then stage 2, switch near the middle), unbiased scenes;
                   Diving48 V2 layout: rgb/<vid>.mp4, Diving48_V2_{train,test}.json, Diving48_vocab.json

Ground truth per video: `<flavour>/annotations/<video path relative to the flavour root>.npz` with the
actor masks (bit-packed), boxes (x0, y0, x1, y1; x1/y1 exclusive; all zero for an empty mask), label,
scene_family and own_scene. `load_annotation` unpacks one. `<flavour>/annotations/index.json` lists every
video of the flavour with its label, class, subset, scene family and own_scene flag.

Everything is a pure function of the config: per-video randomness comes from
`np.random.SeedSequence([seed, crc32(namespace), video index, crc32(purpose)])`, so output does not depend
on the number of workers or the order they run in; video files and the .npz sidecars are byte-deterministic,
and `manifest.json` holds the sha256 of every file and a hash over them.
"""
from __future__ import annotations

import colorsys
import dataclasses
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_path, write_json
from . import formats
from .video import write_video

GENERATOR_VERSION = "scenebias.synthetic/1.0"

FLAVOURS = ("ucf101", "ucf101_unbiased", "ucf101_swapped", "ucf101_static", "hmdb51", "actor_hmdb51",
            "diving48")
FLAVOUR_FORMAT = {
    "ucf101": "ucf101", "ucf101_unbiased": "ucf101", "ucf101_swapped": "ucf101", "ucf101_static": "ucf101",
    "hmdb51": "hmdb51", "actor_hmdb51": "hmdb51", "diving48": "diving48",
}
SHAPES = ("disc", "square", "triangle", "ring", "cross", "diamond")
ACTOR_TEXTURES = ("solid", "stripes", "checker")
SCENE_TYPES = ("stripes", "checker", "blobs", "gradient", "dots", "waves")


# =============================================================================================== motions
# Each motion maps (rng, t, R, v, rad) -> (dx, dy, scale): displacement from an arbitrary origin in pixels
# and the actor's size factor per frame. v is the speed in px/frame, rad the actor radius in px.
# Every motion is mirror-invariant as a distribution (training flips clips horizontally): horizontal
# directions, rotation senses and phases are random per video.
Motion = Callable[[np.random.Generator, np.ndarray, int, float, float], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _tri(phase: np.ndarray) -> np.ndarray:
    """Triangle wave of period 1 in [-1, 1]."""
    return 4.0 * np.abs(np.mod(phase, 1.0) - 0.5) - 1.0


def _sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _m_rise(rng, t, R, v, rad):
    return np.zeros_like(t), -v * t, np.ones_like(t)


def _m_fall(rng, t, R, v, rad):
    return np.zeros_like(t), v * t, np.ones_like(t)


def _m_slide(rng, t, R, v, rad):
    return _sign(rng) * v * t, np.zeros_like(t), np.ones_like(t)


def _m_orbit(rng, t, R, v, rad):
    r = rng.uniform(0.2, 0.3) * R
    w = _sign(rng) * v / r
    ph = rng.uniform(0, 2 * np.pi)
    return r * np.cos(w * t + ph), r * np.sin(w * t + ph), np.ones_like(t)


def _m_bounce(rng, t, R, v, rad):  # fast vertical oscillation; mean speed v, period 6-8 frames
    p = rng.uniform(6, 8)
    a = v * p / 4
    return np.zeros_like(t), a * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi)), np.ones_like(t)


def _m_shake(rng, t, R, v, rad):  # fast horizontal oscillation
    p = rng.uniform(6, 8)
    a = v * p / 4
    return a * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi)), np.zeros_like(t), np.ones_like(t)


def _m_pulse(rng, t, R, v, rad):  # size oscillation in place; edge speed tied to v
    p = rng.uniform(6, 8)
    a = float(np.clip(v * p / (4 * rad), 0.25, 0.6))
    return np.zeros_like(t), np.zeros_like(t), 1 + a * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi))


def _m_zigzag(rng, t, R, v, rad):  # steady horizontal travel (random direction) + vertical triangle wave
    p = rng.uniform(6, 8)
    return _sign(rng) * v * t, (v * p / 4) * _tri(t / p + rng.uniform()), np.ones_like(t)


def _m_diagonal(rng, t, R, v, rad):  # 45-degree travel, random signs, bounces off the borders
    s = v / math.sqrt(2)
    return _sign(rng) * s * t, _sign(rng) * s * t, np.ones_like(t)


def _m_stop_and_go(rng, t, R, v, rad):  # horizontal moves of 3-5 frames at 1.6 v, stops of 3-5 frames
    move, stop = int(rng.integers(3, 6)), int(rng.integers(3, 6))
    period = move + stop
    moving = (np.mod(np.arange(len(t)) + int(rng.integers(0, period)), period) < move).astype(float)
    x = np.concatenate([[0.0], np.cumsum(moving[:-1])]) * 1.6 * v * _sign(rng)
    return x, np.zeros_like(t), np.ones_like(t)


def _m_hop(rng, t, R, v, rad):  # parabolic hops of period 6-8 frames, slow horizontal drift
    p = rng.uniform(6, 8)
    h = v * p / 2
    ph = np.mod(t / p + rng.uniform(), 1.0)
    return _sign(rng) * 0.3 * v * t, -h * 4 * ph * (1 - ph), np.ones_like(t)


def _m_swing(rng, t, R, v, rad):  # pendulum below a pivot
    length = rng.uniform(0.22, 0.3) * R
    theta_max = rng.uniform(0.7, 1.0)
    p = float(np.clip(4 * length * theta_max / v, 6, 14))
    th = theta_max * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi))
    return length * np.sin(th), length * np.cos(th), np.ones_like(t)


def _m_figure_eight(rng, t, R, v, rad):  # Lissajous 1:2, random sense and phase, mean speed v
    a = rng.uniform(0.25, 0.32) * R
    b = a * rng.uniform(0.45, 0.6)
    u = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    mean_speed = np.mean(np.hypot(a * np.cos(u), 2 * b * np.cos(2 * u)))
    ph = _sign(rng) * (v / mean_speed) * t + rng.uniform(0, 2 * np.pi)
    return a * np.sin(ph), b * np.sin(2 * ph), np.ones_like(t)


def _m_approach(rng, t, R, v, rad):  # grows and shrinks (approach / recede) in place
    smin, smax = 0.4, 1.8
    p = float(np.clip(2 * (smax - smin) * rad / (0.75 * v), 8, 16))
    return np.zeros_like(t), np.zeros_like(t), smin + (smax - smin) * (_tri(t / p + rng.uniform()) + 1) / 2


# name -> (function, wrap): wrap = positions wrap around toroidally (steady travel stays fast over the
# whole video); otherwise the path is kept in frame (placed to fit, reflected at the borders).
MOTIONS: dict[str, tuple[Motion, bool]] = {
    "rise": (_m_rise, True), "fall": (_m_fall, True), "slide": (_m_slide, True), "orbit": (_m_orbit, True),
    "bounce": (_m_bounce, True), "shake": (_m_shake, True), "pulse": (_m_pulse, True),
    "zigzag": (_m_zigzag, True),
    "diagonal": (_m_diagonal, False), "stop_and_go": (_m_stop_and_go, False), "hop": (_m_hop, False),
    "swing": (_m_swing, False), "figure_eight": (_m_figure_eight, False), "approach": (_m_approach, False),
}


def ucf_class_name(motion: str) -> str:
    """'stop_and_go' -> 'StopAndGo' (UCF101-style CamelCase)."""
    return "".join(p.capitalize() for p in motion.split("_"))


# =============================================================================================== config
def _range(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)


@dataclass
class GeneratorConfig:
    """Configuration of the generated set. Every field has a default; `from_dict` validates.

    seed               int >= 0; everything generated is a pure function of the config.
    resolution         frame width = height in px (even, >= 16). Default 32.
    num_frames         frames per video (>= 8). Default 32.
    fps                frame rate written into the files. Default 25.
    ucf_classes        motion names of the UCF101-like sets (class names become CamelCase: 'Rise').
    hmdb_classes       motion names of the HMDB51-like sets, disjoint from ucf_classes (snake_case names).
    diving_stages      motion names combined into ordered pairs (a, b), a != b: the Diving48-like classes
                       "a then b"; vocab entry [a, b].
    scene_families     K procedural background families (>= number of ucf and hmdb classes, >= 3); class
                       c's own scene is family c (UCF and HMDB have separate families; Diving48 too).
    rho                probability that a biased video shows its class's own scene family. Default 0.9.
    rho_spread         per-class bias: rho_c spread evenly over [rho - spread, rho + spread] in a seeded
                       random class order, clipped to [1/K, 1]. Default 0.1.
    actor_size         [min, max] actor diameter as a fraction of the resolution. Default [0.35, 0.5].
    speed              [min, max] actor speed in px/frame at this resolution. Default [2.0, 3.0]
                       (slower motion was found unlearnable at 32x32).
    background_motion  max scroll speed of the scene texture, px/frame (direction random). Default 0.
    camera_jitter      max whole-frame shift per frame in px (moves scene, actor and mask together). Default 0.
    pixel_noise        std of Gaussian pixel noise added to every frame (0-255 scale). Default 0.
    ucf_groups         groups per UCF class (g01..gNN, like UCF101's 25). Default 25.
    ucf_clips_per_group [min, max] clips per group (UCF101 has 4-7). Default [6, 9].
                       actor_size, speed and ucf_clips_per_group were chosen by the motion-learnability
                       calibration row alone (README, 'Calibration'): with [0.25, 0.4], [1.5, 2.5], [3, 5] a
                       supervised model on the unbiased copy stayed at chance on swapped clips.
    ucf_test_groups    the first this-many groups form the test list (UCF101 split1: g01-g07). Default 7.
    hmdb_train_per_class / hmdb_test_per_class / hmdb_unused_per_class
                       videos per HMDB class tagged 1 / 2 / 0 (HMDB51: 70 / 30 / rest). Default 70/30/5.
    diving_train_per_class / diving_test_per_class   Diving48-like videos per class. Default 40 / 10.
    flavours           which flavours to generate (see FLAVOURS). Default all.
    """

    seed: int = 0
    resolution: int = 32
    num_frames: int = 32
    fps: int = 25
    ucf_classes: list[str] = field(default_factory=lambda: [
        "rise", "fall", "slide", "orbit", "bounce", "shake", "pulse", "zigzag"])
    hmdb_classes: list[str] = field(default_factory=lambda: [
        "diagonal", "stop_and_go", "hop", "swing", "figure_eight", "approach"])
    diving_stages: list[str] = field(default_factory=lambda: ["rise", "fall", "slide", "orbit"])
    scene_families: int = 12
    rho: float = 0.9
    rho_spread: float = 0.1
    actor_size: list[float] = field(default_factory=lambda: [0.35, 0.5])
    speed: list[float] = field(default_factory=lambda: [2.0, 3.0])
    background_motion: float = 0.0
    camera_jitter: float = 0.0
    pixel_noise: float = 0.0
    ucf_groups: int = 25
    ucf_clips_per_group: list[int] = field(default_factory=lambda: [6, 9])
    ucf_test_groups: int = 7
    hmdb_train_per_class: int = 70
    hmdb_test_per_class: int = 30
    hmdb_unused_per_class: int = 5
    diving_train_per_class: int = 40
    diving_test_per_class: int = 10
    flavours: list[str] = field(default_factory=lambda: list(FLAVOURS))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: dict | None, prefix: str = "data") -> "GeneratorConfig":
        """Build from a plain dict (e.g. a YAML section); unknown keys and bad values raise ConfigError."""
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise ConfigError(f"{prefix}: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for k in d:
            if k not in known:
                raise ConfigError(f"{prefix}.{k}: unknown key; expected one of: {', '.join(sorted(known))}")
        kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
        cfg = cls(**kwargs)
        cfg.validate(prefix)
        return cfg

    @classmethod
    def tiny(cls, **overrides: Any) -> "GeneratorConfig":
        """A few-second config for tests: 4 UCF classes, 3 HMDB classes, 2 Diving classes, 16 frames at 32²."""
        base = dict(seed=0, resolution=32, num_frames=16, ucf_classes=["rise", "fall", "slide", "orbit"],
                    hmdb_classes=["diagonal", "hop", "swing"], diving_stages=["rise", "slide"],
                    scene_families=5, ucf_groups=4, ucf_clips_per_group=[1, 2], ucf_test_groups=1,
                    hmdb_train_per_class=3, hmdb_test_per_class=2, hmdb_unused_per_class=1,
                    diving_train_per_class=2, diving_test_per_class=1)
        base.update(overrides)
        return cls.from_dict(base)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # ------------------------------------------------------------------ validation
    def validate(self, prefix: str = "data") -> None:
        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(f"{prefix}.{key}: {msg}")

        def int_at_least(key: str, lo: int) -> None:
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool):
                raise bad(key, f"{v!r} is not an integer")
            if v < lo:
                raise bad(key, f"{v} is below the minimum {lo}")

        def num_in(key: str, lo: float, hi: float | None) -> None:
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise bad(key, f"{v!r} is not a number")
            if v < lo or (hi is not None and v > hi):
                raise bad(key, f"{v} is outside [{lo:g}, {hi:g}]" if hi is not None else f"{v} is below {lo:g}")

        def range_in(key: str, lo: float, hi: float | None, integer: bool = False) -> None:
            v = getattr(self, key)
            if not _range(v) or (integer and not all(isinstance(x, int) for x in v)):
                raise bad(key, f"{v!r} is not a [min, max] pair of {'integers' if integer else 'numbers'}")
            if v[0] > v[1]:
                raise bad(key, f"{list(v)}: min > max")
            if v[0] < lo or (hi is not None and v[1] > hi):
                raise bad(key, f"{list(v)} is outside [{lo:g}, {hi:g}]" if hi is not None
                          else f"{list(v)} goes below {lo:g}")

        def motions(key: str, min_len: int) -> list[str]:
            v = getattr(self, key)
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                raise bad(key, f"{v!r} is not a list of motion names")
            for x in v:
                if x not in MOTIONS:
                    raise bad(key, f"unknown motion {x!r}; expected one of: {', '.join(MOTIONS)}")
            if len(set(v)) != len(v):
                raise bad(key, f"{list(v)} lists a motion twice")
            if len(v) < min_len:
                raise bad(key, f"needs at least {min_len} motions, got {len(v)}")
            return list(v)

        int_at_least("seed", 0)
        int_at_least("resolution", 16)
        if self.resolution % 2:
            raise bad("resolution", f"{self.resolution} is odd; H.264 4:2:0 needs an even size")
        int_at_least("num_frames", 8)
        int_at_least("fps", 1)
        ucf = motions("ucf_classes", 2)
        hmdb = motions("hmdb_classes", 2)
        motions("diving_stages", 2)
        both = sorted(set(ucf) & set(hmdb))
        if both:
            raise bad("hmdb_classes", f"{both} also in ucf_classes; the two sets must be disjoint")
        int_at_least("scene_families", max(3, len(ucf), len(hmdb)))
        num_in("rho", 0.0, 1.0)
        num_in("rho_spread", 0.0, 1.0)
        range_in("actor_size", 0.05, 0.8)
        range_in("speed", 0.0, None)
        num_in("background_motion", 0.0, None)
        num_in("camera_jitter", 0.0, None)
        num_in("pixel_noise", 0.0, 255.0)
        int_at_least("ucf_groups", 2)
        range_in("ucf_clips_per_group", 1, None, integer=True)
        int_at_least("ucf_test_groups", 1)
        if self.ucf_test_groups >= self.ucf_groups:
            raise bad("ucf_test_groups", f"{self.ucf_test_groups} leaves no training group "
                                         f"(ucf_groups = {self.ucf_groups})")
        int_at_least("hmdb_train_per_class", 1)
        int_at_least("hmdb_test_per_class", 1)
        int_at_least("hmdb_unused_per_class", 0)
        int_at_least("diving_train_per_class", 1)
        int_at_least("diving_test_per_class", 1)
        fl = self.flavours
        if not isinstance(fl, (list, tuple)) or not fl or not all(isinstance(x, str) for x in fl):
            raise bad("flavours", f"{fl!r} is not a non-empty list of flavour names")
        for x in fl:
            if x not in FLAVOURS:
                raise bad("flavours", f"unknown flavour {x!r}; expected one of: {', '.join(FLAVOURS)}")
        if len(set(fl)) != len(fl):
            raise bad("flavours", f"{list(fl)} lists a flavour twice")

    # ------------------------------------------------------------------ derived
    def ucf_names(self) -> list[str]:
        """UCF class names in classInd order (case-insensitive alphabetical); label = index."""
        return formats.ucf_class_order(ucf_class_name(m) for m in self.ucf_classes)

    def hmdb_names(self) -> list[str]:
        """HMDB class names (snake_case motion names) sorted; label = index."""
        return sorted(self.hmdb_classes)

    def diving_vocab(self) -> list[list[str]]:
        s = list(self.diving_stages)
        return [[a, b] for a in s for b in s if a != b]


# =============================================================================================== seeding
def _key(x: int | str) -> int:
    return zlib.crc32(x.encode()) if isinstance(x, str) else int(x)


def _rng(seed: int, *keys: int | str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed)] + [_key(k) for k in keys]))


def class_rhos(cfg: GeneratorConfig, namespace: str, num_classes: int) -> np.ndarray:
    """rho_c per class: evenly spread over [rho - spread, rho + spread] in a seeded class order, clipped."""
    k = cfg.scene_families
    if num_classes == 1:
        vals = np.array([cfg.rho])
    else:
        vals = cfg.rho - cfg.rho_spread + 2 * cfg.rho_spread * np.arange(num_classes) / (num_classes - 1)
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


# =============================================================================================== plans
@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video; cheap to build, picklable."""

    flavour: str
    rel: str                 # video path relative to the flavour root (posix)
    label: int
    class_name: str
    subset: str              # "train", "test" or "unused"
    stages: tuple[str, ...]  # one motion, or two for Diving48-like classes
    namespace: str           # seeds actor / motion / scene variation: (seed, namespace, index)
    index: int
    scene_ns: str            # which set of scene families ("ucf", "hmdb", "diving")
    scene_family: int
    own_scene: bool
    post: str = "none"       # "none", "swap", "static" (swap + middle frame) or "actor_crop"
    original_family: int = -1  # for swap/static: the family of the ucf101 video it was made from

    @property
    def annotation_rel(self) -> str:
        return "annotations/" + str(Path(self.rel).with_suffix(".npz").as_posix())


def _ucf_plans(cfg: GeneratorConfig, flavour: str, biased: bool) -> list[VideoPlan]:
    names = cfg.ucf_names()
    motion_of = {ucf_class_name(m): m for m in cfg.ucf_classes}
    rhos = class_rhos(cfg, "ucf", len(names))
    sizes = _rng(cfg.seed, "ucf-sizes")  # shared by ucf101 and ucf101_unbiased: "same classes and sizes"
    lo, hi = cfg.ucf_clips_per_group
    plans: list[VideoPlan] = []
    idx = 0
    for label, cname in enumerate(names):
        for g in range(1, cfg.ucf_groups + 1):
            for c in range(1, int(sizes.integers(lo, hi + 1)) + 1):
                rng = _rng(cfg.seed, flavour, idx, "bias")
                if biased:
                    fam, own = draw_scene_family(rng, label, float(rhos[label]), cfg.scene_families)
                else:
                    fam = int(rng.integers(0, cfg.scene_families))
                    own = fam == label
                plans.append(VideoPlan(
                    flavour=flavour, rel=f"UCF101/{cname}/v_{cname}_g{g:02d}_c{c:02d}.avi", label=label,
                    class_name=cname, subset="test" if g <= cfg.ucf_test_groups else "train",
                    stages=(motion_of[cname],), namespace=flavour, index=idx, scene_ns="ucf",
                    scene_family=fam, own_scene=own))
                idx += 1
    return plans


def _swap_plans(cfg: GeneratorConfig, base: list[VideoPlan], flavour: str, post: str) -> list[VideoPlan]:
    out = []
    for p in base:
        if p.subset != "test":
            continue
        rng = _rng(cfg.seed, "ucf101_swapped", p.index, "swap-family")
        choices = [f for f in range(cfg.scene_families) if f not in (p.label, p.scene_family)]
        fam = int(choices[int(rng.integers(0, len(choices)))])
        out.append(dataclasses.replace(p, flavour=flavour, scene_family=fam, own_scene=False, post=post,
                                       original_family=p.scene_family))
    return out


def _hmdb_plans(cfg: GeneratorConfig, flavour: str, post: str) -> list[VideoPlan]:
    names = cfg.hmdb_names()
    rhos = class_rhos(cfg, "hmdb", len(names))
    n_tr, n_te, n_un = cfg.hmdb_train_per_class, cfg.hmdb_test_per_class, cfg.hmdb_unused_per_class
    plans = []
    idx = 0
    for label, cname in enumerate(names):
        n = n_tr + n_te + n_un
        tags = np.array(["train"] * n_tr + ["test"] * n_te + ["unused"] * n_un)
        tags = tags[_rng(cfg.seed, "hmdb-tags", label).permutation(n)]
        for j in range(n):
            fam, own = draw_scene_family(_rng(cfg.seed, "hmdb51", idx, "bias"), label, float(rhos[label]),
                                         cfg.scene_families)
            plans.append(VideoPlan(
                flavour=flavour, rel=f"videos/{cname}/{cname}_{j + 1:03d}.avi", label=label, class_name=cname,
                subset=str(tags[j]), stages=(cname,), namespace="hmdb51", index=idx, scene_ns="hmdb",
                scene_family=fam, own_scene=own, post=post))
            idx += 1
    return plans


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
                namespace="diving48", index=idx, scene_ns="diving", scene_family=fam, own_scene=fam == label))
            idx += 1
    return plans


def make_plans(cfg: GeneratorConfig) -> dict[str, list[VideoPlan]]:
    """Per flavour, the list of videos to render (cheap: no pixels). Only the configured flavours."""
    plans: dict[str, list[VideoPlan]] = {}
    want = set(cfg.flavours)
    ucf = _ucf_plans(cfg, "ucf101", biased=True) if want & {"ucf101", "ucf101_swapped", "ucf101_static"} else []
    if "ucf101" in want:
        plans["ucf101"] = ucf
    if "ucf101_unbiased" in want:
        plans["ucf101_unbiased"] = _ucf_plans(cfg, "ucf101_unbiased", biased=False)
    if "ucf101_swapped" in want:
        plans["ucf101_swapped"] = _swap_plans(cfg, ucf, "ucf101_swapped", "swap")
    if "ucf101_static" in want:
        plans["ucf101_static"] = _swap_plans(cfg, ucf, "ucf101_static", "static")
    if "hmdb51" in want:
        plans["hmdb51"] = _hmdb_plans(cfg, "hmdb51", "none")
    if "actor_hmdb51" in want:
        plans["actor_hmdb51"] = _hmdb_plans(cfg, "actor_hmdb51", "actor_crop")
    if "diving48" in want:
        plans["diving48"] = _diving_plans(cfg)
    return {k: plans[k] for k in FLAVOURS if k in plans}


# =============================================================================================== rendering
def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


@dataclass(frozen=True)
class SceneFamily:
    type: str
    palette: np.ndarray  # (3, 3) float RGB 0-255
    freq: float          # cycles per frame width
    angle: float
    extra: tuple         # type-specific constants (blob frequencies / phases, wave warp)


def scene_family(cfg: GeneratorConfig, ns: str, k: int) -> SceneFamily:
    rng = _rng(cfg.seed, "scene-family", ns, k)
    offset = {"ucf": 0.0, "hmdb": 0.31, "diving": 0.67}.get(ns, 0.0)
    hue = (k * 0.6180339887 + offset + rng.uniform(-0.04, 0.04)) % 1.0
    d = rng.uniform(0.05, 0.15)
    palette = np.stack([
        _hsv(hue, rng.uniform(0.4, 0.8), rng.uniform(0.15, 0.4)),
        _hsv(hue + d, rng.uniform(0.3, 0.7), rng.uniform(0.45, 0.7)),
        _hsv(hue - d, rng.uniform(0.2, 0.6), rng.uniform(0.7, 0.95)),
    ])
    t = SCENE_TYPES[k % len(SCENE_TYPES)]
    freq = {"stripes": (2.0, 4.5), "checker": (1.5, 3.0), "blobs": (1.0, 2.0), "gradient": (0.4, 0.8),
            "dots": (3.0, 5.0), "waves": (2.0, 4.0)}[t]
    extra = tuple(float(x) for x in rng.uniform(0.5, 1.8, size=3)) + tuple(
        float(x) for x in rng.uniform(0, 2 * np.pi, size=3))
    return SceneFamily(type=t, palette=palette, freq=float(rng.uniform(*freq)),
                       angle=float(rng.uniform(0, np.pi)), extra=extra)


def _scene_field(fam: SceneFamily, freq: float, angle: float, xw: np.ndarray, yw: np.ndarray, R: int
                 ) -> tuple[np.ndarray, bool]:
    """Texture value in [0, 1] at world coordinates; second value: hard two-colour texture."""
    ca, sa = math.cos(angle), math.sin(angle)
    u = xw * ca + yw * sa
    w = -xw * sa + yw * ca
    k = 2 * np.pi * freq / R
    e = fam.extra
    if fam.type == "stripes":
        return np.clip(0.5 + 2.5 * np.sin(k * u), 0, 1), True
    if fam.type == "checker":
        return np.clip(0.5 + 2.5 * np.sin(k * u) * np.sin(k * w), 0, 1), True
    if fam.type == "blobs":
        f = (np.sin(k * e[0] * xw + e[3]) * np.sin(k * e[1] * yw + e[4]) + np.sin(k * e[2] * u + e[5])) / 2
        return 0.5 + 0.5 * f, False
    if fam.type == "gradient":
        return 0.5 + 0.5 * np.sin(k * u), False
    if fam.type == "dots":
        sp = R / freq
        du = np.mod(u, sp) - sp / 2
        dw = np.mod(w, sp) - sp / 2
        r = np.hypot(du, dw) / (0.3 * sp)
        return np.clip(2.5 * (1 - r), 0, 1), True
    if fam.type == "waves":
        return 0.5 + 0.5 * np.sin(k * u + 1.5 * np.sin(k * e[0] * w + e[3])), False
    raise ValueError(fam.type)


def _palette(f: np.ndarray, pal: np.ndarray, hard: bool) -> np.ndarray:
    f = f[..., None]
    if hard:
        return pal[0] * (1 - f) + pal[2] * f
    lo = pal[0] + (pal[1] - pal[0]) * np.clip(2 * f, 0, 1)
    return np.where(f < 0.5, lo, pal[1] + (pal[2] - pal[1]) * np.clip(2 * f - 1, 0, 1))


def _fold(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    length = hi - lo
    if length <= 0:
        return np.full_like(p, (lo + hi) / 2)
    q = np.mod(p - lo, 2 * length)
    return lo + np.where(q > length, 2 * length - q, q)


def _trajectory(rng: np.random.Generator, stages: tuple[str, ...], T: int, R: int, v: float, rad: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Centre x, y (px) and scale per frame; wrap flag. Two stages switch at a random time near the middle."""
    t = np.arange(T, dtype=np.float64)
    fn, wrap = MOTIONS[stages[0]]
    x, y, s = fn(rng, t, R, v, rad)
    if len(stages) == 2:
        ts = int(round(T / 2 + rng.uniform(-T / 8, T / 8)))
        fn2, wrap2 = MOTIONS[stages[1]]
        x2, y2, s2 = fn2(rng, np.arange(T - ts + 1, dtype=np.float64), R, v, rad)
        x = np.concatenate([x[:ts], x[ts - 1] + x2[1:] - x2[0]])
        y = np.concatenate([y[:ts], y[ts - 1] + y2[1:] - y2[0]])
        s = np.concatenate([s[:ts], s2[1:]])
        wrap = wrap or wrap2
    if wrap:
        x = np.mod(x + rng.uniform(0, R), R)
        y = np.mod(y + rng.uniform(0, R), R)
    else:
        m = rad * float(s.max()) + 0.5
        lo, hi = m, R - m
        out = []
        for p in (x, y):
            ext = float(p.max() - p.min())
            if hi - lo >= ext:
                p = p - p.min() + lo + rng.uniform(0, hi - lo - ext)
            else:
                p = _fold(p - p.min() + lo + rng.uniform(0, max(hi - lo, 0.0)), lo, hi)
            out.append(p)
        x, y = out
    return x, y, s, wrap


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if shape == "disc":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.85
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "triangle":
        return (v <= 0.8) & (v >= 2.0 * np.abs(u) - 1.0)
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.3)
    if shape == "cross":
        return ((np.abs(u) <= 0.33) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.33) & (np.abs(u) <= 1.0))
    raise ValueError(shape)


@dataclass
class Rendered:
    frames: np.ndarray     # (T, H, W, 3) uint8
    masks: np.ndarray      # (T, H, W) bool
    background: np.ndarray  # (T, H, W, 3) uint8 (the scene layer alone)


def render(cfg: GeneratorConfig, plan: VideoPlan) -> Rendered:
    """Render one planned video (before any post step): background layer, actor layer + mask, composite.

    The actor, its trajectory, the scene variation and the camera come from seeds of (namespace, index);
    a swap plan re-uses all of them except the scene, whose family and variation come from the swap seed.
    """
    T, R = cfg.num_frames, cfg.resolution
    seed, ns, idx = cfg.seed, plan.namespace, plan.index
    # ---- actor look: independent of the class
    ra = _rng(seed, ns, idx, "actor")
    shape = SHAPES[int(ra.integers(0, len(SHAPES)))]
    texture = ACTOR_TEXTURES[int(ra.integers(0, len(ACTOR_TEXTURES)))]
    col_a = _hsv(ra.uniform(), ra.uniform(0.6, 1.0), ra.uniform(0.75, 1.0))
    col_b = col_a * ra.uniform(0.3, 0.55)
    tex_period = ra.uniform(0.35, 0.6)  # texture period as a fraction of the actor diameter
    tex_angle = ra.uniform(0, np.pi)
    rad = ra.uniform(*cfg.actor_size) * R / 2
    # ---- motion
    rm = _rng(seed, ns, idx, "motion")
    v = rm.uniform(*cfg.speed)
    cx, cy, scale, wrap = _trajectory(rm, plan.stages, T, R, v, rad)
    # ---- camera (jitter) and scene scroll
    rc = _rng(seed, ns, idx, "camera")
    jit = rc.uniform(-cfg.camera_jitter, cfg.camera_jitter, size=(T, 2)) if cfg.camera_jitter > 0 \
        else np.zeros((T, 2))
    ang = rc.uniform(0, 2 * np.pi)
    vel = rc.uniform(0, cfg.background_motion) * np.array([math.cos(ang), math.sin(ang)])
    # ---- scene: family + per-video variation (phase, offset, frequency, angle, colour jitter)
    if plan.post in ("swap", "static"):
        rs = _rng(seed, "ucf101_swapped", idx, "scene")
    else:
        rs = _rng(seed, ns, idx, "scene")
    fam = scene_family(cfg, plan.scene_ns, plan.scene_family)
    off = rs.uniform(0, 4 * R, size=2)
    freq = fam.freq * rs.uniform(0.9, 1.1)
    angle = fam.angle + rs.uniform(-0.15, 0.15)
    pal = np.clip(fam.palette + rs.normal(0, 6, size=(3, 3)), 0, 255)

    tt = np.arange(T, dtype=np.float64)[:, None, None]
    yy, xx = np.mgrid[0:R, 0:R].astype(np.float64) + 0.5
    xx, yy = xx[None], yy[None]
    xw = xx + off[0] + jit[:, 0, None, None] + vel[0] * tt
    yw = yy + off[1] + jit[:, 1, None, None] + vel[1] * tt
    f, hard = _scene_field(fam, freq, angle, xw, yw, R)
    bg = _palette(f, pal, hard)  # (T, R, R, 3)

    # ---- actor layer and mask
    ax = (cx - jit[:, 0])[:, None, None]
    ay = (cy - jit[:, 1])[:, None, None]
    dx, dy = xx - ax, yy - ay
    if wrap:
        dx = np.mod(dx + R / 2, R) - R / 2
        dy = np.mod(dy + R / 2, R) - R / 2
    r_t = (rad * scale)[:, None, None]
    u, w = dx / r_t, dy / r_t
    mask = _shape_mask(shape, u, w)
    if texture == "solid":
        sel = np.ones_like(mask)
    else:
        ca, sa = math.cos(tex_angle), math.sin(tex_angle)
        pu, pw = (u * ca + w * sa) / (2 * tex_period), (-u * sa + w * ca) / (2 * tex_period)
        sel = np.sin(2 * np.pi * pu) > 0
        if texture == "checker":
            sel = sel ^ (np.sin(2 * np.pi * pw) > 0)
    actor = np.where(sel[..., None], col_a, col_b)
    m = mask[..., None]
    comp = bg * (1 - m) + actor * m
    if cfg.pixel_noise > 0:
        comp = comp + _rng(seed, ns, idx, "noise").normal(0, cfg.pixel_noise, size=comp.shape)
    frames = np.clip(np.floor(comp + 0.5), 0, 255).astype(np.uint8)
    return Rendered(frames=frames, masks=mask, background=np.clip(np.floor(bg + 0.5), 0, 255).astype(np.uint8))


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """(T, H, W) bool -> (T, 4) int32 boxes x0, y0, x1, y1 (x1/y1 exclusive); all zero for an empty mask."""
    T = masks.shape[0]
    out = np.zeros((T, 4), dtype=np.int32)
    cols = masks.any(axis=1)  # (T, W)
    rows = masks.any(axis=2)  # (T, H)
    has = cols.any(axis=1)
    W, H = masks.shape[2], masks.shape[1]
    out[:, 0] = np.argmax(cols, axis=1)
    out[:, 2] = W - np.argmax(cols[:, ::-1], axis=1)
    out[:, 1] = np.argmax(rows, axis=1)
    out[:, 3] = H - np.argmax(rows[:, ::-1], axis=1)
    out[~has] = 0
    return out


def actor_crop_box(boxes: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """Smallest box containing every non-empty per-frame box, made square (centred), clamped to the frame."""
    valid = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    if len(valid) == 0:
        return 0, 0, size, size
    x0, y0 = int(valid[:, 0].min()), int(valid[:, 1].min())
    x1, y1 = int(valid[:, 2].max()), int(valid[:, 3].max())
    side = min(max(x1 - x0, y1 - y0, 2), size)
    sx = min(max((x0 + x1 - side) // 2, 0), size - side)
    sy = min(max((y0 + y1 - side) // 2, 0), size - side)
    return sx, sy, sx + side, sy + side


def _resize_bilinear(frames: np.ndarray, out: int) -> np.ndarray:
    """(T, h, w, C) -> (T, out, out, C) bilinear (half-pixel centres), numpy only."""
    T, h, w = frames.shape[:3]

    def axis(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.clip((np.arange(out) + 0.5) * n / out - 0.5, 0, n - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, src - i0

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    f = frames.astype(np.float64)
    top = f[:, y0][:, :, x0] * (1 - fx)[None, None, :, None] + f[:, y0][:, :, x1] * fx[None, None, :, None]
    bot = f[:, y1][:, :, x0] * (1 - fx)[None, None, :, None] + f[:, y1][:, :, x1] * fx[None, None, :, None]
    res = top * (1 - fy)[None, :, None, None] + bot * fy[None, :, None, None]
    return np.clip(np.floor(res + 0.5), 0, 255).astype(np.uint8)


def _resize_nearest(masks: np.ndarray, out: int) -> np.ndarray:
    h, w = masks.shape[1:3]
    iy = np.minimum(((np.arange(out) + 0.5) * h / out).astype(int), h - 1)
    ix = np.minimum(((np.arange(out) + 0.5) * w / out).astype(int), w - 1)
    return masks[:, iy][:, :, ix]


def render_final(cfg: GeneratorConfig, plan: VideoPlan) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render a plan including its post step; returns frames, masks and extra annotation fields."""
    r = render(cfg, plan)
    frames, masks = r.frames, r.masks
    extra: dict[str, np.ndarray] = {}
    if plan.post in ("swap", "static"):
        extra["original_scene_family"] = np.int64(plan.original_family)
    if plan.post == "static":
        mid = cfg.num_frames // 2
        frames = np.repeat(frames[mid:mid + 1], cfg.num_frames, axis=0)
        masks = np.repeat(masks[mid:mid + 1], cfg.num_frames, axis=0)
        extra["source_frame"] = np.int64(mid)
    elif plan.post == "actor_crop":
        x0, y0, x1, y1 = actor_crop_box(boxes_from_masks(masks), cfg.resolution)
        frames = _resize_bilinear(frames[:, y0:y1, x0:x1], cfg.resolution)
        masks = _resize_nearest(masks[:, y0:y1, x0:x1], cfg.resolution)
        extra["crop_box"] = np.array([x0, y0, x1, y1], dtype=np.int32)
    return frames, masks, extra


# =============================================================================================== annotations
def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Byte-deterministic .npz (numpy's savez stamps the current time into the zip entries)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asanyarray(arrays[key]), allow_pickle=False)
                info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue())


def save_annotation(path: Path, masks: np.ndarray, label: int, scene_family: int, own_scene: bool,
                    **extra: np.ndarray) -> None:
    masks = np.asarray(masks, dtype=bool)
    arrays = {
        "masks": np.packbits(masks.reshape(-1)),
        "mask_shape": np.array(masks.shape, dtype=np.int64),
        "boxes": boxes_from_masks(masks),
        "label": np.int64(label),
        "scene_family": np.int64(scene_family),
        "own_scene": np.bool_(own_scene),
    }
    arrays.update(extra)
    _save_npz(path, arrays)


def load_annotation(path: str | os.PathLike) -> dict:
    """Unpack a sidecar: masks (T, H, W) bool, boxes (T, 4) int, label int, scene_family int, own_scene bool
    (+ original_scene_family / source_frame / crop_box where present)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: annotation file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as exc:
        raise DataError(f"{p}: not a readable .npz annotation ({type(exc).__name__}: {exc})") from exc
    for k in ("masks", "mask_shape", "boxes", "label", "scene_family", "own_scene"):
        if k not in d:
            raise DataError(f"{p}: annotation lacks {k!r}")
    shape = tuple(int(s) for s in d.pop("mask_shape"))
    d["masks"] = np.unpackbits(d["masks"], count=int(np.prod(shape))).astype(bool).reshape(shape)
    for k in ("label", "scene_family", "original_scene_family", "source_frame"):
        if k in d:
            d[k] = int(d[k])
    d["own_scene"] = bool(d["own_scene"])
    return d


# =============================================================================================== generate
def flavour_roots(out_dir: str | os.PathLike) -> dict[str, Path]:
    """{flavour: its root folder} for the flavours present under out_dir, in FLAVOURS order."""
    base = Path(out_dir)
    return {f: base / f for f in FLAVOURS if (base / f).is_dir()}


def _render_task(args: tuple[dict, VideoPlan, str]) -> dict:
    cfg_d, plan, root = args
    cfg = GeneratorConfig(**cfg_d)
    frames, masks, extra = render_final(cfg, plan)
    froot = Path(root) / plan.flavour
    write_video(froot / plan.rel, frames, fps=cfg.fps)
    save_annotation(froot / plan.annotation_rel, masks, plan.label, plan.scene_family, plan.own_scene, **extra)
    return {"flavour": plan.flavour, "video": plan.rel}


def _write_splits(cfg: GeneratorConfig, froot: Path, flavour: str, plans: list[VideoPlan]) -> None:
    fmt = FLAVOUR_FORMAT[flavour]
    if fmt == "ucf101":
        lst = froot / "ucfTrainTestlist"
        formats.write_ucf101_classind(lst / "classInd.txt", cfg.ucf_names())
        key = lambda p: (p.label, p.rel)  # noqa: E731
        train = sorted((p for p in plans if p.subset == "train"), key=key)
        test = sorted((p for p in plans if p.subset == "test"), key=key)
        formats.write_ucf101_trainlist(lst / "trainlist01.txt",
                                       [(p.rel.removeprefix("UCF101/"), p.label) for p in train])
        formats.write_ucf101_testlist(lst / "testlist01.txt", [p.rel.removeprefix("UCF101/") for p in test])
    elif fmt == "hmdb51":
        tag = {"train": 1, "test": 2, "unused": 0}
        per_class: dict[str, list[tuple[str, int]]] = {n: [] for n in cfg.hmdb_names()}
        for p in plans:
            per_class[p.class_name].append((Path(p.rel).name, tag[p.subset]))
        formats.write_hmdb51_splits(froot / "testTrainMulti_7030_splits", per_class, split=1)
    else:
        for subset in ("train", "test"):
            entries = sorted(({"vid_name": Path(p.rel).stem, "label": p.label, "start_frame": 0,
                               "end_frame": cfg.num_frames - 1} for p in plans if p.subset == subset),
                             key=lambda e: (e["label"], e["vid_name"]))
            formats.write_diving48_entries(froot / formats.DIVING48_FILES[subset], entries)
        formats.write_diving48_vocab(froot / formats.DIVING48_VOCAB, cfg.diving_vocab())
    index = [{"video": p.rel, "annotation": p.annotation_rel, "label": p.label, "class_name": p.class_name,
              "subset": p.subset, "stages": list(p.stages), "scene_family": p.scene_family,
              "own_scene": p.own_scene, **({"original_scene_family": p.original_family}
                                            if p.post in ("swap", "static") else {})}
             for p in sorted(plans, key=lambda p: p.rel)]
    write_json(froot / "annotations" / "index.json", index)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_hash(files: list[dict]) -> str:
    canon = json.dumps(files, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def generate(cfg: GeneratorConfig, out_dir: str | os.PathLike, workers: int = 2, progress: bool = True) -> dict:
    """Generate every configured flavour into out_dir (replacing it) and return the manifest.

    Work happens in a temporary sibling folder that is renamed onto out_dir only when complete, so a
    killed run never leaves a half-written dataset. Videos are rendered in `workers` processes (fork on
    POSIX; workers=1 renders in this process); the result does not depend on the worker count.
    """
    cfg.validate()
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        plans = make_plans(cfg)
        cfg_d = cfg.to_dict()
        tasks = [(cfg_d, p, str(tmp)) for ps in plans.values() for p in ps]
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(tasks), desc="generate", unit="video", leave=False)
        try:
            if workers <= 1:
                for task in tasks:
                    _render_task(task)
                    if bar is not None:
                        bar.update()
            else:
                ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
                with ctx.Pool(processes=int(workers)) as pool:
                    for _ in pool.imap_unordered(_render_task, tasks, chunksize=8):
                        if bar is not None:
                            bar.update()
        finally:
            if bar is not None:
                bar.close()
        for flavour, ps in plans.items():
            _write_splits(cfg, tmp / flavour, flavour, ps)
            # self-check: the files we wrote read back through the same readers real data uses
            for subset in ("train", "test"):
                formats.read_split(FLAVOUR_FORMAT[flavour], tmp / flavour, subset, check_files=True)
        files = []
        for p in sorted(tmp.rglob("*")):
            if p.is_file() and p.name != "manifest.json":
                files.append({"path": p.relative_to(tmp).as_posix(), "bytes": p.stat().st_size,
                              "sha256": _sha256(p)})
        files.sort(key=lambda e: e["path"])
        manifest = {"generator": GENERATOR_VERSION, "config": cfg_d, "files": files,
                    "hash": manifest_hash(files)}
        write_json(tmp / "manifest.json", manifest)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
