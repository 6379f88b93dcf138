"""Local job processes: pid files decide "already running", logs and settings reach the child."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from local.jobs import LocalJobs, is_job_alive, settings_environ
from sluice.settings import load_settings

SLEEPER = [sys.executable, "-c", "import time; time.sleep(30)"]


def test_local_jobs_start_refuses_a_second_live_job(tmp_path: Path) -> None:
    jobs = LocalJobs(load_settings())

    first = jobs.start("job-a", [*SLEEPER, "job-a"], cwd=tmp_path)
    second = jobs.start("job-a", [*SLEEPER, "job-a"], cwd=tmp_path)
    other = jobs.start("job-b", [*SLEEPER, "job-b"], cwd=tmp_path)

    try:
        assert first is not None and other is not None and second is None
        assert jobs.running_pid("job-a") == first
        assert jobs.running_jobs() == {"job-a": first, "job-b": other}
    finally:
        for pid in (first, other):
            if pid is not None:
                os.kill(pid, 9)
    assert jobs.wait("job-a", timeout=10) == -9
    jobs.wait("job-b", timeout=10)
    assert jobs.running_pid("job-a") is None and jobs.running_jobs() == {}


def test_local_jobs_start_again_after_the_job_finished(tmp_path: Path) -> None:
    jobs = LocalJobs(load_settings())
    quick = [sys.executable, "-c", "print('done')"]
    first = jobs.start("job-a", quick, cwd=tmp_path)
    assert jobs.wait("job-a", timeout=10) == 0

    second = jobs.start("job-a", quick, cwd=tmp_path)

    assert second is not None and second != first
    assert jobs.wait("job-a", timeout=10) == 0
    assert jobs.log_file("job-a").read_text().splitlines() == ["done", "done"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs procfs to tell processes apart")
def test_local_jobs_ignore_a_pid_file_naming_an_unrelated_process(tmp_path: Path) -> None:
    jobs = LocalJobs(load_settings())
    jobs.jobs_dir.mkdir(parents=True)
    jobs.pid_file("job-a").write_text(f"{os.getppid()}\n")  # alive, but not this job

    assert jobs.running_pid("job-a") is None
    assert not is_job_alive(os.getppid(), "job-a")


def test_local_jobs_child_sees_the_launcher_settings(tmp_path: Path) -> None:
    settings = load_settings(gcs_endpoint="http://127.0.0.1:4443", pipeline_bucket="pipes")
    jobs = LocalJobs(settings)
    show = "import json, os; print(json.dumps({k: v for k, v in os.environ.items()}))"

    jobs.start("job-env", [sys.executable, "-c", show], cwd=tmp_path)
    assert jobs.wait("job-env", timeout=10) == 0

    env = json.loads(jobs.log_file("job-env").read_text())
    assert env["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:4443"
    assert env["SLUICE_PIPELINE_BUCKET"] == "pipes"
    assert env["SLUICE_HOME"] == str(settings.home.absolute())


def test_settings_environ_round_trips_through_load_settings(tmp_path: Path) -> None:
    settings = load_settings(
        home=Path("relative-home"), dataflow_max_workers=3, launcher="dataflow"
    )

    again = load_settings(settings_environ(settings))

    assert again.home == Path("relative-home").absolute()
    assert (again.dataflow_max_workers, again.launcher) == (3, "dataflow")
    assert again.duckdb_path is None


def test_local_jobs_processes_survive_in_their_own_session(tmp_path: Path) -> None:
    jobs = LocalJobs(load_settings())

    pid = jobs.start("job-s", [*SLEEPER, "job-s"], cwd=tmp_path)

    try:
        assert pid is not None and os.getsid(pid) == pid != os.getsid(0)
    finally:
        os.kill(pid, 9)
        jobs.wait("job-s", timeout=10)
