"""Start the pipeline for one accepted file: on Dataflow (flex template) or on this machine.

``launch_parameters`` is the one place that builds the pipeline's parameters (the names of
``beam.options.PIPELINE_PARAMETERS``, which the flex template's metadata.json lists too).
Both launchers are idempotent per job name: Dataflow answers 409 for a second active job of
the same name, and ``LocalLauncher`` keeps a pid file per job; either way the result says
``already_running`` and the caller counts the file as launched. Each also answers
``is_running(job_name, job_id)``, which the sweep of stuck claims (``functions.sweep``) asks
before it relaunches a job under the same name.

No Beam import here (functions stay light); google-api-python-client loads on first launch.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from functions.local_jobs import LocalJobs
from sluice.errors import ConfigError, PermanentError, TransientError
from sluice.gcs import is_local_path
from sluice.schema import SourceRef, ingest_job_id
from sluice.settings import REPO_ROOT, Settings

LOG = logging.getLogger(__name__)

JOB_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
LABEL_VALUE_UNSAFE = re.compile(r"[^a-z0-9_-]+")
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class LaunchRequest:
    """One pipeline run to start: which file, as which dataset, under which job name."""

    dataset: str
    source: SourceRef
    input_uri: str
    """What the pipeline reads: ``gs://<landing>/<name>`` (a local path in tests)."""
    job_name: str
    """Dataflow job name and ingestion job id: lowercase ``[-a-z0-9]``, <= 63 characters."""
    claim_key: str | None = None
    """The event's claim, which the pipeline marks ``loaded`` or ``rejected`` at the end."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    test: bool = False
    """A test-marked object (``sluice.testmark``): every table it writes is in the test dataset."""
    split_index: str | None = None
    """Where validation stored the file's split points (``sluice.splits``), if it did."""

    def __post_init__(self) -> None:
        if not JOB_NAME.fullmatch(self.job_name):
            raise ConfigError(
                "job_name: expected lowercase [-a-z0-9], starting with a letter, at most 63"
                f" characters, found {self.job_name!r}"
            )
        if self.started_at.tzinfo is None:
            raise ConfigError(
                f"started_at: expected a timezone-aware time, found {self.started_at}"
            )

    @classmethod
    def for_object(
        cls,
        dataset: str,
        source: SourceRef,
        *,
        claim_key: str | None = None,
        replay: str | None = None,
        started_at: datetime | None = None,
        test: bool = False,
    ) -> LaunchRequest:
        """The request for a landing object; a replay gets its own job name (not a 409)."""
        named_by = (
            source if replay is None else SourceRef(f"{source.uri}#{replay}", source.generation)
        )
        return cls(
            dataset=dataset,
            source=source,
            input_uri=source.uri,
            job_name=ingest_job_id(dataset, named_by),
            claim_key=claim_key,
            started_at=started_at or datetime.now(UTC),
            test=test,
        )

    def warehouse_dataset(self, settings: Settings) -> str:
        """The dataset this run writes: the test dataset for a test file, else production."""
        if not self.test:
            return settings.dataset
        if settings.test_dataset in (settings.dataset, settings.cooked_dataset):
            # Writing a test file into a production dataset is what the marker must prevent.
            raise ConfigError(
                "SLUICE_TEST_DATASET: expected a dataset apart from SLUICE_DATASET and"
                f" SLUICE_COOKED_DATASET, found {settings.test_dataset!r}"
            )
        return settings.test_dataset


@dataclass(frozen=True)
class LaunchResult:
    """What a launcher did: started ``job_name`` or found it already running."""

    job_name: str
    job_id: str | None
    """Dataflow's job id, or ``local-<pid>``; None when the job was already running."""
    already_running: bool = False
    pid: int | None = None
    """Local runs only: the pipeline process."""


