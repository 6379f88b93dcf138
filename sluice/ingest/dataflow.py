"""The Dataflow adapter: launch the flex template, and tell whether a job still runs.

``DataflowLauncher.launch`` calls Dataflow v1b3 ``projects.locations.flexTemplates.launch``
with google-api-python-client, built from its bundled discovery document (no network to
build): ``jobName`` from the event key, the template's parameters (``launch_parameters``), and
the environment (temp and staging locations, service account, worker bound, labels). 429 and
5xx are retried with jittered backoff; 409 means the job already runs.

The project may run only so many jobs at once (Dataflow's jobs-per-project quota, 25 by
default). Before each launch the launcher counts Sluice's active jobs in the region
(``jobs.list``, ``filter=ACTIVE``, names starting ``sluice-``); at ``settings.dataflow_max_jobs``
it raises ``JobBudgetSpent`` instead of launching. Dataflow's own quota error ("Dataflow
quota error for jobs-per-project quota", which other jobs in the project or launches racing
this count can still cause) raises it too, at once, without the backoff: a slot frees only
when a job ends. The count is a budget, not a lock: two launches at once may both see one
slot free; the quota error then stops the second.

``dataflow_job_running`` (Dataflow v1b3 ``projects.locations.jobs``): the sweep
(``sluice.cook.sweep``) asks it before it relaunches a file whose claim stayed ``launched``.
With the job id the launch returned it calls ``jobs.get``; a claim recorded after a 409 holds
only the job name, so then it lists the region's active jobs of that name (``jobs.list`` with
``filter=ACTIVE``). A job in a terminal state (done, failed, cancelled, drained, replaced by an
update) is not running; every other state is (pending, queued, running, draining, cancelling,
cleaning up, paused, unknown): better to look again at the next sweep than to start a second
job beside a live one. A job id Dataflow does not know (404) is not running. 429, 5xx and
network faults raise ``TransientError`` (the next sweep asks again); any other refusal (403: a
missing role) raises ``PermanentError``."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

from sluice.errors import ConfigError, PermanentError, TransientError
from sluice.ingest.launch import JobBudgetSpent, LaunchRequest, LaunchResult, launch_parameters
from sluice.schema import JOB_NAME_PREFIX
from sluice.settings import Settings

LOG = logging.getLogger(__name__)

LABEL_VALUE_UNSAFE = re.compile(r"[^a-z0-9_-]+")
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
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
JOBS_QUOTA_MARKER = "quota error for jobs-per-project"
"""What Dataflow's answer says when the project already runs its quota of concurrent jobs."""


