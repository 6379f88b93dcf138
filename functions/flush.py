"""``flush``: the scheduled HTTP handler that launches the batch jobs due.

Cloud Scheduler calls it every ``flush_interval_seconds`` (``sluice/schedule.json``, one
minute). The work is ``sluice.ingest.batches.flush_batches``: finish every batch a crash or
a spent job budget left open, then launch each group's batches that are full or whose first
file has waited ``SLUICE_BATCH_MAX_AGE_SECONDS``. It answers 200 with the flush's counts as
JSON (``batches``, ``files``, ``waiting``, ``queued``, ``failed``, ``unsettled``), 503 when a
batch failed for a reason a retry may cure (the next tick resumes it anyway), 500 for a
setting a person must fix.
"""

from __future__ import annotations

import logging

import flask
import functions_framework

from functions.common import configure_logging, json_response

log = logging.getLogger(__name__)


@functions_framework.http
def flush(request: flask.Request) -> flask.Response:
    """HTTP (Cloud Scheduler): launch the batch jobs due; JSON counts of what it did."""
    configure_logging()
    from sluice.errors import SluiceError, TransientError
    from sluice.gcs import storage_client
    from sluice.ingest.batches import flush_batches
    from sluice.settings import load_settings

    try:
        settings = load_settings()
        report = flush_batches(storage_client(settings), settings)
    except SluiceError as exc:
        log.error("flush failed: %s", exc, exc_info=True)
        return json_response({"error": str(exc)}, 503 if isinstance(exc, TransientError) else 500)
    return json_response(report.as_dict(), 503 if report.failed else 200)
