"""Shared fixtures: an isolated environment and the repository's contracts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sluice.contracts import Contract, load_contracts
from sluice.settings import REPO_ROOT, Settings, load_settings


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test gets its own SLUICE_HOME and no SLUICE_* leaking in from the shell."""
    for key in list(os.environ):
        if key.startswith("SLUICE_"):
            monkeypatch.delenv(key)
    home = tmp_path / "sluice-home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    return home


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    """Settings pointing at the test's own SLUICE_HOME."""
    return load_settings()


@pytest.fixture(scope="session")
def contracts() -> dict[str, Contract]:
    """The shipped contracts, by dataset name."""
    return load_contracts(REPO_ROOT / "contracts")
