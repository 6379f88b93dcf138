"""Shared fixtures: an isolated environment and the repository's contracts."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def isolated_logging() -> Iterator[None]:
    """Restore the root logger after each test: a function entry point installs a JSON
    handler on it (as it should in its own process), which must not leak into the next
    test's captured output."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    """Settings pointing at the test's own SLUICE_HOME."""
    return load_settings()


@pytest.fixture(scope="session")
def contracts() -> dict[str, Contract]:
    """The shipped contracts, by dataset name."""
    return load_contracts(REPO_ROOT / "contracts")
