"""Procedural scene families (backgrounds): per-family palettes and texture fields."""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from .config import GeneratorConfig
from .seeding import _rng

SCENE_TYPES = ("stripes", "checker", "blobs", "gradient", "dots", "waves")


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
