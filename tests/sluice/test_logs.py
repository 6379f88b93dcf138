"""sluice.logs: JSON lines Cloud Logging understands, labels per event."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from sluice.logs import LABELS_FIELD, configure_logging, event_labels, log_event

LOG = logging.getLogger("functions.test_logs")


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_log_event_writes_one_json_line_with_severity_labels_and_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()

    with event_labels(event_key="landing/a.csv#1", dataset="kiva_loans"):
        log_event(LOG, logging.WARNING, "rejected a.csv", outcome="rejected", rows=3)

    [entry] = lines(capsys)
    assert entry["severity"] == "WARNING" and entry["message"] == "rejected a.csv"
    assert entry[LABELS_FIELD] == {"event_key": "landing/a.csv#1", "dataset": "kiva_loans"}
    assert (entry["outcome"], entry["rows"]) == ("rejected", 3)
    assert str(entry["time"]).endswith("+00:00")
    assert entry["logging.googleapis.com/sourceLocation"]["function"] == (  # type: ignore[index]
        "test_log_event_writes_one_json_line_with_severity_labels_and_fields"
    )


def test_event_labels_end_with_their_block_and_stay_on_their_thread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    configure_logging()  # idempotent: still one line per record

    with event_labels(event_key="k1"):
        other = threading.Thread(target=lambda: LOG.info("from another thread"))
        other.start()
        other.join()
        LOG.info("inside")
    LOG.info("after")

    entries = {e["message"]: e for e in lines(capsys)}
    assert len(entries) == 3
    assert entries["inside"][LABELS_FIELD] == {"event_key": "k1"}
    assert LABELS_FIELD not in entries["from another thread"]
    assert LABELS_FIELD not in entries["after"]


def test_exceptions_carry_their_trace_in_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()

    try:
        raise ValueError("bad thing")
    except ValueError:
        LOG.exception("failed")

    [entry] = lines(capsys)
    assert entry["severity"] == "ERROR"
    assert str(entry["message"]).startswith("failed\nTraceback")
    assert "ValueError: bad thing" in str(entry["message"])
