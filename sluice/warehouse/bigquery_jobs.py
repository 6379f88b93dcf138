"""BigQuery jobs that run at most once per id, and the mapping of Google errors to ours.

A load names its jobs ``<base>_<attempt>`` (see ``sluice.warehouse.loads.load_key``). Creating
a job whose id exists answers 409 Conflict: the existing job is then fetched and reused
when it is running or succeeded, so a retried load never loads twice. A job id can never be
reused after the job failed, so an existing *failed* job is superseded by the next attempt
number (a failed load or transaction changed nothing).

BigQuery runs at most 2 mutating DML statements (UPDATE, DELETE, MERGE; a transaction that
makes them counts) per table at once and queues 20 more; the next one fails with
``resourcesExceeded``, "Too many DML statements outstanding against table ..., limit is 20".
That is ``TableBusy``, a TransientError: ``run_dml_job`` tries such a job again with
exponential backoff and full jitter (each wait uniform in [0, delay]) until ``busy_timeout``,
so a burst of loads into one table spreads out instead of failing.
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sluice.errors import TransientError, WarehouseError
from sluice.settings import Settings

if TYPE_CHECKING:
    from google.cloud.bigquery import Client
    from google.cloud.bigquery.job import _AsyncJob

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 200
"""Failed attempts of one job id series after which a load gives up (a busy table's jobs
fail too, and each retry of one spends an id: ``run_dml_job`` bounds those by time)."""
RATE_LIMIT_REASONS = ("rateLimitExceeded", "jobRateLimitExceeded", "quotaExceeded")
DML_QUEUE_FULL = "Too many DML statements outstanding"
"""BigQuery's message (reason ``resourcesExceeded``) for a table whose DML queue is full."""


class TableBusy(TransientError):
    """A table's mutating-DML queue is full (2 running, 20 pending): retry later."""


def make_client(settings: Settings) -> Client:
    """A BigQuery client for ``bq_project``; anonymous at ``bq_endpoint`` when one is set."""
    from google.cloud import bigquery

    options: dict[str, Any] = {}
    if settings.bq_endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        options = {
            "credentials": AnonymousCredentials(),
            "client_options": ClientOptions(api_endpoint=settings.bq_endpoint),
        }
    return bigquery.Client(project=settings.bq_project, location=settings.bq_location, **options)


@contextmanager
def bigquery_errors(action: str) -> Iterator[None]:
    """Re-raise Google API errors as TransientError (retry may help) or WarehouseError."""
    from google.api_core import exceptions as gexc
    from requests import exceptions as http_exc

    try:
        yield
    except (gexc.TooManyRequests, gexc.ServerError, gexc.RetryError) as exc:
        raise TransientError(f"BigQuery {action}: {exc}") from exc
    except (http_exc.ConnectionError, http_exc.Timeout, concurrent.futures.TimeoutError) as exc:
        raise TransientError(f"BigQuery {action}: no answer in time ({exc!r})") from exc
    except gexc.GoogleAPICallError as exc:
        if DML_QUEUE_FULL in str(exc):
            raise TableBusy(f"BigQuery {action}: {exc}") from exc
        reasons = {str(error.get("reason")) for error in exc.errors if isinstance(error, dict)}
        # BigQuery reports rate limits as 403 and aborts one of two concurrent DML
        # transactions on a table; both succeed when tried again.
        if reasons & set(RATE_LIMIT_REASONS) or "concurrent update" in str(exc):
            raise TransientError(f"BigQuery {action}: {exc}") from exc
        raise WarehouseError(f"BigQuery {action}: {exc}") from exc


