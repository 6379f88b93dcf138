"""The dashboard in a real headless browser (Debian's chromium): it renders, it logs no console
error, it asks for nothing outside the local server, and its charts hold the cooked numbers.

The page is served by ``main.dashboard`` (functions-framework's app on a real local server
thread) over cooked tables built from tests/sluice/cook/cook_data.py. Chromium is driven over
the DevTools protocol (a few JSON messages on a websocket) and, separately, with its own
``--screenshot``. Skipped, saying why, where chromium is not installed. Set
DASHBOARD_SCREENSHOT=<path> to keep a copy of the screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.contracts import Contract
from sluice.cook.summaries import cook
from sluice.settings import REPO_ROOT, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import missing_tool
from tests.sluice.cook import cook_data

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",  # tests may run as root (CI containers), where the sandbox refuses
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2400",
]


@pytest.fixture
def served(
    tmp_path: Path, contracts: dict[str, Contract], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, DuckDBWarehouse]]:
    """The dashboard function over cooked tables, on a local port; (its URL, the warehouse)."""
    if CHROMIUM is None:
        missing_tool("chromium is not installed (Debian: apt-get install -y chromium)")
    import functions_framework
    from werkzeug.serving import make_server

    home = tmp_path / "home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    settings = load_settings()
    warehouse = DuckDBWarehouse(settings)
    cook_data.load(warehouse, contracts, cook_data.build(), home / "staged")
    cook(warehouse, settings)
    app = functions_framework.create_app(target="dashboard", source=str(REPO_ROOT / "main.py"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", warehouse
    server.shutdown()
    thread.join(5)


def chromium(tmp_path: Path, *args: str) -> list[str]:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    return [str(CHROMIUM), *BROWSER_FLAGS, f"--user-data-dir={profile}", *args]


def test_dashboard_browser_screenshot_is_a_real_picture(served, tmp_path: Path) -> None:
    url, _ = served
    shot = tmp_path / "dashboard.png"

    done = subprocess.run(
        chromium(tmp_path, f"--screenshot={shot}", url), capture_output=True, timeout=120
    )

    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    picture = shot.read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(picture[16:20], "big") == 1400  # width from the IHDR chunk
    assert len(picture) > 50_000  # charts and text, not a blank page
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["DASHBOARD_SCREENSHOT"])


def test_dashboard_browser_no_console_error_no_outside_request_cooked_numbers(
    served, tmp_path: Path
) -> None:
    url, warehouse = served
    port = _free_port()
    browser = subprocess.Popen(
        chromium(tmp_path, f"--remote-debugging-port={port}", "about:blank"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with DevTools(_page_socket(port)) as devtools:
            for domain in ("Runtime", "Log", "Network", "Page"):
                devtools.call(f"{domain}.enable")
            devtools.call("Page.navigate", url=url)
            devtools.wait_for("Page.loadEventFired")
            time.sleep(0.5)  # late requests (an icon) would still show up
            rendered = devtools.evaluate(
                "JSON.stringify({hours: [...document.querySelectorAll('rect[data-hour]')]"
                ".map(r => [r.dataset.hour, +r.dataset.requests, r.getBBox().height]),"
                " peak: document.querySelector('rect[data-peak]').dataset.hour})"
            )
            events = devtools.events
    finally:
        browser.terminate()
        browser.wait(10)

    requests = [
        e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"
    ]
    errors = [
        e["params"]
        for e in events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []
    assert requests and all(r.startswith(url) or r.startswith("data:") for r in requests)
    hours = warehouse.query("SELECT hour, requests FROM {cooked_dataset}.server_requests_per_hour")
    drawn = json.loads(rendered)
    assert {h: n for h, n, _ in drawn["hours"]} == {
        r["hour"].isoformat(): r["requests"] for r in hours
    }
    assert all(height > 0 for _, _, height in drawn["hours"])  # the browser drew every bar
    busiest = max(hours, key=lambda r: (r["requests"], -r["hour"].timestamp()))
    assert drawn["peak"] == busiest["hour"].isoformat()


class DevTools:
    """A minimal Chrome DevTools protocol client for one page: calls and collected events."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.socket = connect(ws_url, max_size=None, open_timeout=30)
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.socket.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command, collecting events until its answer; its result."""
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self._next_id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        """Collect events until ``method`` arrives."""
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"expected {method} within {timeout} s, found none"
            self.events.append(json.loads(self.socket.recv(timeout=remaining)))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]


def _page_socket(port: int, timeout: float = 30.0) -> str:
    """The DevTools websocket of the browser's first page, once the browser answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        assert time.monotonic() < deadline, f"expected chromium's DevTools on port {port}"
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
