"""What each generated evaluation set of a preset can decide, before any run: the arithmetic behind its sizes.

For every flavour: classes, test videos, chance; the clip-level floor of a top-1's standard error (a binomial
over the test videos, whatever the seeds: every seed is tested on the same videos); the smallest paired difference
between two models that the test videos alone let a test detect, for a share of videos on which the two models
disagree; for the static-bias correlation (BE Figure 4), the smallest |r| its class count detects and the classes
BE's r = -0.48 needs; for two-stage (Diving48-like) videos, the share of random training windows that see both
stages. Figures come from the generator's plans (no pixels rendered) and scipy.

    python -m benchmarks.calibration.power --preset default            # Markdown on stdout
    python -m benchmarks.calibration.power --preset default --out docs/power.md
"""
from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

from scenebias.analysis.stats import minimum_detectable_r, points_to_detect_r
from scenebias.data.synthetic import GeneratorConfig
from scenebias.data.synthetic.plans import make_plans
from scenebias.errors import exit_status
from scenebias.io import atomic_path
from scenebias.plan import load_config

ALPHA, POWER = 0.05, 0.8
BE_FIGURE4_R = -0.48  # BE §4.5, Figure 4 (benchmarks/paper_tables/be.yaml)
DISAGREEMENTS = (0.05, 0.1, 0.2)  # shares of test videos on which two models disagree


def accuracy_se(p: float, n: int) -> float:
    """Standard error of a top-1 of true value p over n test videos (binomial)."""
    return math.sqrt(p * (1 - p) / n)


def paired_clip_mde(n: int, disagree: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest difference of two models' top-1 (a share) that a two-sided test over the n test videos detects with
    the given power, when they disagree on a share `disagree` of them (McNemar's normal approximation: the
    difference's variance is about disagree / n)."""
    return (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * math.sqrt(disagree / n)


def two_stage_coverage(num_frames: int, span: int, min_each: int = 1, grid: int = 4001) -> float:
    """Share of training windows (`span` frames, start uniform over every whole placement) that hold at least
    `min_each` frames of each stage, for the generator's switch frame round(T/2 + U(-T/8, T/8))
    (scenebias/data/synthetic/rendering.py); a window longer than the video loops, so it sees both."""
    if span >= num_frames:
        return 1.0
    switches = np.rint(num_frames / 2 + np.linspace(-num_frames / 8, num_frames / 8, grid)).astype(int)
    starts = np.arange(num_frames - span + 1)
    first = np.clip(switches[:, None] - starts[None, :], 0, span)  # frames of stage one in the window
    return float(((first >= min_each) & (span - first >= min_each)).mean())


def flavour_rows(gen: GeneratorConfig) -> list[dict]:
    """One row per generated flavour: its classes, test videos per class, chance and the arithmetic."""
    rows = []
    for flavour, plans in make_plans(gen).items():
        test = [p for p in plans if p.subset in ("test", "2")]
        per_class = Counter(p.label for p in test)
        classes = len({p.label for p in plans})
        n = len(test)
        if n == 0:
            continue
        chance = 1 / classes
        rows.append({"flavour": flavour, "classes": classes, "test": n,
                     "test_per_class": f"{min(per_class.values())}–{max(per_class.values())}",
                     "chance": chance, "se_chance": accuracy_se(chance, n), "se_90": accuracy_se(0.9, n),
                     **{f"mde_{d}": paired_clip_mde(n, d) for d in DISAGREEMENTS},
                     "mde_r": minimum_detectable_r(classes)})
    return rows


def report(preset: str) -> str:
    cfg = load_config(preset)
    gen = GeneratorConfig.from_dict(cfg["data"]["generator"])
    span = (cfg["clip"]["clip_len"] - 1) * cfg["clip"]["stride"] + 1
    head = ("| flavour | classes | test videos (per class) | chance % | SE at chance, at 90% (pp) | "
            + " | ".join(f"clip MDE, {int(d * 100)}% disagree (pp)" for d in DISAGREEMENTS)
            + " | smallest detectable r over its classes |")
    lines = [f"# What the `{preset}` preset's generated sets can decide", "",
             f"Written by `python -m benchmarks.calibration.power --preset {preset}` from the generator's plans "
             f"(seed {gen.seed}, {gen.num_frames} frames, Diving48-like {gen.diving_frames()}); α {ALPHA}, "
             f"power {POWER}, two-sided.", "",
             head, "|---" * (6 + len(DISAGREEMENTS)) + "|"]
    for r in flavour_rows(gen):
        mdes = " | ".join(f"{100 * r[f'mde_{d}']:.1f}" for d in DISAGREEMENTS)
        r_text = "–" if math.isnan(r["mde_r"]) else f"{r['mde_r']:.2f}"
        lines.append(f"| {r['flavour']} | {r['classes']} | {r['test']} ({r['test_per_class']}) | "
                     f"{100 * r['chance']:.1f} | {100 * r['se_chance']:.1f}, {100 * r['se_90']:.1f} | {mdes} | {r_text} |")
    diving_frames = gen.diving_frames()
    coverage = {m: two_stage_coverage(diving_frames, span, m) for m in (1, span // 4 or 1)}
    lines += ["", "Reading it:",
              "- **SE**: the test videos alone put this floor under a top-1's standard error, however many seeds: "
              "every seed is tested on the same videos.",
              "- **clip MDE**: the smallest difference between two models the test videos let a two-sided test "
              "detect, when the models disagree on that share of them; seeds add their own spread on top.",
              f"- **r**: BE Figure 4 correlates per-class numbers; detecting BE's r = {BE_FIGURE4_R} needs "
              f"{points_to_detect_r(BE_FIGURE4_R)} classes.",
              f"- **two stages** (Diving48-like): a training window of {span} frames "
              f"(clip_len {cfg['clip']['clip_len']}, stride {cfg['clip']['stride']}) in a {diving_frames}-frame video "
              f"sees both stages in {100 * coverage[1]:.0f}% of its placements (at least one frame of each) and "
              f"{100 * coverage[span // 4 or 1]:.0f}% with at least {span // 4 or 1} frames of each.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--out", help="Markdown file to write (default: stdout)")
    args = p.parse_args(argv)
    return exit_status(lambda: write(report(args.preset), args.out))


def write(text: str, out: str | None) -> int:
    """The report to `out` (atomically), or to stdout."""
    if out:
        with atomic_path(out) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