class DataflowLauncher:
    """Launch the flex template through Dataflow v1b3 ``projects.locations.flexTemplates``."""

    def __init__(
        self,
        settings: Settings,
        http: Any = None,
        *,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        require_dataflow_settings(settings)
        self._settings = settings
        self._http = http
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._service: Any = None

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Send the launch; retry 429/5xx with jittered backoff; 409 means already running;
        ``JobBudgetSpent`` when the job budget or Dataflow's jobs quota is spent."""
        from googleapiclient.errors import HttpError

        self._check_job_budget(request.job_name)
        call = self._templates().launch(
            projectId=self._settings.gcp_project,
            location=self._settings.dataflow_region,
            body=self.launch_body(request),
        )
        for attempt in range(self._max_attempts):
            try:
                # num_retries=0: this loop owns retries (bounded, jittered, Retry-After).
                response = call.execute(num_retries=0)
            except HttpError as exc:
                status = exc.status_code
                if is_jobs_quota_error(exc):
                    # Not retried here: the quota frees only as jobs end, minutes away.
                    raise JobBudgetSpent(
                        f"dataflow launch of {request.job_name}: expected a free job slot,"
                        f" found Dataflow's jobs quota spent: {error_message(exc)}"
                    ) from exc
                if status == 409 and error_status(exc) != "ABORTED":
                    LOG.info("dataflow job %s is already running", request.job_name)
                    return LaunchResult(request.job_name, None, already_running=True)
                if status not in RETRYABLE_STATUSES and status != 409:
                    raise PermanentError(
                        f"dataflow launch of {request.job_name}: expected success,"
                        f" found HTTP {status}: {exc.reason}"
                    ) from exc
                fault, retry_after = f"HTTP {status}: {exc.reason}", exc.resp.get("retry-after")
            except (OSError, *transport_errors()) as exc:
                fault, retry_after = f"{type(exc).__name__}: {exc}", None
            else:
                job = response.get("job", {})
                LOG.info("dataflow job %s launched as %s", request.job_name, job.get("id"))
                return LaunchResult(request.job_name, job.get("id"))
            if attempt + 1 < self._max_attempts:
                delay = self._backoff(attempt, retry_after)
                LOG.warning(
                    "dataflow launch of %s failed (%s); attempt %d of %d, next in %.2f s",
                    request.job_name, fault, attempt + 1, self._max_attempts, delay,
                )  # fmt: skip
                self._sleep(delay)
        raise TransientError(
            f"dataflow launch of {request.job_name}: expected success within"
            f" {self._max_attempts} attempts, found {fault}"
        )

    def active_sluice_jobs(self) -> set[str]:
        """The names of Sluice's jobs Dataflow lists as active in the region."""
        jobs = self._dataflow().projects().locations().jobs()
        return active_job_names(jobs, self._settings, prefix=JOB_NAME_PREFIX)

    def _check_job_budget(self, job_name: str) -> None:
        """Raise ``JobBudgetSpent`` when ``dataflow_max_jobs`` of Sluice's jobs are active
        already (a job of this very name does not count: its launch is a 409, no new job)."""
        active = self.active_sluice_jobs() - {job_name}
        budget = self._settings.dataflow_max_jobs
        if len(active) >= budget:
            raise JobBudgetSpent(
                f"dataflow launch of {job_name}: expected fewer than {budget} active Sluice jobs"
                f" (SLUICE_DATAFLOW_MAX_JOBS), found {len(active)}"
            )

    def is_running(self, job_name: str, runner_job_id: str | None) -> bool:
        """Whether Dataflow still runs the job (``dataflow_job_running``)."""
        jobs = self._dataflow().projects().locations().jobs()
        return dataflow_job_running(jobs, self._settings, job_name, runner_job_id)

    def launch_body(self, request: LaunchRequest) -> dict[str, Any]:
        """The ``LaunchFlexTemplateRequest`` body for ``request``."""
        settings = self._settings
        staging = f"gs://{settings.pipeline_bucket}/staging"
        environment: dict[str, Any] = {
            "tempLocation": settings.dataflow_temp_location
            or f"gs://{settings.pipeline_bucket}/temp",
            # Same as the staging_location parameter: both launcher and pipeline agree.
            "stagingLocation": staging,
            "maxWorkers": settings.dataflow_max_workers,
            "additionalUserLabels": {
                "dataset": label_value(request.dataset),
                "sluice-job": label_value(request.job_name),
            },
        }
        if settings.dataflow_service_account:
            environment["serviceAccountEmail"] = settings.dataflow_service_account
        return {
            "launchParameter": {
                "jobName": request.job_name,
                "containerSpecGcsPath": settings.dataflow_template,
                "parameters": launch_parameters(request, settings, launcher="dataflow"),
                "environment": environment,
            }
        }

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        delay = random.uniform(0, self._base_delay * 2**attempt)  # full jitter
        if retry_after and retry_after.isdigit():
            delay = max(delay, float(retry_after))
        return min(delay, self._max_delay)

    def _templates(self) -> Any:
        return self._dataflow().projects().locations().flexTemplates()

    def _dataflow(self) -> Any:
        if self._service is None:
            self._service = build_dataflow_service(self._settings, self._http)
        return self._service


def build_dataflow_service(settings: Settings, http: Any = None) -> Any:
    """The Dataflow v1b3 client from the bundled discovery document (no network to build)."""
    from googleapiclient import discovery

    options = {"api_endpoint": settings.dataflow_endpoint} if settings.dataflow_endpoint else None
    if http is None:
        import google.auth
        import google_auth_httplib2
        import httplib2
        from google.auth.exceptions import DefaultCredentialsError

        try:
            credentials, _ = google.auth.default(
                scopes=["https://www.googleapis.com/auth/cloud-platform"]
            )
        except DefaultCredentialsError as exc:
            raise ConfigError(
                f"dataflow launcher: expected Google credentials, found none: {exc}"
            ) from exc
        # An explicit timeout: httplib2 waits forever by default.
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=60))
    return discovery.build(
        "dataflow",
        "v1b3",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options=options,
    )


