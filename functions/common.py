"""What every HTTP handler shares: its log format and its JSON answers."""

from __future__ import annotations

from typing import Any

import flask


def json_response(answer: dict[str, Any], status: int) -> flask.Response:
    """``answer`` as a JSON body in the one shared encoding (flask's own writes ``NaN``)."""
    from sluice.finite_json import finite_json

    return flask.Response(finite_json(answer), status=status, mimetype="application/json")


def configure_logging() -> None:
    """JSON log lines Cloud Logging reads (``sluice.logs``), configured once per process."""
    from sluice.logs import configure_logging as configure

    configure()
