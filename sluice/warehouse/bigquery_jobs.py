"""BigQuery jobs that run at most once per id, and the mapping of Google errors to ours.

A load names its jobs ``<base>_<attempt>`` (see ``sluice.warehouse.loads.load_key``). Creating
a job whose id exists answers 409 Conflict: the existing job is then fetched and reused
when it is running or succeeded, so a retried load never loads twice. A job id can never be
reused after the job failed, so an existing *failed* job is superseded by the next attempt
number (a failed load or transaction changed nothing).
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sluice.errors import TransientError, WarehouseError
from sluice.settings import Settings

if TYPE_CHECKING:
    from google.cloud.bigquery import Client
    from google.cloud.bigquery.job import _AsyncJob

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
"""Failed attempts of one job id series after which a load gives up."""
RATE_LIMIT_REASONS = ("rateLimitExceeded", "jobRateLimitExceeded", "quotaExceeded")


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
) -> _AsyncJob:
    """Submit the job ``<base_id>_<n>``, or reuse the running or succeeded job of that id."""
    from google.api_core import exceptions as gexc

    for attempt in range(MAX_ATTEMPTS):
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
