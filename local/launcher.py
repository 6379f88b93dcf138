"""The local launcher: ``python -m local.pipeline`` on Beam's local runner, one process a job.

``local.pipeline`` is ``beam.pipeline`` with the same arguments, made ready for the GCS
emulator first (a laptop-only fix that beam/ must not carry).

Laptop-only (the deployed function launches on Dataflow): ``sluice.ingest.launch`` names it
by module path for ``SLUICE_LAUNCHER=local``. ``local.jobs`` keeps one pid file per job name,
so a second launch of a live job is a no-op, as Dataflow's 409 is.
"""

from __future__ import annotations

import logging
import os
import sys

from local.jobs import LocalJobs
from sluice.gcs import is_local_path
from sluice.ingest.launch import LaunchRequest, LaunchResult, launch_parameters
from sluice.settings import REPO_ROOT, Settings

LOG = logging.getLogger(__name__)
PIPELINE_MODULE = "local.pipeline"
"""What a local job runs: ``beam.pipeline``'s command line, emulator-ready."""


class LocalLauncher:
    """Run ``python -m local.pipeline`` on Beam's local runner in a detached subprocess."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jobs = LocalJobs(settings)

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Start the pipeline process once a local slot is free; a live same-named job: no-op."""
        params = launch_parameters(request, self._settings, launcher="local")
        if "input" in params and is_local_path(params["input"]):
            params["input"] = os.path.abspath(params["input"])  # the child runs in REPO_ROOT
        argv = [sys.executable, "-m", PIPELINE_MODULE, *(f"--{k}={v}" for k, v in params.items())]
        pid = self._jobs.start(request.job_name, argv, cwd=REPO_ROOT)
        if pid is None:
            LOG.info("local job %s is already running", request.job_name)
            return LaunchResult(request.job_name, None, already_running=True)
        LOG.info("local job %s started as pid %d", request.job_name, pid)
        return LaunchResult(request.job_name, f"local-{pid}", pid=pid)

    def is_running(self, job_name: str, runner_job_id: str | None) -> bool:
        """Whether a live process runs the job here (its pid file names it)."""
        return self._jobs.running_pid(job_name) is not None

    def wait(self, job_name: str, timeout: float | None = None) -> int:
        """Wait for a job this launcher started; its exit code."""
        return self._jobs.wait(job_name, timeout)
