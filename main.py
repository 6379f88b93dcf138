"""Cloud Function entry points: thin wrappers that hand off to ``functions/``.

Nothing heavy is imported here at module level (cold start), and never apache_beam: each
entry point imports its logic on first call. Logs are JSON lines (``functions.logs``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

log = logging.getLogger(__name__)


@functions_framework.cloud_event
def on_upload(cloud_event: CloudEvent) -> None:
    """CloudEvent (Eventarc, storage object finalized): validate the object, launch or reject.

    Returns normally (HTTP 200) for events it ignores, duplicates, accepted and rejected
    files. Any other status makes Eventarc redeliver: 503 while another delivery holds the
    event's claim (expected under duplicate delivery, so no error trace), 500 for a fault a
    retry can cure (raised, with its trace).
    """
    _configure_logging()
    from functions.upload import handle_storage_event
    from sluice.claims import ClaimInProgress
    from sluice.settings import load_settings

    data = cloud_event.get_data()
    if isinstance(data, bytes | str):
        data = json.loads(data or "{}")  # a payload sent without a JSON content type
    try:
        handle_storage_event(
            cloud_event["type"],
            data or {},
            settings=load_settings(),
            event_time=cloud_event.get("time"),
        )
    except ClaimInProgress as exc:
        flask.abort(503, description=str(exc))  # logged as a warning by handle_object


@functions_framework.http
def cook(request: flask.Request) -> tuple[dict[str, Any], int]:
    """HTTP (Cloud Scheduler): rebuild every cooked table, then check the data alerts;
    JSON ``{"tables": [...], "alerts": [...]}`` (the alerts open after this check)."""
    _configure_logging()
    from functions.cook import cook_and_check_alerts
    from sluice.errors import SluiceError, TransientError
    from sluice.settings import load_settings
    from sluice.warehouse import connected_warehouse

    try:
        settings = load_settings()
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
    }, 200


@functions_framework.http
def dashboard(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    """HTTP: the cooked tables as one self-contained HTML page (no script, no outside URL)."""
    _configure_logging()
    from functions.dashboard import render_dashboard
    from sluice.errors import SluiceError
    from sluice.settings import load_settings
    from sluice.warehouse import connected_warehouse

    html_type = {"Content-Type": "text/html; charset=utf-8"}
    try:
        settings = load_settings()
        with connected_warehouse(settings) as warehouse:
            page = render_dashboard(warehouse, settings)
    except SluiceError as exc:
        log.error("dashboard failed: %s", exc, exc_info=True)
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        return f"dashboard unavailable: {first_line}\n", 500, {"Content-Type": "text/plain"}
    return page, 200, html_type


def _configure_logging() -> None:
    from functions.logs import configure_logging

    configure_logging()
