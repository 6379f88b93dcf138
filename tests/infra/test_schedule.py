"""One schedule: sluice/schedule.json feeds the local loop (settings) and Cloud Scheduler.

infra/schedule.tf holds only locals, so `terraform console` evaluates the real expressions
offline (no provider needed); the cron it yields is expanded here, independently, into the
minutes it fires at.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sluice.settings import REPO_ROOT, SCHEDULE_FILE, Settings, scheduled_interval
from tests.infra.terraform_model import INFRA, Infra, reference


def evaluate_schedule(terraform: str, workdir: Path, schedule: str) -> tuple[str, bool]:
    """(cook_cron, cook_cron_exact) of infra/schedule.tf given a schedule.json's text."""
    (workdir / "infra").mkdir(parents=True)
    (workdir / "sluice").mkdir()
    shutil.copy(INFRA / "schedule.tf", workdir / "infra" / "schedule.tf")
    # The flush's interval, when a test gives only the cook's: the file holds both.
    both = {"flush_interval_seconds": 60, **json.loads(schedule)}
    (workdir / "sluice" / "schedule.json").write_text(json.dumps(both), encoding="utf-8")
    result = subprocess.run(
        [terraform, "console"],
        input="jsonencode([local.cook_cron, local.cook_cron_exact])\n",
        capture_output=True,
        text=True,
        cwd=workdir / "infra",
        timeout=60,
        env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    cron, exact = json.loads(json.loads(result.stdout))
    return cron, exact


def fire_minutes(cron: str, days: int = 3) -> list[int]:
    """Minutes (from day 0, 00:00 UTC) at which a 'M H * * *' cron fires over ``days``."""
    minute, hour, *rest = cron.split()
    assert rest == ["*", "*", "*"], f"expected a daily cron, found {cron!r}"
    return sorted(
        day * 1440 + h * 60 + m
        for day in range(days)
        for h in _expand(hour, 24)
        for m in _expand(minute, 60)
    )


def spacing(cron: str) -> set[int]:
    """The distinct gaps, in minutes, between consecutive firings of ``cron``."""
    return {later - earlier for earlier, later in itertools.pairwise(fire_minutes(cron))}


def _expand(field: str, size: int) -> list[int]:
    if field == "*":
        return list(range(size))
    if step := re.fullmatch(r"\*/(\d+)", field):
        return list(range(0, size, int(step[1])))
    return [int(value) for value in field.split(",")]


def test_settings_and_terraform_read_the_same_schedule_file(infra: Infra) -> None:
    match = re.search(r'file\("\$\{path\.module\}/([^"]+)"\)', infra.locals["schedule"])

    assert match, infra.locals["schedule"]
    assert (INFRA / match[1]).resolve() == SCHEDULE_FILE
    assert SCHEDULE_FILE.parent == REPO_ROOT / "sluice"  # the flex template image copies sluice/


def test_settings_default_interval_is_the_schedule_file(infra: Infra) -> None:
    on_file = json.loads(SCHEDULE_FILE.read_text(encoding="utf-8"))["cook_interval_seconds"]

    assert scheduled_interval("cook_interval_seconds") == on_file
    assert Settings().cook_interval_seconds == on_file


def test_scheduler_job_fires_at_the_interval_the_local_stack_uses(
    terraform: str, tmp_path: Path
) -> None:
    interval = Settings().cook_interval_seconds
    cron, exact = evaluate_schedule(terraform, tmp_path, SCHEDULE_FILE.read_text())

    assert exact
    assert spacing(cron) == {interval // 60}


@pytest.mark.parametrize("interval", [60, 300, 900, 1800, 7200, 21600, 86400])
def test_schedule_turns_each_exact_interval_into_an_evenly_spaced_cron(
    terraform: str, tmp_path: Path, interval: int
) -> None:
    cron, exact = evaluate_schedule(
        terraform, tmp_path, json.dumps({"cook_interval_seconds": interval})
    )

    assert exact
    assert spacing(cron) == {interval // 60}


@pytest.mark.parametrize("interval", [45, 90, 420, 5400, 25200, 172800])
def test_schedule_refuses_intervals_a_cron_cannot_repeat_exactly(
    terraform: str, tmp_path: Path, interval: int
) -> None:
    _, exact = evaluate_schedule(
        terraform, tmp_path, json.dumps({"cook_interval_seconds": interval})
    )

    assert not exact


def test_scheduler_job_uses_the_schedule_and_refuses_an_inexact_one(infra: Infra) -> None:
    job = infra.resources["google_cloud_scheduler_job.cook"]

    assert job["schedule"] == "${local.cook_cron}"
    assert job["count"] == "${local.cook_interval_seconds > 0 ? 1 : 0}"
    [precondition] = job["lifecycle"][0]["precondition"]
    assert precondition["condition"] == "${local.cook_cron_exact}"
    assert reference(job["http_target"][0]["uri"]) == "google_cloudfunctions2_function.cook"
