"""Fixtures for the fault-injection tests: a stateful Dataflow launch API and its settings.

``FakeDataflow`` answers ``projects.locations.flexTemplates.launch`` as Dataflow does seen
from outside: one active job per job name (a second launch of that name answers 409
ALREADY_EXISTS), scripted error answers first, and optionally a launch that creates its job
and then never answers (the caller is killed mid-call). ``dataflow_env`` points the real
``DataflowLauncher`` at it, with user credentials whose token is already valid, so the
launcher's own credential and HTTP path runs without reaching Google.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.http_fakes import JsonHandler

LAUNCH_PATH = re.compile(r"/v1b3/projects/[^/]+/locations/[^/]+/flexTemplates:launch")
TOKEN = "fault-test-token"


@dataclass(frozen=True)
class Launch:
    """One launch request the fake received."""

    job_name: str
    body: dict[str, Any]
    authorization: str | None


@dataclass
class FakeDataflow:
    """Dataflow's launch API: jobs by name, scripted failures, an optional hung answer."""

    launches: list[Launch] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)
    """Active job name -> job id."""
    script: list[tuple[int, str]] = field(default_factory=list)
    """(HTTP status, Google error status) answered before any job is created, in order."""
    hang: bool = False
    """Create the next job, then hold the answer until ``release`` (the caller dies first)."""
    received: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    endpoint: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: dict[str, Any], authorization: str | None) -> tuple[int, Any]:
        """Status and JSON body for one request."""
        if not LAUNCH_PATH.fullmatch(path.split("?")[0]):
            return 404, {"error": {"code": 404, "message": f"no route {path}"}}
        name = body["launchParameter"]["jobName"]
        with self.lock:
            self.launches.append(Launch(name, body, authorization))
            if self.script:
                status, code = self.script.pop(0)
                return status, {"error": {"code": status, "message": "scripted", "status": code}}
            if name in self.jobs:
                message = f"job {name} already exists"
                return 409, {"error": {"code": 409, "message": message, "status": "ALREADY_EXISTS"}}
            job_id = f"fake-job-{len(self.jobs) + 1}"
            self.jobs[name] = job_id
            hang, self.hang = self.hang, False
        if hang:
            self.received.set()
            self.release.wait(60)
        return 200, {"job": {"id": job_id, "name": name}}


def serve(fake: FakeDataflow) -> ThreadingHTTPServer:
    """Serve ``fake`` on a free loopback port from a daemon thread."""

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = json.loads(self.read_body())
            status, payload = fake.answer(self.path, body, self.headers["Authorization"])
            with contextlib.suppress(OSError):  # the caller was killed while its answer was held
                self.send_json(status, payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.endpoint = f"http://127.0.0.1:{server.server_port}/"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def fake_dataflow() -> Iterator[FakeDataflow]:
    """A FakeDataflow on a loopback port for one test."""
    fake = FakeDataflow()
    server = serve(fake)
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def dataflow_env(
    fake_dataflow: FakeDataflow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> FakeDataflow:
    """SLUICE_* settings launching on ``fake_dataflow``, with credentials needing no refresh."""
    credentials = tmp_path / "credentials.json"
    credentials.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "fault-tests",
                "client_secret": "unused",
                "refresh_token": "unused",
                "token": TOKEN,
                "expiry": "2099-01-01T00:00:00Z",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    for name, value in {
        "LAUNCHER": "dataflow",
        "WAREHOUSE": "bigquery",  # Dataflow workers cannot reach a laptop's DuckDB file
        "BQ_PROJECT": "warehouse-proj",
        "GCP_PROJECT": "proj-1",
        "DATAFLOW_REGION": "europe-west1",
        "DATAFLOW_TEMPLATE": "gs://sluice-pipeline/templates/pipeline.json",
        "DATAFLOW_ENDPOINT": fake_dataflow.endpoint,
    }.items():
        monkeypatch.setenv(f"SLUICE_{name}", value)
    return fake_dataflow
