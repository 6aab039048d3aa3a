"""External packages register methods through the `scenebias.methods` entry-point group."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scenebias-reverse"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """The example package really installed (wheel built by pip, no network, no build isolation)."""
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source)  # the build writes next to the sources: keep the checkout clean
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True)
    assert list(target.glob("scenebias_reverse-*.dist-info/entry_points.txt"))
    return target


def _run(code: str, site: Path | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)


def test_installed_package_registers_its_method_and_it_trains(installed_example):
    code = """
import torch
from scenebias.cli import main
from scenebias.models.backbones import build_backbone
from scenebias.plugins import get_method
main(["methods"])
spec = get_method("moco+reverse")
objective = spec.build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16})
views = torch.rand(4, 2, 3, 4, 8, 8)
batch = {"views": views, "index": torch.arange(4), "label": torch.zeros(4, dtype=torch.long)}
query, key = objective.make_views(batch, torch.Generator().manual_seed(0))
assert torch.equal(key, views[:, 1].flip(2)) and torch.equal(query, views[:, 0])
loss, stats = objective.training_loss(batch, lambda x: x, torch.Generator().manual_seed(0))
loss.backward()
print("loss", float(loss))
"""
    out = _run(code, installed_example).stdout.splitlines()
    assert "moco+reverse" in out and "moco" in out
    assert out[-1].startswith("loss ") and float(out[-1].split()[1]) > 0


def test_method_absent_without_the_package():
    out = _run("from scenebias.cli import main; main(['methods'])", None).stdout.splitlines()
    assert "moco+reverse" not in out and "moco+fame" in out


def test_a_broken_plugin_is_an_error_naming_it(tmp_path):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    info = tmp_path / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[scenebias.methods]\nbroken = broken_plugin\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "scenebias.cli", "methods"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "entry point 'broken' = 'broken_plugin'" in proc.stderr and "RuntimeError: boom" in proc.stderr
