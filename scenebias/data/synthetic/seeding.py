"""Per-purpose random generators: SeedSequence([seed, crc32(namespace), video index, crc32(purpose)])."""
from __future__ import annotations

import zlib

import numpy as np


def _key(x: int | str) -> int:
    return zlib.crc32(x.encode()) if isinstance(x, str) else int(x)


def _rng(seed: int, *keys: int | str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed)] + [_key(k) for k in keys]))
