"""Missing fixtures from ../shared (official split files, paper texts) skip on a developer's machine but fail
under CI (CI=true), where they are part of the checkout: a CI run cannot pass by skipping them."""
from __future__ import annotations

import pytest

from conftest import OFFICIAL_SPLITS, in_ci, skip_or_fail


@pytest.mark.parametrize("value, ci", [("true", True), ("TRUE", True), ("1", True), ("", False), ("false", False),
                                       (None, False)])
def test_ci_is_read_from_the_environment(monkeypatch, value, ci):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_missing_fixture_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing test fixture under CI: no papers"):
        skip_or_fail("no papers")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no papers"):
        skip_or_fail("no papers")


def test_official_splits_fixture_fails_under_ci_when_absent(monkeypatch, tmp_path):
    import conftest

    monkeypatch.setattr(conftest, "OFFICIAL_SPLITS", tmp_path / "absent")
    body = conftest.official_splits.__wrapped__  # the fixture's function, undecorated
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="official split fixtures not found"):
        body()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="official split fixtures not found"):
        body()
    monkeypatch.setattr(conftest, "OFFICIAL_SPLITS", tmp_path)  # present: returned as is, under CI too
    monkeypatch.setenv("CI", "true")
    assert body() == tmp_path


def test_splits_present_or_not_in_ci():
    """The checkout this suite runs in: under CI the fixtures must be there."""
    if in_ci():
        assert OFFICIAL_SPLITS.is_dir(), OFFICIAL_SPLITS
