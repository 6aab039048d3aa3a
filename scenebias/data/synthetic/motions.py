"""Class motions: per-video trajectory functions of time and the MOTIONS registry."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

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
