"""Shared fixtures: a tiny generated dataset (built once per session) and the official split files."""
from __future__ import annotations

from pathlib import Path

import pytest

OFFICIAL_SPLITS = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "official-splits"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """The tiny generator config written to a temporary folder once; returns that folder."""
    from scenebias.data.synthetic import GeneratorConfig, generate

    out = tmp_path_factory.mktemp("synthetic") / "tiny"
    generate(GeneratorConfig.tiny(), out, workers=2, progress=False)
    return out


@pytest.fixture(scope="session")
def official_splits() -> Path:
    if not OFFICIAL_SPLITS.is_dir():
        pytest.skip(f"official split fixtures not found at {OFFICIAL_SPLITS}")
    return OFFICIAL_SPLITS
