"""Shared fixtures: a tiny generated dataset (built once per session) and the official split files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# shared/ in the checkout (as the device machine's copy has it) or beside it (../shared), as paper_tables looks
OFFICIAL_SPLITS = next((p for p in (REPO / "shared" / "fixtures" / "official-splits",
                                    REPO.parent / "shared" / "fixtures" / "official-splits") if p.is_dir()),
                       REPO.parent / "shared" / "fixtures" / "official-splits")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """The tiny generator config written to a temporary folder once; returns that folder."""
    from scenebias.data.synthetic import GeneratorConfig, generate

    out = tmp_path_factory.mktemp("synthetic") / "tiny"
    generate(GeneratorConfig.tiny(), out, workers=2, progress=False)
    return out


def in_ci() -> bool:
    """True under continuous integration (CI=true, as GitHub Actions and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip a test whose fixture (../shared: official split files, paper texts) is missing on this machine; under
    CI the fixture is part of the checkout, so a missing one is an error, never a silent skip."""
    if in_ci():
        pytest.fail(f"missing test fixture under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def official_splits() -> Path:
    if not OFFICIAL_SPLITS.is_dir():
        skip_or_fail(f"official split fixtures not found at {OFFICIAL_SPLITS}")
    return OFFICIAL_SPLITS


@pytest.fixture(scope="module")
def default_cfg():
    """The planned default preset (scenebias.plan.load_config)."""
    from scenebias.plan import load_config

    return load_config("default")


@pytest.fixture(scope="module")
def tables():
    """Both papers' tables as data (benchmarks/paper_tables)."""
    from scenebias.tables.published import load_paper_tables

    return load_paper_tables()
