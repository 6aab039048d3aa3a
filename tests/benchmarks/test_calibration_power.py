"""benchmarks/calibration/power.py: the arithmetic of what each generated set can decide, against simulation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.calibration import power as P


def test_the_clip_mde_has_power_0_8_by_simulating_mcnemar():
    n, disagree, reps = 400, 0.2, 4000
    delta = P.paired_clip_mde(n, disagree)
    rng = np.random.default_rng(0)
    differ = rng.random((reps, n)) < disagree
    a_right = rng.random((reps, n)) < (1 + delta / disagree) / 2  # among disagreements, A is right more often
    b, c = (differ & a_right).sum(1), (differ & ~a_right).sum(1)
    z = (b - c) / np.sqrt(np.maximum(b + c, 1))
    assert float((np.abs(z) > 1.959964).mean()) == pytest.approx(0.8, abs=0.03)


def test_two_stage_coverage_matches_sampling_the_generator_and_the_loader():
    rng = np.random.default_rng(1)
    frames, span, draws = 32, 15, 200_000
    switch = np.rint(frames / 2 + rng.uniform(-frames / 8, frames / 8, draws)).astype(int)
    start = rng.integers(0, frames - span + 1, draws)  # ClipDataset: uniform over whole placements
    first = np.clip(switch - start, 0, span)
    for min_each in (1, 3):
        sampled = float(((first >= min_each) & (span - first >= min_each)).mean())
        assert P.two_stage_coverage(frames, span, min_each) == pytest.approx(sampled, abs=0.005)
    assert P.two_stage_coverage(16, 16) == 1.0  # a window as long as the video sees everything


def test_the_report_covers_every_generated_set_of_the_smoke_preset():
    text = P.report("smoke")
    for flavour in ("ucf101", "ucf101_swapped", "hmdb51", "diving48"):
        assert f"| {flavour} |" in text
    assert "needs 32 classes" in text
    assert P.accuracy_se(0.5, 100) == pytest.approx(0.05) and math.isclose(P.accuracy_se(1.0, 10), 0.0)


def test_docs_power_md_is_what_the_tool_writes_for_the_default():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "power.md"
    assert doc.read_text(encoding="utf-8") == P.report("default"), \
        "docs/power.md is stale: python -m benchmarks.calibration.power --preset default --out docs/power.md"
