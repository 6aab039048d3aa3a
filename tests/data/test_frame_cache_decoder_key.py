"""The decoder is part of a frame-cache entry's name: frames decoded by another PyAV/libavcodec build may differ, so
they must never be served from (or overwrite) the entry another decoder wrote. Tested through the public functions:
`entry_name` directly, and `build_cache` with `decoder_id` replaced by another decoder's id."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scenebias.data import frame_cache as fc
from scenebias.data.manifest import file_sha256
from scenebias.data.video import read_video, write_video
from scenebias.io import read_json

OTHER_DECODER = "pyav 0.0.1, libavcodec 1.2.3"


@pytest.fixture
def videos(tmp_path) -> list[Path]:
    rng = np.random.default_rng(4)
    return [write_video(tmp_path / "videos" / f"v{i}.avi",
                        rng.integers(0, 256, (8 + i, 16, 16, 3), dtype=np.uint8), fps=25) for i in range(2)]


def test_entry_name_changes_with_the_decoder_and_only_with_its_inputs(videos):
    sha = file_sha256(videos[0])
    here = fc.decoder_id()
    assert here != OTHER_DECODER
    assert fc.entry_name(sha, here) == fc.entry_name(sha, here)  # deterministic
    assert fc.entry_name(sha, here) != fc.entry_name(sha, OTHER_DECODER)
    # a one-character change of the libavcodec version is another decoder
    assert fc.entry_name(sha, "pyav 12.0.0, libavcodec 61.3.100") != fc.entry_name(sha, "pyav 12.0.0, libavcodec 61.3.101")
    assert fc.entry_name(sha, here) != fc.entry_name(file_sha256(videos[1]), here)


def test_a_build_with_another_decoder_writes_new_entries_beside_the_old(videos, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = fc.build_cache(videos, cache, progress=False, workers=1)
    index = read_json(cache / "index.json")
    old = {key: rec["entry"] for key, rec in index["videos"].items()}
    assert first["decoded"] == 2

    monkeypatch.setattr(fc, "decoder_id", lambda: OTHER_DECODER)
    second = fc.build_cache(videos, cache, progress=False, workers=1)
    new_index = read_json(cache / "index.json")
    new = {key: rec["entry"] for key, rec in new_index["videos"].items()}
    # nothing reused: each video decoded again into an entry of its own, the first decoder's entries kept
    assert second["decoded"] == 2 and second["reused"] == 0
    assert new.keys() == old.keys() and all(new[k] != old[k] for k in old)
    assert all((cache / e).is_file() for e in [*old.values(), *new.values()])
    assert new_index["decoder"] == OTHER_DECODER
    assert all(rec["decoder"] == OTHER_DECODER for rec in new_index["videos"].values())
    # built again with the same (other) decoder: every entry reused
    assert fc.build_cache(videos, cache, progress=False, workers=1)["reused"] == 2
    # and the frames served are the video's
    frames = fc.CachedFrames(cache)
    got = frames.frames(videos[1])
    got = got if isinstance(got, torch.Tensor) else torch.as_tensor(np.asarray(got))
    assert torch.equal(got, read_video(videos[1]))
