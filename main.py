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

    Returns normally (HTTP 200) for events it ignores (a payload that is not a JSON object
    among them), duplicates, accepted and rejected files. Any other status makes Eventarc
    redeliver: 503 while another delivery holds the event's claim (expected under duplicate
    delivery, so no error trace), 500 for a fault a retry can cure (raised, with its trace).
    """
    _configure_logging()
    from functions.upload import handle_storage_event
    from sluice.claims import ClaimInProgress
    from sluice.settings import load_settings

    try:
        data = _event_payload(cloud_event)
    except ValueError as exc:
        # Eventarc redelivers every non-2xx answer (4xx too) for a day, and a retry brings
        # the same bytes: acknowledge, and log loudly, since only a sender's fix helps.
        from functions.logs import log_event

        reason = f"expected a JSON object payload, found {exc}"
        message = f"storage event {cloud_event.get('id')} dropped: {reason}"
        log_event(log, logging.ERROR, message, outcome="ignored", reason=reason)
        return
    try:
        handle_storage_event(
            cloud_event["type"],
            data,
            settings=load_settings(),
            event_time=cloud_event.get("time"),
        )
    except ClaimInProgress as exc:
        flask.abort(503, description=str(exc))  # logged as a warning by handle_object


def _event_payload(cloud_event: CloudEvent) -> dict[str, Any]:
    """The event's data as a dict (none: empty); ValueError when it is not a JSON object."""
    data = cloud_event.get_data()
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data or "{}")  # a payload sent without a JSON content type
        except ValueError as exc:  # JSONDecodeError, or bytes that are not text
            raise ValueError(f"text that is not JSON ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}")
    return data


@functions_framework.http
def cook(request: flask.Request) -> tuple[dict[str, Any], int]:
    """HTTP (Cloud Scheduler): sweep the claims of pipelines that died (``functions.sweep``),
    rebuild every cooked table, then check the data alerts; JSON ``{"tables": [...],
    "alerts": [...], "sweep": {...}}`` (the alerts open after this check, the sweep's counts).
    The sweep runs first, so a file it gives up on is in the log the alerts read."""
    _configure_logging()
    from functions.cook import cook_and_check_alerts
    from functions.sweep import sweep_stuck_claims
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
