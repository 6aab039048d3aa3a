"""Rendering one planned video: actor look and trajectory, compositing over the scene, post steps
(static frame, actor crop), actor boxes and resizing."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import GeneratorConfig
from .motions import MOTIONS
from .plans import VideoPlan
from .scenes import _hsv, _palette, _scene_field, scene_family
from .seeding import _rng

SHAPES = ("disc", "square", "triangle", "ring", "cross", "diamond")
ACTOR_TEXTURES = ("solid", "stripes", "checker")


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
    a swap plan re-uses all of them except the scene, whose family and variation come from its swap stream.
    The video has the plan's own length (plan.num_frames).
    """
    T, R = plan.num_frames, cfg.resolution
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
    if cfg.actor_palette == "two_tone":  # its own stream: the draws above and below are those of "shade"
        rt = _rng(seed, ns, idx, "actor-two-tone")
        col_b = _hsv(rt.uniform(), rt.uniform(0.3, 1.0), rt.uniform(0.1, 0.45))  # another hue, dark: contrast
        texture = ACTOR_TEXTURES[1 + int(rt.integers(0, len(ACTOR_TEXTURES) - 1))]  # stripes or checker
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
        rs = _rng(seed, plan.swap_ns, idx, "scene")
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


def _smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """(T, k) -> (T, k): centred moving average over `window` frames, truncated at the video's ends."""
    if window <= 1:
        return values.astype(np.float64)
    half = window // 2
    csum = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0, dtype=np.float64)])
    t = np.arange(len(values))
    lo, hi = np.maximum(t - half, 0), np.minimum(t + (window - 1 - half) + 1, len(values))
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def _nearest_frames(has: np.ndarray) -> np.ndarray:
    """For every frame, the nearest frame with has[t] (the earlier one on a tie)."""
    valid = np.flatnonzero(has)
    gap = np.abs(np.arange(len(has))[:, None] - valid[None, :])
    return valid[np.argmin(gap, axis=1)]


def actor_crop_boxes(boxes: np.ndarray, size: int, margin: float, smoothing: int = 1) -> np.ndarray:
    """(T, 4) per-frame actor boxes -> (T, 4) int32 square crop boxes x0, y0, x1, y1 (x1/y1 exclusive).

    Each frame's square is centred on the actor's track: the centre of that frame's box, or with smoothing > 1
    its centred moving average over `smoothing` frames, so the crop follows the actor's drift while the actor's
    own motion about it stays in view. One side for the whole video (the actor keeps its size across frames):
    the smallest square about the track that holds every frame's box, plus the largest box side x margin on
    each side, in [2, size]; with smoothing 1 that is the largest box side x (1 + 2 margin). Squares are clamped
    into the frame; a frame without an actor takes the nearest such frame's box, and a video with no actor at
    all gets the whole frame.
    """
    has = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if not has.any():
        return np.tile(np.array([0, 0, size, size], dtype=np.int32), (len(boxes), 1))
    src = boxes[_nearest_frames(has)].astype(np.int64)
    twice_centre = src[:, :2] + src[:, 2:]  # integer while unsmoothed: the same square on every platform
    if smoothing > 1:
        twice_centre = _smoothed(twice_centre, smoothing)
    reach = np.abs(2 * src - np.concatenate([twice_centre, twice_centre], axis=1)).max()  # 2 x half-side held
    largest = int(np.maximum(src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]).max())
    side = math.ceil(round(float(reach) + 2 * margin * largest, 6))  # round first: 10 * 1.2 must not become 13
    side = min(max(side, 2), size)
    corner = np.clip(np.floor((twice_centre - side) / 2), 0, size - side).astype(np.int64)
    return np.concatenate([corner, corner + side], axis=1).astype(np.int32)


def _crop_frames(video: np.ndarray, crop_boxes: np.ndarray) -> np.ndarray:
    """(T, H, W, ...) -> (T, side, side, ...): frame t cut to crop_boxes[t] (all boxes the same size)."""
    return np.stack([v[y0:y1, x0:x1] for v, (x0, y0, x1, y1) in zip(video, crop_boxes)])


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
    """Render a plan including its post steps (scene step, then actor crop); returns frames, masks and extra
    annotation fields."""
    r = render(cfg, plan)
    frames, masks = r.frames, r.masks
    extra: dict[str, np.ndarray] = {}
    if plan.post in ("swap", "static"):
        extra["original_scene_family"] = np.int64(plan.original_family)
    if plan.post == "static":
        T = len(frames)
        mid = T // 2
        frames = np.repeat(frames[mid:mid + 1], T, axis=0)
        masks = np.repeat(masks[mid:mid + 1], T, axis=0)
        extra["source_frame"] = np.int64(mid)
    if plan.actor_crop:
        crop_boxes = actor_crop_boxes(boxes_from_masks(masks), cfg.resolution, cfg.actor_crop_margin,
                                      cfg.actor_crop_smoothing)
        frames = _resize_bilinear(_crop_frames(frames, crop_boxes), cfg.resolution)
        masks = _resize_nearest(_crop_frames(masks, crop_boxes), cfg.resolution)
        extra["crop_box"] = crop_boxes
    return frames, masks, extra
