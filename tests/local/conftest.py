"""Fixtures for the local-stack tests: a running LocalStack and process bookkeeping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.bridge import RetryPolicy
from local.stack import LocalStack
from sluice.settings import Settings, load_settings

TEST_RETRY = RetryPolicy(max_attempts=6, initial_backoff=0.2, max_backoff=1.0)
"""Eventarc-like retries, short enough for a test to see them end."""


def stack_settings(home: Path, **environ: str) -> Settings:
    """Settings for a stack in ``home``, ignoring any SLUICE_* of the shell."""
    return load_settings({"SLUICE_HOME": str(home), **environ})


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One running stack shared by a test module (each module gets its own)."""
    home = tmp_path_factory.mktemp("stack") / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NO_GCE_CHECK", "True")  # the functions inherit it
        with LocalStack(stack_settings(home), retry=TEST_RETRY) as stack:
            yield stack


def process_group_members(leaders: list[int]) -> set[int]:
    """Every live process whose process group is led by one of ``leaders``."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _parent, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) in leaders and state != "Z":
            members.add(int(entry.name))
    return members
