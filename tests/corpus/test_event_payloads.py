"""Malformed storage CloudEvent payloads at ``main.on_upload``: acknowledged, logged, no retry.

Eventarc redelivers every answer but a 2xx (4xx included) until the event is a day old, and
a redelivery brings the same bytes, so a payload that is not a JSON object must be
acknowledged with 200 and logged as an error, never answered with a 500 and its traceback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.sluice.ingest.upload_doubles import claim_names, install_launcher
from tests.test_main import FINALIZED, upload_client

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]


def binary_event_headers(bucket: str, content_type: str | None) -> dict[str, str]:
    """Binary-mode CloudEvent headers of a storage finalize event, as Eventarc sends them."""
    headers = {
        "ce-specversion": "1.0",
        "ce-type": FINALIZED,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-subject": "objects/incoming/kiva_loans/a.csv",
        "ce-id": "corpus-1",
        "ce-time": "2026-11-24T11:56:01.123456Z",
    }
    if content_type:
        headers["content-type"] = content_type
    return headers


@pytest.mark.parametrize(
    ("content_type", "body", "found"),
    [
        ("application/json", b'{"bucket": "b", "name": ', "text that is not JSON"),
        ("text/plain", b"bucket=b&name=a.csv", "text that is not JSON"),
        (None, b"\xff\xfe\x00{", "text that is not JSON"),
        ("application/json", b'["incoming/kiva_loans/a.csv"]', "a JSON list"),
        # The SDK hands a JSON string over decoded, as text: it then fails as text does.
        ("application/json", b'"incoming/kiva_loans/a.csv"', "text that is not JSON"),
        ("application/json", b"42", "a JSON int"),
    ],
    ids=["truncated-json", "form-text", "binary", "list", "string", "number"],
)
def test_on_upload_malformed_payload_is_acknowledged_and_logged(
    gcs: GcsBuckets,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content_type: str | None,
    body: bytes,
    found: str,
) -> None:
    launcher = install_launcher(monkeypatch)
    headers = binary_event_headers(gcs.landing.name, content_type)

    response = upload_client().post("/", headers=headers, data=body)

    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [logged] = [line for line in lines if line.get("outcome") == "ignored"]
    assert logged["severity"] == "ERROR" and "Traceback" not in logged["message"]
    assert logged["reason"].startswith(f"expected a JSON object payload, found {found}")
    assert launcher.attempts == 0 and claim_names(gcs) == []
