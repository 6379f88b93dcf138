"""Cloud Function entry points, as functions-framework finds them (``--target NAME``).

Each handler lives in ``functions/`` and is thin: it reads its event or request and calls a
service in ``sluice/``. Nothing heavy is imported at module level (cold start), and never
apache_beam: each handler imports its service on first call. Logs are JSON lines
(``sluice.logs``).
"""

from __future__ import annotations

from functions.cook import cook
from functions.dashboard import dashboard
from functions.flush import flush
from functions.on_upload import on_upload

__all__ = ["cook", "dashboard", "flush", "on_upload"]
