"""``dashboard``: the HTTP handler that serves the cooked tables as one HTML page.

The page is rendered by ``sluice.dashboard.page``; this module only sets the response.
"""

from __future__ import annotations

import logging

import flask
import functions_framework

from functions.common import configure_logging

log = logging.getLogger(__name__)


@functions_framework.http
def dashboard(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    """HTTP: the cooked tables as one self-contained HTML page (no script, no outside URL)."""
    configure_logging()
    from sluice.dashboard.page import render_dashboard
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
