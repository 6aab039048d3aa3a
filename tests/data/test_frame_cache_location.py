"""The frame caches live apart from the generated set: rerunning `scenebias generate`, which replaces its whole
folder, leaves every cache (of a real root and of a generated flavour) byte for byte as it was."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scenebias.cli import main
from scenebias.data import frame_cache as fc
from scenebias.errors import ConfigError
from scenebias.plan import load_config


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def cfg(tiny_dataset, tmp_path, monkeypatch):
    """The smoke preset with its default paths, run from tmp_path, a real HMDB51-layout root (a copy of a
    generated flavour, outside the generated set) and a generator shrunk to two small flavours."""
    monkeypatch.chdir(tmp_path)  # the default paths (data/generated/smoke, data/frame_cache/smoke) land here
    real = tmp_path / "real" / "hmdb51"
    shutil.copytree(tiny_dataset / "hmdb51", real)
    generator = {**load_config("smoke", [])["data"]["generator"], "flavours": ["ucf101", "hmdb51"], "ucf_groups": 2,
                 "ucf_test_groups": 1, "ucf_clips_per_group": [1, 1], "hmdb_train_per_class": 1,
                 "hmdb_test_per_class": 1, "hmdb_unused_per_class": 0}
    return load_config("smoke", overrides={
        "data": {"workers": 1, "generator": generator, "real": {"hmdb51": {"root": str(real), "format": "hmdb51"}}}})


def test_generate_before_and_after_leaves_every_cache_intact(cfg, tmp_path):
    args = ["--config-json", json.dumps(cfg), "--quiet"]
    assert main(["generate", *args]) == 0
    assert main(["frame-cache", "--flavour", "hmdb51", "--workers", "1", *args]) == 0  # a real root
    assert main(["frame-cache", "--flavour", "ucf101", "--workers", "1", *args]) == 0  # a generated flavour
    caches = {f: fc.flavour_cache_dir(cfg, f) for f in ("hmdb51", "ucf101")}
    assert caches["ucf101"] == Path("data/frame_cache/smoke/ucf101")  # the default: beside the generated set
    before = {f: _files(folder) for f, folder in caches.items()}
    assert all(len(files) > 3 for files in before.values())

    assert main(["generate", *args]) == 0  # replaces data/generated/smoke whole
    assert {f: _files(folder) for f, folder in caches.items()} == before
    # and they still serve: the regenerated videos are the same bytes, so the generated flavour's cache holds
    assert fc.verify_cache(caches["ucf101"], sources=True) == len(json.loads(before["ucf101"]["index.json"])["videos"])
    assert fc.verify_cache(caches["hmdb51"], sources=True) > 0


def test_a_cache_configured_inside_the_generated_set_is_refused(cfg):
    inside = {**cfg, "paths": {**cfg["paths"], "frame_cache": "{data}/frame_cache"}}
    with pytest.raises(ConfigError, match=r"paths.frame_cache: '\{data\}/frame_cache' .* lies inside paths.data"):
        fc.flavour_cache_dir(inside, "ucf101")
    assert main(["frame-cache", "--flavour", "ucf101", "--config-json", json.dumps(inside), "--quiet"]) == 2
