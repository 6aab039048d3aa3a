"""A digest of a preset's outputs that ignores what legitimately differs between two runs of the same code
(wall times, memory, provenance, absolute paths), so a refactoring can show that it changes no result.

    python -m benchmarks.outputs_digest smoke --out before.json            # after `make smoke`
    python -m benchmarks.outputs_digest smoke --against before.json        # exit 1 and list what differs

Covered: every evaluation's results and every training log (`results/<preset>/**/*.json` without their
`provenance` and timing keys), the model weights (tensors of backbone and head, not the metadata),
`results/<preset>/metrics.csv` and the report's tables (`reports/<preset>/tables/*.{csv,md,json,tex}` without
timing columns; `compute.*` is nothing but timings and is left out), the calibration verdicts and the generated
data's manifest. Plots and HTML pages are left out (they render those same tables).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

TIMING_KEYS = ("provenance", "wall_time_s", "epoch_time_s", "compute")  # compute: a table's job seconds and memory
TIMING_COLUMNS = ("wall_time_s", "wall s", "max RSS MB")
TABLE_SUFFIXES = (".csv", ".md", ".json", ".tex")


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _json_digest(path: Path) -> str:
    data = _without_timings(json.loads(path.read_text(encoding="utf-8")))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _csv_digest(path: Path) -> str:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    keep = [i for i, name in enumerate(rows[0] if rows else []) if name not in TIMING_COLUMNS]
    kept = [[row[i] for i in keep if i < len(row)] for row in rows]
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()


def _model_digest(path: Path) -> str:
    import torch

    payload = torch.load(path, map_location="cpu", weights_only=False)
    h = hashlib.sha256()
    for part in ("backbone", "head"):
        for name, tensor in sorted((payload.get(part) or {}).items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    if path.suffix == ".json":
        return _json_digest(path)
    if path.suffix == ".csv":
        return _csv_digest(path)
    if path.suffix == ".pt":
        return _model_digest(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def output_files(root: Path, preset: str) -> list[Path]:
    results = root / "results" / preset
    files = [p for p in results.rglob("*.json") if "benchmarks" not in p.parts and "checkpoints" not in p.parts]
    files += list(results.rglob("model.pt")) + [results / "metrics.csv"]
    tables = root / "reports" / preset / "tables"
    files += [p for p in tables.glob("*") if p.suffix in TABLE_SUFFIXES and not p.stem.startswith("compute")]
    files += [root / "data" / "generated" / preset / "manifest.json"]
    return sorted(p for p in files if p.is_file())


def digest(root: Path, preset: str) -> dict[str, str]:
    return {str(p.relative_to(root)): _file_digest(p) for p in output_files(root, preset)}


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    lines = [f"only before: {p}" for p in sorted(set(before) - set(after))]
    lines += [f"only after:  {p}" for p in sorted(set(after) - set(before))]
    lines += [f"differs:     {p}" for p in sorted(set(before) & set(after)) if before[p] != after[p]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, help="write the digest (JSON) here")
    parser.add_argument("--against", type=Path, help="compare with a digest written before")
    args = parser.parse_args(argv)
    current = digest(args.root, args.preset)
    if not current:
        print(f"no outputs of preset {args.preset!r} under {args.root.resolve()}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if args.against:
        diff = differences(json.loads(args.against.read_text(encoding="utf-8")), current)
        print("\n".join(diff) if diff else f"{len(current)} output files, all unchanged")
        return 1 if diff else 0
    print(f"{len(current)} output files digested")
    return 0


if __name__ == "__main__":
    sys.exit(main())
