"""Clip sampling over decoded videos.

`ClipDataset` turns `VideoRecord`s (from `formats.read_split`) into clips (C, T, H, W) float32 in [0, 1]:

- mode "pair":   two clips of the same video from independent random start frames (they may overlap),
                 each with its own random resized crop (scale 0.2-1, ratio 3/4-4/3) and horizontal flip
                 (p 0.5), the same on every frame of that clip -> {"views": (2, C, T, H, W), "label", "index"}
- mode "triple": as "pair" plus a third clip whose start frame differs from the first clip's whenever the
                 video has more than one possible start (another moment of the same video: BE's hard negative,
                 DSM's temporal-shift negative) -> {"views": (3, C, T, H, W), ...}
  With `shared_start`, the second clip takes the first one's start frame: two crops of the same frames (BE's
  positive pair, §3.1), so the third clip's start differs from both.
- mode "single": one such clip -> {"clip": (C, T, H, W), "label", "index"}
- mode "test":   `num_test_clips` clips whose start frames are evenly spread over [0, n - span] (rounded;
                 a single clip starts at the middle), no random augmentation: short side resized to
                 crop_size and centre-cropped -> {"clips": (N, C, T, H, W), "label", "index"}

`static=True` replaces each clip by one frame repeated clip_len times: a random frame in pair/single
mode (each view its own), the centre frame of each window in test mode. That is the static-video
classifier's input.

A clip spans (clip_len - 1) * stride + 1 frames. A video shorter than that is looped: frame indices are
taken modulo the video length. A record's start_frame / end_frame (end inclusive, clamped to the decoded
length) select the frames used.

Randomness is a pure function of (seed, epoch, index): every item draws from its own torch.Generator, so
the result does not depend on DataLoader worker count or order. Call `set_epoch` before each epoch; with
`persistent_workers=True` the workers keep the epoch they were created with, so do not combine the two.

Why not pytorchvideo's clip samplers: `RandomClipSampler`/`RandomMultiClipSampler` draw from the global
`random` module (results then depend on worker count and order, and a resumed run cannot replay them) and
work in seconds as Fractions, so the frame a clip starts on depends on the container's timestamps. Sampling
frame indices directly keeps "10 uniform clips" and "two clips per video" exact and replayable.

`cache=True` keeps decoded videos in memory, least recently used first out once they pass `cache_bytes`
(None: never; the workflow passes `data.memory_cache_mb`). The cache is per process: each DataLoader worker
fills its own copy, so a loader holds at most (workers + 1) x cache_bytes of videos.

`frame_spec` (a `scenebias.data.frame_cache.FrameSpec`) is what the frames are: resized to a short side
(never up) and, with JPEG storage, passed through one JPEG per frame, which is then decoded only where a clip
reads it. Default: the frame cache's spec, else as decoded.

`frame_cache` (a `scenebias.data.frame_cache.CachedFrames`, or anything with `frames(path)`) reads each
video's frames from the on-disk frame cache instead of decoding the file; the items are identical.

`actor_masks` (a function record -> (T, H, W) bool array of the whole video, e.g. the generator's ground truth)
adds "masks" (V, T, crop, crop) bool to pair/triple items: each view's frames through the view's own crop and
flip (bilinear, then > 0.5), so a mask lies exactly on its view's actor.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from . import transforms as T
from .formats import VideoRecord
from .frame_cache import AS_DECODED, CachedFrames, FrameSpec, JpegFrames
from .video import resize_short_side

MODES = ("pair", "triple", "single", "test")


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A torch.Generator seeded from (seed, epoch, index) only."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(2, dtype=np.uint32)
    g = torch.Generator()
    g.manual_seed((int(state[0]) << 31) ^ int(state[1]))
    return g


def uniform_clip_starts(n_frames: int, span: int, num_clips: int) -> list[int]:
    """Start frames of `num_clips` windows evenly spread over [0, n_frames - span] (0 if the video is short)."""
    last = max(n_frames - span, 0)
    if num_clips == 1:
        return [last // 2]
    return [int(round(k * last / (num_clips - 1))) for k in range(num_clips)]


def video_nbytes(video: Any) -> int:
    """Memory a decoded video holds: its whole storage (a slice keeps its parent alive) or its JPEG bytes."""
    if isinstance(video, JpegFrames):
        return video.nbytes
    return video.untyped_storage().nbytes()


class MemoryCache:
    """Least-recently-used store under a byte budget (None: unbounded; 0: keeps nothing). An item larger than
    the whole budget is not kept."""

    def __init__(self, budget: int | None) -> None:
        self.budget = budget
        self.bytes = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> None:
        if self.budget is not None and nbytes > self.budget:
            return
        if key in self._items:
            self.bytes -= self._items.pop(key)[1]
        self._items[key] = (value, nbytes)
        self.bytes += nbytes
        while self.budget is not None and self.bytes > self.budget:
            self.bytes -= self._items.popitem(last=False)[1][1]


class ClipDataset(Dataset):
    def __init__(self, records: Sequence[VideoRecord], clip_len: int, stride: int = 1, mode: str = "pair",
                 num_test_clips: int = 10, crop_size: int = 32, static: bool = False, seed: int = 0,
                 cache: bool = True, scale: tuple[float, float] = (0.2, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5,
                 frame_cache: CachedFrames | None = None,
                 actor_masks: Callable[[VideoRecord], np.ndarray] | None = None,
                 cache_bytes: int | None = None, frame_spec: FrameSpec | None = None,
                 shared_start: bool = False) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode: {mode!r} is not one of {list(MODES)}")
        for name, val in (("clip_len", clip_len), ("stride", stride), ("num_test_clips", num_test_clips),
                          ("crop_size", crop_size)):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ConfigError(f"{name}: {val!r} must be a positive integer")
        self.records = list(records)
        self.clip_len, self.stride, self.mode = clip_len, stride, mode
        self.shared_start = shared_start
        self.num_test_clips, self.crop_size, self.static = num_test_clips, crop_size, static
        self.seed, self.cache = int(seed), cache
        self.scale, self.ratio, self.flip_p = tuple(scale), tuple(ratio), float(flip_p)
        self.frame_cache = frame_cache
        self.frame_spec = _frame_spec(frame_spec, frame_cache)
        self.actor_masks = actor_masks
        self.epoch = 0
        self._cache = MemoryCache(cache_bytes if cache else 0)  # videos by index, masks by ("masks", index)

    @property
    def span(self) -> int:
        return (self.clip_len - 1) * self.stride + 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    # ------------------------------------------------------------------ frames
    def _video(self, path) -> torch.Tensor | JpegFrames:
        if self.frame_cache is None:
            return self.frame_spec.load(path)
        if isinstance(self.frame_cache, CachedFrames):
            return self.frame_cache.video(path)  # JPEG entries stay encoded until a clip reads its frames
        return self.frame_cache.frames(path)

    def frames(self, index: int) -> torch.Tensor | JpegFrames:
        """The record's frames (T, H, W, 3) uint8 (JpegFrames with JPEG storage: indexing decodes), restricted
        to start_frame..end_frame."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        rec = self.records[index]
        video = self._video(rec.path)
        n = video.shape[0]
        end = n - 1 if rec.end_frame is None else min(rec.end_frame, n - 1)
        if rec.start_frame > end:
            raise DataError(f"{rec.path}: start_frame {rec.start_frame} is past the last frame "
                            f"{end} (video has {n} frames)")
        video = video[rec.start_frame:end + 1]
        self._cache.put(index, video, video_nbytes(video))
        return video

    def masks(self, index: int) -> torch.Tensor:
        """The record's actor masks (T, H, W) bool over the frames `frames(index)` returns."""
        hit = self._cache.get(("masks", index))
        if hit is not None:
            return hit
        rec, video = self.records[index], self.frames(index)
        masks = _resized_masks(torch.from_numpy(np.asarray(self.actor_masks(rec), dtype=bool)),
                               self.frame_spec.short_side)
        n = video.shape[0]
        if masks.ndim != 3 or masks.shape[0] < rec.start_frame + n or tuple(masks.shape[1:]) != tuple(video.shape[1:3]):
            raise DataError(f"{rec.path}: actor masks of shape {tuple(masks.shape)} do not match the video "
                            f"({rec.start_frame + n} frames of {video.shape[1]}x{video.shape[2]} px)")
        masks = masks[rec.start_frame:rec.start_frame + n]
        self._cache.put(("masks", index), masks, video_nbytes(masks))
        return masks

    def _indices(self, start: int, n: int) -> torch.Tensor:
        return (start + torch.arange(self.clip_len) * self.stride) % n

    def _gather(self, video: torch.Tensor | JpegFrames, idx: torch.Tensor) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (len(idx), 3, H, W) float in [0, 1]."""
        return video[idx].permute(0, 3, 1, 2).float().div_(255.0)

    def _random_start(self, n: int, g: torch.Generator, avoid: int | None = None) -> int:
        """A uniform start frame; with `avoid`, a uniform one among the others (if there are others)."""
        starts = max(n - self.span, 0) + 1
        if avoid is None or starts == 1:
            return int(torch.randint(0, starts, (), generator=g))
        return (avoid + 1 + int(torch.randint(0, starts - 1, (), generator=g))) % starts

    def _random_clip(self, video: torch.Tensor, g: torch.Generator, avoid: int | None = None,
                     masks: torch.Tensor | None = None, start: int | None = None
                     ) -> tuple[torch.Tensor, int, torch.Tensor | None]:
        """A randomly placed (or, given `start`, starting there), cropped and flipped clip (C, T, H, W), its start
        frame and, given the video's actor `masks` (T, H, W), the clip's masks (T, crop, crop) through the same
        frames, crop and flip."""
        n = video.shape[0]
        if self.static:
            start = int(torch.randint(0, n, (), generator=g)) if start is None else start
            idx = torch.full((self.clip_len,), start, dtype=torch.long)
        else:
            start = self._random_start(n, g, avoid) if start is None else start
            idx = self._indices(start, n)
        frames = self._gather(video, idx)
        params = T.sample_spatial(frames.shape[-2], frames.shape[-1], g, self.scale, self.ratio, self.flip_p)
        clip = T.apply_spatial(frames, params, self.crop_size).permute(1, 0, 2, 3).contiguous()
        if masks is None:
            return clip, start, None
        clip_masks = T.apply_spatial(masks[idx][:, None].float(), params, self.crop_size)[:, 0] > 0.5
        return clip, start, clip_masks

    def test_starts(self, index: int) -> list[int]:
        return uniform_clip_starts(self.frames(index).shape[0], self.span, self.num_test_clips)

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        rec = self.records[index]
        video = self.frames(index)
        item: dict = {"label": int(rec.label), "index": int(index)}
        if self.mode == "test":
            n = video.shape[0]
            clips = []
            for s in uniform_clip_starts(n, self.span, self.num_test_clips):
                if self.static:
                    idx = torch.full((self.clip_len,), (s + (self.span - 1) // 2) % n, dtype=torch.long)
                else:
                    idx = self._indices(s, n)
                frames = T.resize_center_crop(self._gather(video, idx), self.crop_size)
                clips.append(frames.permute(1, 0, 2, 3))
            item["clips"] = torch.stack(clips).contiguous()
            return item
        g = item_generator(self.seed, self.epoch, index)
        if self.mode == "single":
            item["clip"] = self._random_clip(video, g)[0]
            return item
        masks = self.masks(index) if self.actor_masks is not None else None
        first, start, first_masks = self._random_clip(video, g, masks=masks)
        second = self._random_clip(video, g, masks=masks, start=start if self.shared_start else None)
        views = [(first, first_masks), second[::2]]
        if self.mode == "triple":
            views.append(self._random_clip(video, g, avoid=start, masks=masks)[::2])
        item["views"] = torch.stack([clip for clip, _ in views])
        if masks is not None:
            item["masks"] = torch.stack([m for _, m in views])
        return item


def _frame_spec(spec: FrameSpec | None, frame_cache: Any) -> FrameSpec:
    """The dataset's frame spec: the one given, which must be the cache's, else the cache's, else as decoded."""
    cached = getattr(frame_cache, "spec", None)
    if spec is not None and cached is not None and spec.key != cached.key:
        raise DataError(f"{frame_cache.cache_dir}: the frame cache holds frames at {cached.key}, but the dataset asks "
                        f"for {spec.key}; rebuild it: {frame_cache.rebuild}")
    return spec or cached or AS_DECODED


def _resized_masks(masks: torch.Tensor, short_side: int | None) -> torch.Tensor:
    """(T, H, W) bool masks resized as the frames were (FrameSpec.short_side), then thresholded at 0.5."""
    if short_side is None or masks.ndim != 3 or min(masks.shape[1:]) <= short_side:
        return masks
    soft = resize_short_side((masks[..., None] * 255).to(torch.uint8).expand(*masks.shape, 3), short_side)
    return soft[..., 0] > 127
