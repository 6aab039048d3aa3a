import hashlib
import struct

import numpy as np
import pytest

from scenebias.data.video import read_video, write_video
from scenebias.errors import DataError


def _frames(t=16, h=32, w=48, seed=0):
    """Smooth moving content (codec-friendly) plus a moving disc."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        out[i, ..., 0] = 60 + 40 * np.sin((xx + 2 * i) / 6.0) + 40
        out[i, ..., 1] = 80 + yy * 2
        out[i, ..., 2] = 120
        out[i][(yy - 14) ** 2 + (xx - 5 - 2 * i) ** 2 < 30] = (230, 40, 40)
    return out


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_roundtrip(tmp_path, suffix):
    fr = _frames()
    p = write_video(tmp_path / f"v{suffix}", fr, fps=25)
    v = read_video(p)
    assert v.dtype.is_floating_point is False and str(v.dtype) == "torch.uint8"
    assert tuple(v.shape) == fr.shape
    err = np.abs(v.numpy().astype(int) - fr.astype(int))
    assert err.mean() < 4.0, err.mean()
    # frames stay in order: the disc moves right by 2 px/frame
    red = (v.numpy()[..., 0] > 180) & (v.numpy()[..., 1] < 100)
    cx = [np.nonzero(red[i])[1].mean() for i in range(fr.shape[0])]
    assert np.all(np.diff(cx) > 1.0)


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_byte_deterministic(tmp_path, suffix):
    fr = _frames(t=24)
    a = write_video(tmp_path / f"a{suffix}", fr, fps=25)
    b = write_video(tmp_path / f"b{suffix}", fr, fps=25)
    assert _sha(a) == _sha(b)
    c = write_video(tmp_path / f"c{suffix}", fr[::-1].copy(), fps=25)
    assert _sha(a) != _sha(c)


def test_mp4_has_no_timestamps(tmp_path):
    """The mp4 muxer must not embed wall-clock creation/modification times (bitexact)."""
    data = write_video(tmp_path / "a.mp4", _frames(), fps=25).read_bytes()
    i = data.index(b"mvhd")
    version = data[i + 4]
    if version == 0:
        created, modified = struct.unpack(">II", data[i + 8:i + 16])
    else:
        created, modified = struct.unpack(">QQ", data[i + 8:i + 24])
    assert created == 0 and modified == 0


def test_identical_frames_decode_identical(tmp_path):
    fr = np.repeat(_frames(t=1), 20, axis=0)
    v = read_video(write_video(tmp_path / "s.avi", fr, fps=25)).numpy()
    assert all(np.array_equal(v[0], v[i]) for i in range(len(v)))


def test_atomic_no_leftovers(tmp_path):
    write_video(tmp_path / "ok.avi", _frames(), fps=25)
    with pytest.raises(DataError):
        write_video(tmp_path / "bad.avi", _frames(h=31), fps=25)  # odd height
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.avi"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="odd.avi", frames=_frames(w=33)), "even"),
    (dict(name="x.mkv", frames=_frames()), "container"),
    (dict(name="f.avi", frames=_frames().astype(np.float32)), "uint8"),
    (dict(name="e.avi", frames=np.zeros((0, 32, 32, 3), np.uint8)), "non-empty"),
])
def test_write_rejects_bad_input(tmp_path, kwargs, match):
    with pytest.raises(DataError, match=match) as exc:
        write_video(tmp_path / kwargs["name"], kwargs["frames"], fps=25)
    assert kwargs["name"] in str(exc.value)


def test_read_missing(tmp_path):
    p = tmp_path / "nope.avi"
    with pytest.raises(DataError, match="not found") as exc:
        read_video(p)
    assert str(p) in str(exc.value)


def test_read_empty(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(DataError, match="empty") as exc:
        read_video(p)
    assert str(p) in str(exc.value)


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_read_garbage(tmp_path, suffix):
    p = tmp_path / f"garbage{suffix}"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError) as exc:
        read_video(p)
    assert str(p) in str(exc.value)


def test_read_truncated_header(tmp_path):
    good = write_video(tmp_path / "good.mp4", _frames(), fps=25).read_bytes()
    p = tmp_path / "trunc.mp4"
    p.write_bytes(good[:40])
    with pytest.raises(DataError) as exc:
        read_video(p)
    assert str(p) in str(exc.value)