class Launcher(Protocol):
    """Starts the pipeline for one request and returns at once; tells whether a job runs."""

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Start the job (or find it running); raise TransientError when a retry may help."""
        ...

    def is_running(self, job_name: str, job_id: str | None) -> bool:
        """Whether the job (``job_id`` as the launch returned it, if known) still runs."""
        ...


def launch_parameters(
    request: LaunchRequest, settings: Settings, *, launcher: str | None = None
) -> dict[str, str]:
    """The pipeline's parameters for ``request`` on ``launcher`` (default settings.launcher)."""
    on_dataflow = (launcher or settings.launcher) == "dataflow"
    if settings.warehouse == "bigquery":
        target = settings.bq_project or settings.gcp_project
    else:
        target = str(settings.duckdb_file.absolute())
    params = {
        "input": request.input_uri,
        "dataset": request.dataset,
        "source_uri": request.source.uri,
        "source_generation": str(request.source.generation),
        "staging_location": (
            f"gs://{settings.pipeline_bucket}/staging"
            if on_dataflow
            else str(settings.staging_root.absolute())
        ),
        "warehouse": settings.warehouse,
        "warehouse_target": target,
        "warehouse_dataset": request.warehouse_dataset(settings),
        "job_id": request.job_name,
        "started_at": request.started_at.isoformat(),
        "pipeline_bucket": settings.pipeline_bucket,
    }
    if request.claim_key:
        params["claim"] = request.claim_key
    if request.split_index:
        params["split_index"] = request.split_index
    if not on_dataflow:
        # The template image carries its own contracts; a laptop path means nothing there.
        params["contracts_dir"] = str(settings.contracts_dir.absolute())
    return params


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
        """Send the launch; retry 429/5xx with jittered backoff; 409 means already running."""
        from googleapiclient.errors import HttpError

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

    def is_running(self, job_name: str, job_id: str | None) -> bool:
        """Whether Dataflow still runs the job (``functions.dataflow_jobs``)."""
        from functions.dataflow_jobs import dataflow_job_running

        jobs = self._dataflow().projects().locations().jobs()
        return dataflow_job_running(jobs, self._settings, job_name, job_id)

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


def transport_errors() -> tuple[type[Exception], ...]:
    """Network-level failures of the HTTP stack, all worth a retry."""
    import google.auth.exceptions
    import httplib2

    return (httplib2.HttpLib2Error, google.auth.exceptions.TransportError)


def label_value(text: str) -> str:
    """A valid Google Cloud label value: lowercase ``[a-z0-9_-]``, at most 63 characters."""
    return LABEL_VALUE_UNSAFE.sub("-", text.lower())[:63]


class LocalLauncher:
    """Run ``python -m beam.pipeline`` on Beam's local runner in a detached subprocess."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jobs = LocalJobs(settings)

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Start the pipeline process once a local slot is free; a live same-named job: no-op."""
        params = launch_parameters(request, self._settings, launcher="local")
        if is_local_path(params["input"]):
            params["input"] = os.path.abspath(params["input"])  # the child runs in REPO_ROOT
        argv = [sys.executable, "-m", "beam.pipeline", *(f"--{k}={v}" for k, v in params.items())]
        pid = self._jobs.start(request.job_name, argv, cwd=REPO_ROOT)
        if pid is None:
            LOG.info("local job %s is already running", request.job_name)
            return LaunchResult(request.job_name, None, already_running=True)
        LOG.info("local job %s started as pid %d", request.job_name, pid)
        return LaunchResult(request.job_name, f"local-{pid}", pid=pid)

    def is_running(self, job_name: str, job_id: str | None) -> bool:
        """Whether a live process runs the job here (its pid file names it)."""
        return self._jobs.running_pid(job_name) is not None

    def wait(self, job_name: str, timeout: float | None = None) -> int:
        """Wait for a job this launcher started; its exit code."""
        return self._jobs.wait(job_name, timeout)


def launcher_from_settings(settings: Settings) -> Launcher:
    """The launcher ``settings.launcher`` names."""
    if settings.launcher == "dataflow":
        return DataflowLauncher(settings)
    if settings.launcher == "local":
        return LocalLauncher(settings)
    raise ConfigError(
        f"SLUICE_LAUNCHER: expected 'local' or 'dataflow', found {settings.launcher!r}"
    )
