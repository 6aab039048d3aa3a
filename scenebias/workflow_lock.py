"""Is Snakemake's lock in this folder stale? (`make reproduce` asks before it resumes a killed run.)

A killed run (SIGKILL, power loss) leaves lock files in .snakemake/locks: they list the files the run used, not who
held them, and the next run stops with a LockException. They are stale when, on Linux, no other process whose
program is snakemake or scenebias works in this folder (/proc); only then does `make reproduce` run `snakemake
--unlock`. Otherwise it leaves them and says so; `make unlock` removes them unconditionally.

    python -m scenebias.workflow_lock PRESET
Exit status: 0 stale locks found (the caller unlocks), 1 no locks, 2 cannot tell (no /proc), 3 another workflow
process works in this folder (locks kept).
"""
from __future__ import annotations

import os
import sys

LOCK_DIR = ".snakemake/locks"
WORKFLOW_PROGRAMS = ("snakemake", "scenebias")


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _own_ancestry() -> set[int]:
    """This process, make and the shell that called it: never counted as another run."""
    mine, pid = set(), os.getpid()
    while pid > 0 and pid not in mine:
        mine.add(pid)
        pid = _parent(pid)
    return mine


def busy_processes(folder: str = ".") -> list[str]:
    """Other snakemake/scenebias processes working in `folder` (one whose folder cannot be read counts)."""
    here, mine, busy = os.path.realpath(folder), _own_ancestry(), []
    for pid in sorted(int(d) for d in os.listdir("/proc") if d.isdigit() and int(d) not in mine):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if not any(os.path.basename(a) in WORKFLOW_PROGRAMS for a in argv[:3]):
            continue  # python -m snakemake, .venv/bin/snakemake, a job's scenebias ...
        try:
            cwd = os.path.realpath(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            cwd = None  # another user's process: where it works is unknown, so it counts
        if cwd in (here, None):
            busy.append(f"pid {pid}: {' '.join(argv)[:120]}")
    return busy


def main(preset: str) -> int:
    locks = sorted(f for f in os.listdir(LOCK_DIR) if f.endswith(".lock")) if os.path.isdir(LOCK_DIR) else []
    if not locks:
        return 1
    if not os.path.isdir("/proc/self"):
        print(f"Snakemake's lock files are in {LOCK_DIR} ({len(locks)}). If no other snakemake runs in this folder "
              f"(a killed run left them), remove them with:  make unlock PRESET={preset}", file=sys.stderr)
        return 2
    busy = busy_processes()
    if busy:
        print(f"Snakemake's lock files in {LOCK_DIR} are kept: another workflow process works in this folder\n  "
              + "\n  ".join(busy[:5]) + "\nWait for it to end, then rerun. If it is not a run of this folder and the "
              f"lock stays:  make unlock PRESET={preset}", file=sys.stderr)
        return 3
    print(f"A killed run left Snakemake's lock files ({', '.join(locks)}) and no other snakemake works here: "
          "unlocking.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "default"))
