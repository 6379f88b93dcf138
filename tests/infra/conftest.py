"""Fixtures for the offline checks of infra/: the parsed Terraform, the checks' tools."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sluice.settings import REPO_ROOT
from tests.infra.terraform_model import Infra, load_infra

CHECKS_VENV = REPO_ROOT / ".venv-checks"


@pytest.fixture(scope="session")
def infra() -> Infra:
    """Every block of infra/*.tf."""
    return load_infra()


@pytest.fixture(scope="session")
def terraform() -> str:
    """The terraform binary (fmt and console work offline; init and validate do not)."""
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not on PATH: install Terraform >= 1.5 to run this check")
    return binary


def checks_tool(name: str) -> Path:
    """A tool of .venv-checks (built by infra/checks_env.sh); skips the test when absent."""
    tool = CHECKS_VENV / "bin" / name
    if not tool.exists():
        pytest.skip(f"{tool} is missing: run `bash infra/checks_env.sh` (make does it for `test`)")
    return tool
