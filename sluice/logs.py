"""Structured logs: one JSON object per line, in the shape Cloud Logging reads from stdout.

Cloud Run and Cloud Functions parse each JSON line on stdout into a log entry: ``severity``
and ``message`` become the entry's severity and text, ``time`` its timestamp,
``logging.googleapis.com/labels`` its labels (indexed, filterable: the event key, the
dataset), ``logging.googleapis.com/sourceLocation`` its source, and every other field its
``jsonPayload``. Locally the same lines land in the functions' log files.

Labels are set per event with ``event_labels(...)`` (a context variable, so concurrent
requests on threads never mix them up). Only what callers pass is logged: never settings,
credentials or file contents.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

LABELS_FIELD = "logging.googleapis.com/labels"
SOURCE_FIELD = "logging.googleapis.com/sourceLocation"
LOGGERS = ("main", "functions", "sluice", "local")
"""Top-level loggers of our code, logged from INFO up (``local``: the laptop launcher, when the
local stack's functions launch pipelines)."""

_labels: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_labels", default=None
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one Cloud Logging JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line: severity, message, time, labels, source, fields."""
        message = record.getMessage()
        if record.exc_info:
            # Error Reporting groups errors by the stack trace inside the message.
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        entry: dict[str, Any] = dict(getattr(record, "fields", {}))
        entry.update(
            {
                "severity": record.levelname,
                "message": message,
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "logger": record.name,
                SOURCE_FIELD: {
                    "file": record.pathname,
                    "line": str(record.lineno),
                    "function": record.funcName,
                },
            }
        )
        labels = (_labels.get() or {}) | getattr(record, "labels", {})
        if labels:
            entry[LABELS_FIELD] = {k: str(v) for k, v in labels.items()}
        return json.dumps(entry, default=str, ensure_ascii=False)


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes to whatever ``sys.stdout`` is at the time of each record."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        """The current ``sys.stdout`` (replaced by test capture or a log redirect)."""
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignored: the handler always follows ``sys.stdout``."""


def configure_logging(level: int = logging.INFO) -> None:
    """Write every record as a JSON line on stdout; our loggers at ``level`` (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(h, StdoutHandler) for h in root.handlers):
        handler = StdoutHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    # Only our loggers get louder; libraries keep the root's level (WARNING by default).
    for name in LOGGERS:
        logging.getLogger(name).setLevel(level)


@contextmanager
def event_labels(**labels: object) -> Iterator[None]:
    """Label every log line inside the block (e.g. ``event_key=..., dataset=...``)."""
    token = _labels.set(
        (_labels.get() or {}) | {k: str(v) for k, v in labels.items() if v is not None}
    )
    try:
        yield
    finally:
        _labels.reset(token)


def log_event(logger: logging.Logger, level: int, message: str, **fields: object) -> None:
    """Log ``message`` with ``fields`` as structured payload (e.g. ``outcome``, ``reason``)."""
    logger.log(level, message, extra={"fields": fields}, stacklevel=2)
