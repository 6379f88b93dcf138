"""Static analysis: checkov on infra/ (no failed check; every skip carries its reason) and
shellcheck on every shell script. Both come from .venv-checks (infra/checks_env.sh)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from sluice.settings import REPO_ROOT
from tests.infra.conftest import checks_tool
from tests.infra.terraform_model import INFRA

SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")
NOT_SOURCE = {".git", ".local", "node_modules"}


def skip_comments() -> dict[tuple[str, str], str]:
    """(check id, resource address) -> reason, for each skip comment in infra/*.tf."""
    skips = {}
    for path in sorted(INFRA.glob("*.tf")):
        address = None
        for line in path.read_text(encoding="utf-8").splitlines():
            if block := re.match(r'(resource|data) "([\w-]+)" "([\w-]+)"', line):
                kind, type_name, name = block.groups()
                address = (
                    f"{type_name}.{name}" if kind == "resource" else f"data.{type_name}.{name}"
                )
            if skip := SKIP.search(line.strip()):
                skips[(skip[1], str(address))] = (skip[2] or "").strip()
    return skips


def shell_scripts() -> list[Path]:
    """Every *.sh, and every file starting with a sh/bash shebang, outside virtualenvs."""
    scripts = []
    for directory, subdirectories, files in os.walk(REPO_ROOT):
        subdirectories[:] = [
            d for d in subdirectories if d not in NOT_SOURCE and not d.startswith(".venv")
        ]
        for name in files:
            path = Path(directory, name)
            if path.suffix == ".sh":
                scripts.append(path)
            elif path.suffix == "":
                with path.open("rb") as handle:
                    if re.match(rb"#!\S*(/|env )(ba)?sh\b", handle.readline()):
                        scripts.append(path)
    return sorted(scripts)


def test_every_checkov_skip_names_a_check_and_gives_a_reason() -> None:
    skips = skip_comments()

    assert skips, "expected the documented skips"
    short = {key: reason for key, reason in skips.items() if len(reason.split()) < 6}
    assert not short, f"skips without a real reason: {short}"


def test_checkov_passes_infra_and_skips_only_what_the_comments_explain() -> None:
    checkov = checks_tool("checkov")

    result = subprocess.run(
        [str(checkov), "--directory", str(INFRA), "--framework", "terraform",
         "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT / ".venv-checks")},
    )  # fmt: skip

    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    skipped = {
        (c["check_id"], c["resource"]): c["check_result"].get("suppress_comment", "")
        for c in report["results"]["skipped_checks"]
    }
    assert report["summary"]["parsing_errors"] == 0
    assert failed == []
    assert set(skipped) == set(skip_comments())
    assert report["summary"]["passed"] > 50


def test_shellcheck_passes_every_shell_script() -> None:
    shellcheck = checks_tool("shellcheck")
    scripts = shell_scripts()

    result = subprocess.run(
        [str(shellcheck), *map(str, scripts)], capture_output=True, text=True, timeout=120
    )

    assert REPO_ROOT / "infra" / "checks_env.sh" in scripts
    assert result.returncode == 0, result.stdout + result.stderr