def start_job_once(
    client: Client,
    base_id: str,
    submit: Callable[[str], _AsyncJob],
    *,
    location: str,
    retry: Any,
    timeout: float,
    still_usable: Callable[[_AsyncJob], bool] = lambda job: True,
    first_attempt: int = 0,
) -> _AsyncJob:
    """Submit the job ``<base_id>_<n>`` (n from ``first_attempt``), or reuse the running or
    succeeded job of that id."""
    from google.api_core import exceptions as gexc

    for attempt in range(first_attempt, MAX_ATTEMPTS):
        job_id = f"{base_id}_{attempt}"
        try:
            with bigquery_errors(f"submit job {job_id}"):
                return submit(job_id)
        except WarehouseError as exc:
            if not isinstance(exc.__cause__, gexc.Conflict):
                raise
        with bigquery_errors(f"get job {job_id}"):
            job = client.get_job(job_id, location=location, retry=retry, timeout=timeout)
        if job.state != "DONE":
            log.info("reusing running BigQuery job %s", job_id)
            return job
        if job.error_result is None and still_usable(job):
            log.info("reusing finished BigQuery job %s", job_id)
            return job
        log.info("superseding BigQuery job %s (%s)", job_id, job.error_result or "output gone")
    raise WarehouseError(
        f"BigQuery job {base_id}: expected a usable attempt within {MAX_ATTEMPTS}, "
        f"found {MAX_ATTEMPTS} failed attempts"
    )


def run_dml_job(
    client: Client,
    base_id: str,
    submit: Callable[[str], _AsyncJob],
    *,
    location: str,
    retry: Any,
    timeout: float,
    job_timeout: float,
    busy_timeout: float,
    busy_delay: float,
) -> Any:
    """Run a DML job to its end (``start_job_once``, ``wait_for``), trying again after a
    ``TableBusy`` with jittered exponential backoff (from ``busy_delay`` up to 32 times it)
    until ``busy_timeout`` seconds have passed; then the TableBusy is raised."""
    deadline = time.monotonic() + busy_timeout
    delay = busy_delay
    attempt = 0
    while True:
        job = None
        try:
            job = start_job_once(
                client, base_id, submit, location=location, retry=retry, timeout=timeout,
                first_attempt=attempt,
            )  # fmt: skip
            return wait_for(job, timeout=job_timeout, retry=retry)
        except TableBusy:
            # Full jitter: loads that collided once do not collide again in step.
            pause = random.uniform(0, delay)
            if time.monotonic() + pause > deadline:
                raise
            log.info("table busy for %s, trying again in %.2f s", base_id, pause)
            time.sleep(pause)
            delay = min(delay * 2, busy_delay * 32)
            if job is not None:  # the failed job's id is spent: go on from the next one
                attempt = int(job.job_id.rsplit("_", 1)[1]) + 1


def table_exists(client: Client, table: str, *, retry: Any, timeout: float) -> bool:
    """Whether ``table`` (``project.dataset.table``) exists."""
    from google.api_core.exceptions import NotFound

    try:
        with bigquery_errors(f"get table {table}"):
            client.get_table(table, retry=retry, timeout=timeout)
    except WarehouseError as exc:
        if isinstance(exc.__cause__, NotFound):
            return False
        raise
    return True


def wait_for(job: _AsyncJob, *, timeout: float, retry: Any) -> Any:
    """Wait for ``job`` to finish; its result, or our error for its failure."""
    with bigquery_errors(f"job {job.job_id}"):
        return job.result(retry=retry, timeout=timeout)


def query_parameter(name: str, value: object) -> Any:
    """A BigQuery query parameter for a Python value (arrays of scalars too)."""
    from google.cloud import bigquery

    if isinstance(value, list | tuple):
        kinds = {_scalar_type(item) for item in value if item is not None}
        if len(kinds) > 1:
            raise WarehouseError(
                f"parameter @{name}: expected items of one type, found {sorted(kinds)}"
            )
        return bigquery.ArrayQueryParameter(name, kinds.pop() if kinds else "STRING", value)
    return bigquery.ScalarQueryParameter(name, _scalar_type(value), value)


def _scalar_type(value: object) -> str:
    import datetime as dt

    if value is None or isinstance(value, str):
        return "STRING"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP" if value.tzinfo else "DATETIME"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    raise WarehouseError(
        f"query parameter: expected str, bool, int, float, date, datetime or bytes, "
        f"found {type(value).__name__}"
    )
