"""The method notes live in the repository (docs/methods.md): no code or doc cites a file outside it, and every
registered method has a section there.

Tests may still read fixtures and paper texts from shared/; what is checked here is that nothing cites the notes
that used to live beside the checkout.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from scenebias.plugins import load_methods

ROOT = Path(__file__).resolve().parents[1]
METHODS_DOC = ROOT / "docs" / "methods.md"
SUFFIXES = (".py", ".md", ".yaml", ".smk")
# Built from parts so that this file does not match itself.
FORBIDDEN = ("methods" + "-spec", "../shared" + "/docs")
SKIP_DIRS = {".git", ".venv", "venv", "shared", "results", "reports", "data", "__pycache__", ".snakemake",
             "node_modules", "build", "dist"}


def repository_files() -> list[Path]:
    """The files git tracks, plus untracked ones it does not ignore (new files count too); without git (a copy of
    the tree with no .git), every file outside generated and hidden folders."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True, timeout=60).stdout
        files = [ROOT / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        files = []
        for folder, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            files += [Path(folder) / n for n in names]
    return sorted(f for f in files if (f.suffix in SUFFIXES or f.name == "Snakefile") and f.is_file())


def test_methods_doc_exists():
    assert METHODS_DOC.is_file(), "docs/methods.md is missing"


def test_no_citation_outside_the_repository():
    files = repository_files()
    assert any(f.name == "methods.md" for f in files), "the file listing missed docs/methods.md"
    hits = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if any(word in line for word in FORBIDDEN):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "cite docs/methods.md instead of notes outside the repository:\n" + "\n".join(hits)


def _headings() -> list[str]:
    return [line for line in METHODS_DOC.read_text(encoding="utf-8").splitlines() if re.match(r"#{1,6} ", line)]


def _built_in(spec) -> bool:
    """Methods of this repository (a class of the `scenebias_methods` package (the methods/ folder), or a library class a method file registers
    as it is, like `moco`'s `scenebias.train.moco.MocoObjective`); third-party plugins document themselves."""
    return spec.objective.__module__.split(".")[0] in ("scenebias_methods", "scenebias")


BUILT_IN = [n for n in load_methods().names() if _built_in(load_methods().get(n))]


def test_built_in_methods_are_found():
    assert {"moco", "moco+fame", "moco+be", "supervised", "random_init"} <= set(BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_method_has_a_section(name):
    headings = _headings()
    assert any(f"`{name}`" in h for h in headings), (
        f"docs/methods.md has no section heading naming `{name}`; headings: {headings}")
