"""Shared fixtures: an isolated environment and the repository's contracts; and the one way a
test says a tool it needs is missing (``require_tool``, ``missing_tool``)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from sluice.contracts import Contract, load_contracts
from sluice.settings import REPO_ROOT, Settings, load_settings


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test gets its own SLUICE_HOME and no SLUICE_* leaking in from the shell.

    Accepted files go to the pipeline (``SLUICE_FAST_LANE_MAX_BYTES=0``), one job each
    launched at once (``SLUICE_BATCH_MAX_FILES=1``), which the launch tests drive through
    their recording launcher; a test of the fast lane or of batching sets its limits."""
    for key in list(os.environ):
        if key.startswith("SLUICE_"):
            monkeypatch.delenv(key)
    home = tmp_path / "sluice-home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    monkeypatch.setenv("SLUICE_FAST_LANE_MAX_BYTES", "0")
    monkeypatch.setenv("SLUICE_BATCH_MAX_FILES", "1")
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


def in_ci() -> bool:
    """True under CI=true, where a test must never pass by skipping."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_tool(reason: str) -> NoReturn:
    """Skip the test for ``reason`` on a laptop; under CI=true fail it with the same reason,
    so CI cannot go green by skipping what it was meant to check."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing tool fails the test)", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, reason: str, *, path: Path | None = None) -> str:
    """The path of tool ``name``: ``path`` when given, else found on PATH or beside this
    interpreter (a virtualenv's bin/); when missing, ``missing_tool(reason)``."""
    if path is not None:
        found = str(path) if path.exists() else None
    else:
        beside = Path(sys.executable).parent / name
        found = shutil.which(name) or (str(beside) if os.access(beside, os.X_OK) else None)
    if found is None:
        missing_tool(reason)
    return found
