"""Copies of ``contracts/`` and ``sql/`` with one broken dataset and one broken summary, plus
the stray files editors and macOS leave beside them (tests of "one bad dataset never stops
the others")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sluice.settings import REPO_ROOT

BROKEN_DATASET = "server_logs"
BROKEN_SQL = "30_server_requests_per_hour.sql"
"""A summary that ``32_server_peak_hour.sql`` reads (its dependant, skipped when it fails)."""
DEPENDANT = "server_peak_hour"


def broken_contracts_dir(root: Path) -> Path:
    """``contracts/`` with a typo in server_logs.yaml and two stray files beside it."""
    target = root / "contracts"
    shutil.copytree(REPO_ROOT / "contracts", target)
    path = target / f"{BROKEN_DATASET}.yaml"
    text = path.read_text(encoding="utf-8")
    assert "type: integer" in text
    path.write_text(text.replace("type: integer", "type: integr", 1), encoding="utf-8")
    (target / ".#lock.yaml").write_text("user@host.1234:1700000000", encoding="utf-8")
    (target / "._x.yaml").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \xff\xfe")
    return target


def broken_sql_dir(root: Path) -> Path:
    """``sql/`` with one summary that does not parse and an editor lock file beside it."""
    target = root / "sql"
    shutil.copytree(REPO_ROOT / "sql", target)
    path = target / BROKEN_SQL
    path.write_text(path.read_text(encoding="utf-8").replace("SELECT", "SELEKT", 1))
    (target / ".#31_server_requests_per_day.sql").write_text("user@host.1234:1700000000")
    return target


def use_broken_contracts(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point SLUICE_CONTRACTS_DIR at a broken copy; the copy's directory."""
    directory = broken_contracts_dir(root)
    monkeypatch.setenv("SLUICE_CONTRACTS_DIR", str(directory))
    return directory


def use_broken_sql(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point SLUICE_SQL_DIR at a broken copy; the copy's directory."""
    directory = broken_sql_dir(root)
    monkeypatch.setenv("SLUICE_SQL_DIR", str(directory))
    return directory
