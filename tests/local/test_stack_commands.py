"""``sluice up`` as a developer runs it: a foreground process that Ctrl-C (or kill) stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local.services import http_answers
from sluice.settings import REPO_ROOT
from tests.local.conftest import process_group_members


def start_up(home: Path, **environ: str) -> tuple[subprocess.Popen[bytes], dict]:
    """Start ``sluice up`` for ``home`` with only ``environ`` of the SLUICE_* settings; the
    process and its stack.json once it is up."""
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(SLUICE_HOME=str(home), NO_GCE_CHECK="True", **environ)
    with (home.parent / "up.err").open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.cli", "up"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,  # our own Ctrl-C target, like a terminal's foreground job
        )
    deadline = time.monotonic() + 60
    while not (home / "stack.json").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"sluice up did not start: {(home.parent / 'up.err').read_text()}")
        time.sleep(0.1)
    return process, json.loads((home / "stack.json").read_text())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_up_serves_until_signalled_then_leaves_no_process(
    tmp_path: Path, signum: signal.Signals
) -> None:
    home = tmp_path / "home"
    process, info = start_up(home)
    leaders = list(info["services"].values())
    members = process_group_members(leaders)
    answering = http_answers(info["on_upload_url"] + "robots.txt")

    process.send_signal(signum)
    code = process.wait(timeout=60)

    assert answering
    assert code == 0, (tmp_path / "up.err").read_text()
    assert len(members) >= 5  # fake-gcs-server, two gunicorn masters and their workers
    assert process_group_members(leaders) == set()
    assert not (home / "stack.json").exists()
    assert (home / "logs" / "fake-gcs-server.log").stat().st_size > 0


def test_up_killed_outright_leaves_no_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    process, info = start_up(home)
    leaders = list(info["services"].values())
    members = process_group_members(leaders)

    process.kill()  # SIGKILL: `sluice up` stops nothing itself
    process.wait(timeout=10)
    deadline = time.monotonic() + 30
    while process_group_members(leaders) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert len(members) >= 5  # fake-gcs-server, two gunicorn masters and their workers
    assert process_group_members(leaders) == set()
