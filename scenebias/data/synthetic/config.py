"""GeneratorConfig: the configuration of the generated set, its strict validation and derived class lists."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from .. import formats
from .flavours import FLAVOURS, ucf_class_name
from .motions import MOTIONS

ACTOR_PALETTES = ("shade", "two_tone")


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
    hmdb_rho / hmdb_rho_spread
                       rho and rho_spread of the HMDB51-like classes (hmdb51 and every copy of it), in [0, 1], or
                       None: the same as rho / rho_spread (the UCF101-like classes always use those). Default None.
    actor_size         [min, max] actor diameter as a fraction of the resolution. Default [0.35, 0.5].
    speed              [min, max] actor speed in px/frame at this resolution. Default [2.0, 3.0]
                       (slower motion was found unlearnable at 32x32).
    background_motion  max scroll speed of the scene texture, px/frame (direction random). Default 0.
    camera_jitter      max whole-frame shift per frame in px (moves scene, actor and mask together). Default 0.
    pixel_noise        std of Gaussian pixel noise added to every frame (0-255 scale). Default 0.
    actor_palette      "shade": a textured actor's second colour is its first, darkened (one hue per actor: under
                       the papers' hue jitter and grayscale little but hue tells one actor from another);
                       "two_tone": the second colour has its own hue, saturation and value, drawn from a stream of
                       its own (so every other draw is unchanged) — a luminance and hue-contrast pattern that
                       colour augmentation keeps, as real clothing has. Every actor is textured then. Default "shade".
    ucf_groups         groups per UCF class (g01..gNN, like UCF101's 25). Default 25.
    ucf_clips_per_group [min, max] clips per group (UCF101 has 4-7). Default [6, 9].
                       actor_size, speed and ucf_clips_per_group were chosen by the motion-learnability
                       calibration row alone (docs/measurements-history.md, "Calibration of the generated
                       set"): with [0.25, 0.4], [1.5, 2.5], [3, 5] a supervised model on the unbiased copy
                       stayed at chance on swapped clips.
    ucf_test_groups    the first this-many groups form the test list (UCF101 split1: g01-g07). Default 7.
    hmdb_train_per_class / hmdb_test_per_class / hmdb_unused_per_class
                       videos per HMDB class tagged 1 / 2 / 0 (HMDB51: 70 / 30 / rest). Default 70/30/5.
    diving_train_per_class / diving_test_per_class   Diving48-like videos per class. Default 40 / 10.
    diving_num_frames  frames per Diving48-like video (>= 8), or None: num_frames. The stage switch stays near
                       the middle of the video's own length. Default None.
    actor_crop_margin  margin of the actor_* crops (>= 0): per video one square side, holding every frame's actor
                       box about the crop's track plus the largest box side x margin on each side, each frame's
                       square clamped into the frame. Default 0.25.
    actor_crop_smoothing
                       frames (>= 1) of the centred moving average of the actor's box centre that the actor_*
                       crops follow: 1 follows every frame (the actor's own trajectory leaves the crop); more
                       follows its drift, keeping faster motion in view. Default 1.
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
    hmdb_rho: float | None = None
    hmdb_rho_spread: float | None = None
    actor_size: list[float] = field(default_factory=lambda: [0.35, 0.5])
    speed: list[float] = field(default_factory=lambda: [2.0, 3.0])
    background_motion: float = 0.0
    camera_jitter: float = 0.0
    pixel_noise: float = 0.0
    actor_palette: str = "shade"
    ucf_groups: int = 25
    ucf_clips_per_group: list[int] = field(default_factory=lambda: [6, 9])
    ucf_test_groups: int = 7
    hmdb_train_per_class: int = 70
    hmdb_test_per_class: int = 30
    hmdb_unused_per_class: int = 5
    diving_train_per_class: int = 40
    diving_test_per_class: int = 10
    diving_num_frames: int | None = None
    actor_crop_margin: float = 0.25
    actor_crop_smoothing: int = 1
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
        if self.diving_num_frames is not None:
            int_at_least("diving_num_frames", 8)
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
        for key in ("hmdb_rho", "hmdb_rho_spread"):
            if getattr(self, key) is not None:
                num_in(key, 0.0, 1.0)
        range_in("actor_size", 0.05, 0.8)
        range_in("speed", 0.0, None)
        num_in("background_motion", 0.0, None)
        num_in("camera_jitter", 0.0, None)
        num_in("pixel_noise", 0.0, 255.0)
        if self.actor_palette not in ACTOR_PALETTES:
            raise bad("actor_palette", f"{self.actor_palette!r} is not one of {list(ACTOR_PALETTES)}")
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
        num_in("actor_crop_margin", 0.0, None)
        int_at_least("actor_crop_smoothing", 1)
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

    def hmdb_bias(self) -> tuple[float, float]:
        """(rho, rho_spread) of the HMDB51-like classes; each of hmdb_rho / hmdb_rho_spread falls back when None."""
        rho = self.rho if self.hmdb_rho is None else self.hmdb_rho
        spread = self.rho_spread if self.hmdb_rho_spread is None else self.hmdb_rho_spread
        return rho, spread

    def diving_frames(self) -> int:
        """Frames per Diving48-like video: diving_num_frames, or num_frames when unset."""
        return self.num_frames if self.diving_num_frames is None else self.diving_num_frames

    def diving_vocab(self) -> list[list[str]]:
        s = list(self.diving_stages)
        return [[a, b] for a in s for b in s if a != b]
