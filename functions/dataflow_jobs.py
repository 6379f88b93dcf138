"""Whether a Dataflow job is still running: Dataflow v1b3 ``projects.locations.jobs``.

The sweep (``functions.sweep``) asks this before it relaunches a file whose claim stayed
``launched``. With the job id the launch returned it calls ``jobs.get``; a claim recorded
after a 409 holds only the job name, so then it lists the region's active jobs of that name
(``jobs.list`` with ``filter=ACTIVE``). A job in a terminal state (done, failed, cancelled,
drained, replaced by an update) is not running; every other state is (pending, queued,
running, draining, cancelling, cleaning up, paused, unknown): better to look again at the
next sweep than to start a second job beside a live one. A job id Dataflow does not know
(404) is not running. 429, 5xx and network faults raise ``TransientError`` (the next sweep
asks again); any other refusal (403: a missing role) raises ``PermanentError``.
"""

from __future__ import annotations

from typing import Any

from functions.launchers import RETRYABLE_STATUSES, transport_errors
from sluice.errors import PermanentError, TransientError
from sluice.settings import Settings

TERMINAL_STATES = frozenset(
    {
        "JOB_STATE_DONE",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_DRAINED",
        "JOB_STATE_UPDATED",
    }
)
"""Job states after which a job does nothing more (Dataflow's ``JobState`` enum)."""
NOT_FOUND = 404


def dataflow_job_running(jobs: Any, settings: Settings, job_name: str, job_id: str | None) -> bool:
    """Whether the job (by id when known, else by name among active jobs) is still running.

    ``jobs`` is ``service.projects().locations().jobs()`` of a Dataflow v1b3 client.
    """
    location = {"projectId": settings.gcp_project, "location": settings.dataflow_region}
    if job_id and job_id != job_name:
        job = _execute(jobs.get(jobId=job_id, view="JOB_VIEW_SUMMARY", **location), job_name)
        return job is not None and job.get("currentState") not in TERMINAL_STATES
    page_token = None
    while True:
        page = _execute(
            jobs.list(filter="ACTIVE", name=job_name, pageToken=page_token, **location), job_name
        )
        if page is None:
            return False
        if any(
            job.get("name") == job_name and job.get("currentState") not in TERMINAL_STATES
            for job in page.get("jobs", [])
        ):
            return True
        page_token = page.get("nextPageToken")
        if not page_token:
            return False


def _execute(call: Any, job_name: str) -> dict[str, Any] | None:
    """The call's JSON answer; None for 404; Sluice errors for the rest."""
    from googleapiclient.errors import HttpError

    try:
        # num_retries=0: a fault here is retried by the next sweep, not within this one.
        return call.execute(num_retries=0)
    except HttpError as exc:
        status = exc.status_code
        if status == NOT_FOUND:
            return None
        fault = f"dataflow status of job {job_name}: expected an answer, found HTTP {status}"
        if status in RETRYABLE_STATUSES:
            raise TransientError(f"{fault}: {exc.reason}") from exc
        raise PermanentError(f"{fault}: {exc.reason}") from exc
    except (OSError, *transport_errors()) as exc:
        raise TransientError(
            f"dataflow status of job {job_name}: expected an answer, found"
            f" {type(exc).__name__}: {exc}"
        ) from exc