def require_dataflow_settings(settings: Settings) -> None:
    """Raise ConfigError unless the settings can launch a flex template."""
    missing = [
        f"SLUICE_{name.upper()}"
        for name in ("gcp_project", "dataflow_region", "dataflow_template")
        if not getattr(settings, name)
    ]
    if missing:
        raise ConfigError(
            f"dataflow launcher: expected {', '.join(missing)} to be set, found empty"
        )
    if not settings.dataflow_template.startswith("gs://"):
        raise ConfigError(
            "SLUICE_DATAFLOW_TEMPLATE: expected a gs:// path of the template spec,"
            f" found {settings.dataflow_template!r}"
        )
    if settings.warehouse != "bigquery":
        raise ConfigError(
            "dataflow launcher: expected SLUICE_WAREHOUSE=bigquery (Dataflow workers cannot"
            f" reach a local DuckDB file), found {settings.warehouse!r}"
        )


def error_status(exc: Any) -> str | None:
    """The ``error.status`` of a Google API error body (``ALREADY_EXISTS``, ``ABORTED``...)."""
    try:
        return json.loads(exc.content.decode("utf-8"))["error"]["status"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def error_message(exc: Any) -> str:
    """The ``error.message`` of a Google API error body; the HTTP reason without one."""
    try:
        return str(json.loads(exc.content.decode("utf-8"))["error"]["message"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return str(getattr(exc, "reason", exc))


def is_jobs_quota_error(exc: Any) -> bool:
    """Whether an API error is Dataflow's concurrent-jobs quota ("Dataflow quota error for
    jobs-per-project quota. Project P is running N jobs. ..."), told by its message, not its
    status: Dataflow's throttling and outages are 429s and 503s too, and those retry."""
    return JOBS_QUOTA_MARKER in error_message(exc)


def transport_errors() -> tuple[type[Exception], ...]:
    """Network-level failures of the HTTP stack, all worth a retry."""
    import google.auth.exceptions
    import httplib2

    return (httplib2.HttpLib2Error, google.auth.exceptions.TransportError)


def label_value(text: str) -> str:
    """A valid Google Cloud label value: lowercase ``[a-z0-9_-]``, at most 63 characters."""
    return LABEL_VALUE_UNSAFE.sub("-", text.lower())[:63]


def dataflow_job_running(
    jobs: Any, settings: Settings, job_name: str, runner_job_id: str | None
) -> bool:
    """Whether the job (by id when known, else by name among active jobs) is still running.

    ``jobs`` is ``service.projects().locations().jobs()`` of a Dataflow v1b3 client.
    """
    location = {"projectId": settings.gcp_project, "location": settings.dataflow_region}
    if runner_job_id and runner_job_id != job_name:
        job = _execute(jobs.get(jobId=runner_job_id, view="JOB_VIEW_SUMMARY", **location), job_name)
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


def active_job_names(jobs: Any, settings: Settings, *, prefix: str) -> set[str]:
    """Names starting with ``prefix`` of the region's jobs that are not in a terminal state
    (``jobs.list`` with ``filter=ACTIVE``, every page)."""
    location = {"projectId": settings.gcp_project, "location": settings.dataflow_region}
    names: set[str] = set()
    page_token = None
    while True:
        call = jobs.list(filter="ACTIVE", pageToken=page_token, **location)
        page = _execute(call, f"{prefix}*") or {}
        names.update(
            job["name"]
            for job in page.get("jobs", [])
            if str(job.get("name", "")).startswith(prefix)
            and job.get("currentState") not in TERMINAL_STATES
        )
        page_token = page.get("nextPageToken")
        if not page_token:
            return names


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
