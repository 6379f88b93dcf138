"""Cloud Function entry points: thin wrappers that hand off to ``functions/``.

Nothing heavy is imported here at module level (cold start), and never apache_beam.
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
    """HTTP (Cloud Scheduler): rebuild every cooked table; JSON ``{"tables": [...]}``."""
    from functions.cook import cook as cook_summaries
    from sluice.errors import SluiceError, TransientError
    from sluice.settings import load_settings
    from sluice.warehouse import open_warehouse

    try:
        settings = load_settings()
        warehouse = open_warehouse(settings)
        try:
            tables = cook_summaries(warehouse, settings)
        finally:
            warehouse.close()
    except SluiceError as exc:
        # Any non-2xx makes Cloud Scheduler retry per its policy; 503 marks the retryable
        # faults, 500 the ones (bad SQL file, bad setting) a person has to fix.
        log.error("cook failed: %s", exc, exc_info=True)
        return {"error": "\n".join([str(exc), *getattr(exc, "__notes__", [])])}, (
            503 if isinstance(exc, TransientError) else 500
        )
    return {"tables": [asdict(table) for table in tables]}, 200
