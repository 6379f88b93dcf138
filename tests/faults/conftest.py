"""Fixtures for the fault-injection tests: a stateful Dataflow launch API and its settings.

``FakeDataflow`` answers ``projects.locations.flexTemplates.launch`` and ``jobs.get`` /
``jobs.list`` as Dataflow does seen from outside: one active job per job name (a second launch
of that name answers 409 ALREADY_EXISTS), at most ``quota`` active jobs (the next launch gets
Dataflow's jobs-per-project quota error), job states moving queued -> running -> done over
scaled-down time or on ``finish``, a launch latency, scripted error answers first, and
optionally a launch whose answer never comes (the caller is killed mid-call).
``dataflow_env`` points the real ``DataflowLauncher`` at it, with user credentials whose
token is already valid, so the launcher's own credential and HTTP path runs without reaching
Google.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.http_fakes import JsonHandler

LAUNCH_PATH = re.compile(r"/v1b3/projects/([^/]+)/locations/[^/]+/flexTemplates:launch")
JOBS_PATH = re.compile(r"/v1b3/projects/[^/]+/locations/[^/]+/jobs(?:/([^/]+))?")
TOKEN = "fault-test-token"
TERMINAL = frozenset(
    {"JOB_STATE_DONE", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_DRAINED"}
)
QUOTA_MESSAGE = (
    "(6f1d2c0a9b8e7d65): The workflow could not be created. Causes: (3a4b5c6d7e8f9a0b):"
    " Dataflow quota error for jobs-per-project quota. Project {project} is running {running}"
    " jobs. Please check the quota usage via GCP Console. If it exceeds the limit, please wait"
    " for a workflow to finish or contact Google Cloud Support to request an increase in quota."
    " If it does not, contact Google Cloud Support."
)
"""Dataflow's answer when a project runs its quota of concurrent jobs: this message, as Beam's
own test runs quote it (apache/beam#34381). No public record found shows its HTTP status; the
fake answers 429 RESOURCE_EXHAUSTED, what Google's APIs give for a spent quota, and the
launcher tells the error by its message, so another status would change nothing."""
LIST_PAGE_SIZE = 10
"""Jobs per ``jobs.list`` page: small, so that a listing of the quota's jobs has pages."""


@dataclass(frozen=True)
class Launch:
    """One launch request the fake received."""

    job_name: str
    body: dict[str, Any]
    authorization: str | None


@dataclass
class FakeJob:
    """One job Dataflow created: queued, then running, then done (or as a test says)."""

    id: str
    name: str
    project: str
    created: float
    state: str = "JOB_STATE_QUEUED"

    def resource(self) -> dict[str, Any]:
        """The ``Job`` resource as ``jobs.get`` and ``jobs.list`` answer it."""
        return {
            "id": self.id,
            "name": self.name,
            "projectId": self.project,
            "type": "JOB_TYPE_BATCH",
            "currentState": self.state,
        }


@dataclass
class FakeDataflow:
    """Dataflow's launch and jobs API: jobs by name with states over time, the project's
    concurrent-job quota, a launch latency, scripted failures, an optional hung answer.

    Times are scaled down: a launch answers after ``launch_latency`` seconds (Dataflow takes
    seconds), a job queues for ``queued_seconds`` and then runs until ``run_seconds`` pass
    (None: until ``finish``)."""

    launches: list[Launch] = field(default_factory=list)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    """Every job created, by job id, in creation order."""
    quota: int = 25
    """Concurrent (not terminal) jobs the project may run: Dataflow's default."""
    launch_latency: float = 0.005
    queued_seconds: float = 0.02
    run_seconds: float | None = None
    script: list[tuple[int, str]] = field(default_factory=list)
    """(HTTP status, Google error status) answered before any job is created, in order."""
    hang: bool = False
    """Hold the next launch's answer (after creating its job, if it creates one) until
    ``release``: the caller dies first."""
    quota_refusals: int = 0
    peak_active: int = 0
    """The most jobs active at once."""
    received: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    endpoint: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: dict[str, Any], authorization: str | None) -> tuple[int, Any]:
        """Status and JSON body for one launch."""
        route = LAUNCH_PATH.fullmatch(path.split("?")[0])
        if route is None:
            return _error(404, "NOT_FOUND", f"no route {path}")
        name = body["launchParameter"]["jobName"]
        time.sleep(self.launch_latency)
        with self.lock:
            self.launches.append(Launch(name, body, authorization))
            hang, self.hang = self.hang, False
            status, payload = self._launch(name, route.group(1))
        if hang:
            self.received.set()
            self.release.wait(60)
        return status, payload

    def _launch(self, name: str, project: str) -> tuple[int, Any]:
        if self.script:
            status, code = self.script.pop(0)
            return _error(status, code, "scripted")
        active = self._active()
        if name in {job.name for job in active}:
            return _error(409, "ALREADY_EXISTS", f"job {name} already exists")
        if len(active) >= self.quota:
            self.quota_refusals += 1
            message = QUOTA_MESSAGE.format(project=project, running=len(active))
            return _error(429, "RESOURCE_EXHAUSTED", message)
        job = FakeJob(f"fake-job-{len(self.jobs) + 1}", name, project, time.monotonic())
        self.jobs[job.id] = job
        self.peak_active = max(self.peak_active, len(active) + 1)
        return 200, {"job": job.resource()}

    def query(self, path: str) -> tuple[int, Any]:
        """Status and JSON body for ``jobs.get`` and ``jobs.list``."""
        url = urlsplit(path)
        route = JOBS_PATH.fullmatch(url.path)
        if route is None:
            return _error(404, "NOT_FOUND", f"no route {path}")
        with self.lock:
            self._advance()
            if route.group(1) is not None:
                job = self.jobs.get(route.group(1))
                if job is None:
                    return _error(404, "NOT_FOUND", f"no job {route.group(1)}")
                return 200, job.resource()
            query = parse_qs(url.query)
            wanted = query.get("filter", ["ALL"])[0]
            listed = [
                job
                for job in self.jobs.values()
                if (wanted != "ACTIVE" or job.state not in TERMINAL)
                and (wanted != "TERMINATED" or job.state in TERMINAL)
                and job.name == query.get("name", [job.name])[0]
            ]
        start = int(query.get("pageToken", ["0"])[0])
        page: dict[str, Any] = {
            "jobs": [job.resource() for job in listed[start : start + LIST_PAGE_SIZE]]
        }
        if start + LIST_PAGE_SIZE < len(listed):
            page["nextPageToken"] = str(start + LIST_PAGE_SIZE)
        return 200, page

    def run_elsewhere(self, name: str) -> str:
        """Create a job of ``name`` as another launcher did (not in ``launches``); its id."""
        with self.lock:
            job = FakeJob(f"elsewhere-{len(self.jobs) + 1}", name, "proj-1", time.monotonic())
            self.jobs[job.id] = job
        return job.id

    def finish(self, count: int, state: str = "JOB_STATE_DONE") -> list[str]:
        """End the ``count`` oldest active jobs in ``state``; their names."""
        with self.lock:
            ended = self._active()[:count]
            for job in ended:
                job.state = state
        return [job.name for job in ended]

    def states(self) -> list[str]:
        """Every job's state now, in creation order."""
        with self.lock:
            self._advance()
            return [job.state for job in self.jobs.values()]

    def active_names(self) -> dict[str, str]:
        """Active job name -> job id."""
        with self.lock:
            return {job.name: job.id for job in self._active()}

    def created_names(self) -> list[str]:
        """The name of every job created, in order (a name twice: launched twice)."""
        with self.lock:
            return [job.name for job in self.jobs.values()]

    def _active(self) -> list[FakeJob]:
        self._advance()
        return [job for job in self.jobs.values() if job.state not in TERMINAL]

    def _advance(self) -> None:
        """Move jobs on as (scaled) time passes: queued -> running -> done."""
        now = time.monotonic()
        for job in self.jobs.values():
            if job.state == "JOB_STATE_QUEUED" and now - job.created >= self.queued_seconds:
                job.state = "JOB_STATE_RUNNING"
            if (
                job.state == "JOB_STATE_RUNNING"
                and self.run_seconds is not None
                and now - job.created >= self.queued_seconds + self.run_seconds
            ):
                job.state = "JOB_STATE_DONE"


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error": {"code": status, "message": message, "status": code}}


def serve(fake: FakeDataflow) -> ThreadingHTTPServer:
    """Serve ``fake`` on a free loopback port from a daemon thread."""

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = json.loads(self.read_body())
            status, payload = fake.answer(self.path, body, self.headers["Authorization"])
            with contextlib.suppress(OSError):  # the caller was killed while its answer was held
                self.send_json(status, payload)

        def do_GET(self) -> None:
            status, payload = fake.query(self.path)
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
