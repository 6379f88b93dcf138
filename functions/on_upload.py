"""``on_upload``: the storage-event handler. It reads the CloudEvent and calls the door.

Everything it does is in ``sluice.ingest.door``; this module only turns the event into
arguments and the outcome into an HTTP status (Eventarc redelivers every non-2xx).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from functions.common import configure_logging

log = logging.getLogger(__name__)


@functions_framework.cloud_event
def on_upload(cloud_event: CloudEvent) -> None:
    """CloudEvent (Eventarc, storage object finalized): validate the object, launch or reject.

    Returns normally (HTTP 200) for events it ignores (a payload that is not a JSON object
    among them), duplicates, accepted and rejected files, and files queued for a batch job
    (the ``flush`` function launches those). Any other status makes Eventarc
    redeliver: 503 while another delivery holds the event's claim (expected under duplicate
    delivery, so no error trace), 500 for a fault a retry can cure (raised, with its trace).
    """
    configure_logging()
    from sluice.ingest.claims import ClaimInProgress
    from sluice.ingest.door import handle_storage_event
    from sluice.settings import load_settings

    try:
        data = _event_payload(cloud_event)
    except ValueError as exc:
        # Eventarc redelivers every non-2xx answer (4xx too) for a day, and a retry brings
        # the same bytes: acknowledge, and log loudly, since only a sender's fix helps.
        from sluice.logs import log_event

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
