"""The CloudEvent built from one fake-gcs-server message, as Eventarc would deliver it."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from cloudevents.http import from_http

from local.eventarc import FINALIZED, storage_event
from tests.local.storage_messages import finalize_message

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_storage_event_is_a_binary_mode_finalize() -> None:
    message = finalize_message(name="incoming/server_logs/day 1.csv.gz", generation="42")

    event = storage_event("7", message["attributes"], message["data"], NOW)

    assert event is not None
    parsed = from_http(event.headers, event.body)
    assert parsed["type"] == FINALIZED
    assert parsed["id"] == "7"
    assert parsed["bucket"] == "sluice-landing"
    assert event.event_key == "sluice-landing/incoming/server_logs/day 1.csv.gz#42"
    assert parsed.data["contentType"] == "text/csv"


def test_storage_event_time_falls_back_to_the_event_time_attribute() -> None:
    message = finalize_message()
    resource = json.loads(message["data"])
    del resource["updated"]

    event = storage_event("7", message["attributes"], json.dumps(resource).encode(), NOW)

    assert event is not None
    assert event.headers["ce-time"] == "2026-11-24T11:56:01Z"


def test_storage_event_percent_encodes_header_values() -> None:
    message = finalize_message(name='incoming/kiva_loans/prêts 2024 "q" 100%.csv')

    event = storage_event("9", message["attributes"], message["data"], NOW)

    assert event is not None
    subject = event.headers["ce-subject"]
    assert subject.isascii() and " " not in subject and '"' not in subject
    assert unquote(subject) == 'objects/incoming/kiva_loans/prêts 2024 "q" 100%.csv'
    assert json.loads(event.body)["name"] == 'incoming/kiva_loans/prêts 2024 "q" 100%.csv'


def test_storage_event_rejects_data_that_is_not_json(caplog: pytest.LogCaptureFixture) -> None:
    attributes = finalize_message()["attributes"]

    event = storage_event("9", attributes, b"not json", NOW)

    assert event is None
    assert "expected JSON object data" in caplog.text


def test_storage_event_drops_an_untyped_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="local.eventarc")
    attributes = {k: v for k, v in finalize_message()["attributes"].items() if k != "eventType"}

    event = storage_event("9", attributes, finalize_message()["data"], NOW)

    assert event is None
    assert "dropped an untyped event" in caplog.text
