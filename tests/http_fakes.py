"""The handler every fake HTTP API in the tests is built on (Dataflow, the token endpoint)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """Answers in JSON and keeps the access log off stderr: tests assert on what is recorded."""

    def read_body(self) -> bytes:
        """The request's body (empty without a Content-Length)."""
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_json(self, status: int, payload: Any) -> None:
        """One JSON answer with its status."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""
