"""The frame-cache benchmark (`python -m benchmarks.perf.cache`): cache.json + cache.md with each store's bytes per
video at the right frame size, the loader cases' peak RSS, and the real datasets' arithmetic; run tiny."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf-cache")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.perf.cache", "--videos", "2", "--seconds", "1.2",
                           "--fps", "10", "--short-side", "64", "--workers", "0", "--batch", "1",
                           "--build-workers", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["cache.json", "cache.md"]  # no temporary files left
    return json.loads((out / "cache.json").read_text()), (out / "cache.md").read_text()


def test_stores_have_the_sizes_their_frames_imply(report):
    data, _ = report
    stores = {s["name"]: s for s in data["stores"]}
    assert list(stores) == ["npy, as decoded", "npy, short side 64", "jpeg q90, as decoded", "jpeg q90, short side 64"]
    raw = stores["npy, as decoded"]
    assert raw["frame_size"] == [240, 320] and 0 <= raw["bytes_per_video"] - 12 * 240 * 320 * 3 <= 128  # .npy header
    assert stores["npy, short side 64"]["frame_size"] == [64, 85]
    assert stores["jpeg q90, as decoded"]["bytes_per_video"] < raw["bytes_per_video"] / 4
    assert all(s["read_clip"]["ms_per_batch"] > 0 for s in stores.values())
    assert data["decoding"]["ms_per_batch"] > 0


def test_loader_cases_and_dataset_arithmetic(report):
    data, md = report
    cases = {c["name"]: c for c in data["loaders"]}
    assert len(cases) == 6 and all(c["items_per_s"] > 0 and c["main_rss_mb"] > 0 for c in cases.values())
    assert [c["cache_mb"] for c in cases.values()][:3] == [0, None, None]  # reference, then the unbounded "before"
    ucf = [d for d in data["datasets"] if d["dataset"] == "UCF101"]
    assert [d["cached_size"] for d in ucf] == [[240, 320], [64, 85], [128, 171]]
    assert ucf[0]["npy_bytes_per_video"] == pytest.approx(240 * 320 * 3 * 7.21 * 25)
    assert ucf[0]["npy_total_bytes"] == pytest.approx(ucf[0]["npy_bytes_per_video"] * 13_320)
    assert ucf[0]["before_worker_ram_bytes"] == pytest.approx(ucf[0]["npy_bytes_per_video"] * 9_537 / 8)
    assert {d["dataset"] for d in data["datasets"]} == {"UCF101", "HMDB51", "Diving48", "Kinetics-400"}
    assert "| UCF101 | 13,320 | 180 | 320×240 (as decoded)" in md and "python -m benchmarks.perf.cache" in md
