"""The calibration study (docs/calibration-study.md): each candidate setting of the generated data, clip and schedule, judged by the
calibration gates alone (scenebias.analysis.calibration), never by a method under test.

    python -m benchmarks.calibration.study config/studies/calibration.yaml [--candidate NAME ...] [--cores N]
    python -m benchmarks.calibration.study config/studies/calibration.yaml --collect   # run none, gather the report

For every candidate the study writes an overlay config (`preset: cal-<name>`, the study's seeds, the candidate's
overrides) under results/calibration-study/, runs `snakemake calibration` on the base preset plus that overlay
(the four gate runs only: motion_learnability, scene_shortcut, moco, moco+oracle_mask, evaluated on the primary
set and fine-tuned on each evaluation set) and collects each
candidate's calibration.json into reports/calibration-study/study.{md,json}, with every candidate run earlier (one
`--candidate` at a time) in the study's order. Candidates already run are reused
(Snakemake reruns nothing that is up to date). Progress is Snakemake's own.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from scenebias.config import read_yaml
from scenebias.errors import ConfigError
from scenebias.io import write_json, write_text
from scenebias.report.values import gate_values

ROOT = Path(__file__).resolve().parents[2]
OUT = Path("results/calibration-study")
REPORT = Path("reports/calibration-study")


def load_study(path: Path) -> dict[str, Any]:
    study = read_yaml(path)
    for key in ("base", "seeds", "candidates"):
        if key not in study:
            raise ConfigError(f"{path}: the study lacks the key {key!r} (base, seeds, candidates)")
    if not isinstance(study["candidates"], dict) or not study["candidates"]:
        raise ConfigError(f"{path}: candidates must be a non-empty mapping name -> {{overrides: ...}}")
    for name, cand in study["candidates"].items():
        if not isinstance(cand, dict) or not isinstance(cand.get("overrides", {}), dict):
            raise ConfigError(f"{path}: candidates.{name}.overrides must be a mapping of config overrides")
    return study


def overlay(study: dict[str, Any], name: str) -> dict[str, Any]:
    """The candidate's config on top of the base preset: its own preset name (own data and results). Only the
    `calibration` target is built, so the preset's tables add nothing but planning."""
    return {**study["candidates"][name].get("overrides", {}), "preset": f"cal-{name}", "seeds": study["seeds"]}


def run_candidate(study: dict[str, Any], name: str, cores: int) -> None:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "overlay.yaml"
    config.write_text(yaml.safe_dump(overlay(study, name), sort_keys=False), encoding="utf-8")
    base = ROOT / "config" / "presets" / f"{study['base']}.yaml"
    cmd = ["snakemake", "--cores", str(cores), "--keep-going", "--rerun-incomplete", "calibration",
           "--configfile", str(base), str(config)]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def collected(study: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every candidate of the study that has been run (its results/cal-<name>/calibration.json), as last run."""
    found = {}
    for name in study["candidates"]:
        path = ROOT / "results" / f"cal-{name}" / "calibration.json"
        if path.exists():
            found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found


def study_table(results: dict[str, dict[str, Any]], study: dict[str, Any]) -> str:
    head = ("| candidate | what changes | (a) motion learnable | (b) scene tempting | (c) MoCo takes the shortcut | "
            "(d) oracle beats MoCo | overall | fine-tuning sets |\n|---|---|---|---|---|---|---|---|\n")
    rows = []
    for name, gates in results.items():
        cells = [f"{g['status']}: {gate_values(g)}" for g in gates["gates"]]  # the report's wording
        rows.append(f"| {name} | {study['candidates'][name].get('why', '')} | " + " | ".join(cells)
                    + f" | **{gates['overall']}** | {sets_cell(gates.get('sets') or {})} |")
    return head + "\n".join(rows) + "\n"


def sets_cell(sets: dict[str, Any]) -> str:
    """Each fine-tuning set's overall verdict and its gates' values, in the report's wording."""
    return "<br>".join(f"**{name}: {found['overall']}** — " + "; ".join(
        f"({g['gate']}) {g['status']}: {gate_values(g)}" for g in found["gates"]) for name, found in sets.items()) or "–"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--candidate", action="append", default=[], help="run only these (repeatable)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--collect", action="store_true",
                        help="run no candidate: write the study report from the candidates' runs as they stand "
                             "(after a candidate was rerun by hand, say)")
    args = parser.parse_args(argv)
    if args.collect and args.candidate:
        raise ConfigError("--collect runs no candidate: leave out --candidate")
    study = load_study(args.study)
    names = args.candidate or list(study["candidates"])
    unknown = [n for n in names if n not in study["candidates"]]
    if unknown:
        raise ConfigError(f"{args.study}: unknown candidate(s) {unknown}; expected one of {list(study['candidates'])}")
    for name in [] if args.collect else names:
        run_candidate(study, name, args.cores)
    results = collected(study)  # with the candidates run one at a time earlier, in the study's order
    write_json(ROOT / REPORT / "study.json", results)
    write_text(ROOT / REPORT / "study.md", study_table(results, study))
    print(study_table(results, study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
