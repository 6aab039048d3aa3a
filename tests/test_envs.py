"""envs/: the direct requirements declare what the code imports, at the lock's versions; the managed environment
(envs/scenebias.yaml + its post-deploy script, `snakemake --sdm conda`) installs that lock."""
import ast
import hashlib
import re
import shutil
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
FIRST_PARTY = {"scenebias", "methods", "benchmarks"}


def _pins(path: Path) -> dict[str, str]:
    """name (normalised as pip does) -> version of every `name==version` line."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def _imported_modules(*folders: str) -> dict[str, str]:
    """Top-level module -> one file importing it, over every .py file of `folders` (absolute imports only)."""
    found = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def test_direct_requirements_are_pinned_at_the_lock_versions():
    direct, lock = _pins(ENVS / "requirements.txt"), _pins(ENVS / "requirements.lock")
    assert {"numpy", "matplotlib", "jsonschema"} <= set(direct)
    for name, version in direct.items():
        assert lock.get(name) == version, (name, version, lock.get(name))


def test_every_third_party_import_is_a_direct_requirement():
    """A package the code imports is declared in envs/requirements.txt, not only present through another one."""
    direct = _pins(ENVS / "requirements.txt")
    dists = packages_distributions()
    missing = {}
    for module, where in _imported_modules("scenebias", "methods", "benchmarks").items():
        if module in FIRST_PARTY or module in sys.stdlib_module_names or module == "__future__":
            continue
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(module, [module])}
        if not names & set(direct):
            missing[module] = where
    assert not missing, f"imported but not in envs/requirements.txt: {missing}"


def test_the_managed_environment_installs_the_lock():
    """Snakemake builds envs/scenebias.yaml from a copy under .snakemake/conda/, so the lock and the repository
    are installed by the post-deploy script (from the repository root), which names the lock by its checksum:
    a new lock makes a new environment (`make lock` updates the line)."""
    env = yaml.safe_load((ENVS / "scenebias.yaml").read_text(encoding="utf-8"))
    assert "python=3.11" in env["dependencies"] and "pip" in env["dependencies"]
    assert not any(isinstance(d, dict) for d in env["dependencies"]), "no pip section: relative paths break there"
    script = (ENVS / "scenebias.post-deploy.sh").read_text(encoding="utf-8")
    digest = hashlib.sha256((ENVS / "requirements.lock").read_bytes()).hexdigest()
    assert re.findall(r"\b[0-9a-f]{64}\b", script) == [digest], "run `make lock` (or update the checksum line)"
    assert "-r envs/requirements.lock" in script and "-e ." in script


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils' sha256sum")
def test_the_post_deploy_checksum_line_passes_in_the_repository_root():
    line = next(ln for ln in (ENVS / "scenebias.post-deploy.sh").read_text(encoding="utf-8").splitlines()
                if "sha256sum" in ln)
    proc = subprocess.run(["bash", "-c", f"set -euo pipefail; {line}"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
