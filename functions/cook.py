"""``cook``: the scheduled HTTP handler. Sweep, reconcile, rebuild the cooked tables, check
the alerts.

The work is in ``sluice.cook``; this module maps its errors to HTTP statuses for Cloud
Scheduler (503 retryable, 500 for a person to fix). A failed summary stops neither the others
nor the alert check: the answer always carries the full report, and its status is 500 when a
summary failed for a reason a person must fix (a bad SQL file: the job shows as failed in
Cloud Scheduler, whose retry rebuilds the same tables harmlessly), 503 when a failure was a
transient warehouse fault, 200 otherwise. Broken contracts are listed and logged at ERROR,
but the cook of every other dataset succeeded, so they alone answer 200. The body is always
valid JSON, in the encoding of ``sluice --json`` (``sluice.finite_json``): a NaN or Infinity
anywhere in the report is written as null, never as the bare ``NaN`` no strict reader parses.
"""

from __future__ import annotations

import logging

import flask
import functions_framework

from functions.common import configure_logging, json_response

log = logging.getLogger(__name__)


@functions_framework.http
def cook(request: flask.Request) -> flask.Response:
    """HTTP (Cloud Scheduler): sweep the claims of pipelines that died (``sluice.cook.sweep``),
    rebuild every cooked table it can, then check the data alerts; JSON ``{"tables": [...],
    "failed": [...], "skipped": [...], "broken_contracts": [...], "alerts": [...],
    "sweep": {...}, "waiting_for_quota": {...}, "batches": {...}, "reconcile": {...}}`` (the
    alerts open after this check; the counts of the sweep, of the files launched once a
    Dataflow job slot freed (``sluice.cook.waiting``), of a flush of the batches due
    (``sluice.ingest.batches``, whose waits feed the ``unprocessed_files`` alert too) and of
    the reconciliation: ``sluice.cook.reconcile`` ingests
    landing files whose event was lost), plus ``error`` (one line per failed summary) when
    one failed. The sweep runs first, so a file it gives up on is in the log the alerts read."""
    configure_logging()
    from sluice.cook.reconcile import ReconcileReport, reconcile_bucket
    from sluice.cook.summaries import cook_and_check_alerts
    from sluice.cook.sweep import sweep_stuck_claims
    from sluice.cook.waiting import launch_waiting_claims
    from sluice.errors import SluiceError, TransientError
    from sluice.gcs import storage_client
    from sluice.ingest.batches import FlushReport, flush_batches
    from sluice.settings import load_settings
    from sluice.warehouse import connected_warehouse

    try:
        settings = load_settings()
        client = storage_client(settings)
        swept = sweep_stuck_claims(client, settings)
        waited = launch_waiting_claims(client, settings)
        try:  # flush runs every minute on its own; here for the waits of batched files
            flushed = flush_batches(client, settings)
        except Exception as exc:  # the summaries and alerts still run
            log.error("flush of the batches due failed: %s", exc, exc_info=True)
            flushed = FlushReport(failed=1)
        try:
            reconciled = reconcile_bucket(client, settings)
        except Exception as exc:  # the summaries and alerts still run; the answer says why
            log.error("reconciliation failed: %s", exc, exc_info=True)
            reconciled = ReconcileReport(error=str(exc))
        with connected_warehouse(settings) as warehouse:
            unprocessed = waited.unsettled_with(reconciled.unsettled, flushed.unsettled)
            report = cook_and_check_alerts(warehouse, settings, unprocessed=unprocessed)
    except SluiceError as exc:
        # Any non-2xx makes Cloud Scheduler retry per its policy; 503 marks the retryable
        # faults, 500 the ones (bad SQL file, bad setting) a person has to fix.
        log.error("cook failed: %s", exc, exc_info=True)
        error = "\n".join([str(exc), *getattr(exc, "__notes__", [])])
        return json_response({"error": error}, 503 if isinstance(exc, TransientError) else 500)
    answer = {
        **report.as_dict(),
        "sweep": swept.as_dict(),
        "waiting_for_quota": waited.as_dict(),
        "batches": flushed.as_dict(),
        "reconcile": reconciled.as_dict(),
    }
    if reconciled.error is not None and not report.failed:
        # Cooked and checked, but a file may be left behind: Cloud Scheduler retries.
        return json_response({**answer, "error": reconciled.error}, 503)
    if not report.failed:
        return json_response(answer, 200)
    answer["error"] = "\n".join(str(failure) for failure in report.failed)
    return json_response(
        answer, 503 if any(failure.transient for failure in report.failed) else 500
    )
