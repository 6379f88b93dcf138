"""``cook``: the scheduled HTTP handler. Sweep, rebuild the cooked tables, check the alerts.

The work is in ``sluice.cook``; this module maps its errors to HTTP statuses for Cloud
Scheduler (503 retryable, 500 for a person to fix).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import flask
import functions_framework

log = logging.getLogger(__name__)


@functions_framework.http
def cook(request: flask.Request) -> tuple[dict[str, Any], int]:
    """HTTP (Cloud Scheduler): sweep the claims of pipelines that died (``sluice.cook.sweep``),
    rebuild every cooked table, then check the data alerts; JSON ``{"tables": [...],
    "alerts": [...], "sweep": {...}}`` (the alerts open after this check, the sweep's counts).
    The sweep runs first, so a file it gives up on is in the log the alerts read."""
    _configure_logging()
    from sluice.cook.summaries import cook_and_check_alerts
    from sluice.cook.sweep import sweep_stuck_claims
    from sluice.errors import SluiceError, TransientError
    from sluice.gcs import storage_client
    from sluice.settings import load_settings
    from sluice.warehouse import connected_warehouse

    try:
        settings = load_settings()
        swept = sweep_stuck_claims(storage_client(settings), settings)
        with connected_warehouse(settings) as warehouse:
            report = cook_and_check_alerts(warehouse, settings)
    except SluiceError as exc:
        # Any non-2xx makes Cloud Scheduler retry per its policy; 503 marks the retryable
        # faults, 500 the ones (bad SQL file, bad setting) a person has to fix.
        log.error("cook failed: %s", exc, exc_info=True)
        return {"error": "\n".join([str(exc), *getattr(exc, "__notes__", [])])}, (
            503 if isinstance(exc, TransientError) else 500
        )
    return {
        "tables": [asdict(table) for table in report.tables],
        "alerts": [alert.as_dict() for alert in report.alerts],
        "sweep": swept.as_dict(),
    }, 200


def _configure_logging() -> None:
    from sluice.logs import configure_logging

    configure_logging()
