"""Credentials never reach a log line.

``main.on_upload`` runs in functions-framework's real app (JSON logs on stdout) with the
Dataflow launcher. google-auth reads a service-account key from
``GOOGLE_APPLICATION_CREDENTIALS``, trades a signed assertion for an access token at a
local token endpoint, and the launcher sends that token to a local Dataflow fake, which
answers 503 once (a logged, retried failure) and then launches. The key, the assertion, the
token and a credential-like environment variable must appear in no log record (every level,
every logger) and nowhere on stdout or stderr. When the token endpoint refuses the key, the
event fails with a logged traceback, which must not hold them either. ``sluice.logs``
writes only the record and the fields a caller passes, never the environment or settings.
"""

from __future__ import annotations

import ast
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sluice.gcs import storage_client
from sluice.ingest.claims import event_key, read_claim
from sluice.logs import configure_logging, event_labels, log_event
from sluice.settings import REPO_ROOT, load_settings
from tests.http_fakes import JsonHandler

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

TOKEN = "ya29.c.secret-access-token-" + uuid.uuid4().hex
ENV_SECRET = "env-secret-" + uuid.uuid4().hex
NAME = "incoming/kiva_lenders/lenders.csv"
GOOD = b'loan_id,lenders\n483693,"muc888, sam4326"\n483694,solo\n'


@dataclass
class GoogleFake:
    """A token endpoint and a Dataflow endpoint on one loopback port, recording calls."""

    url: str = ""
    refuse_key: bool = False
    assertions: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


class _Handler(JsonHandler):
    """Serves GoogleFake's endpoints: the token, Dataflow's launch and its job list."""

    def do_POST(self) -> None:
        body = self.read_body().decode()
        if self.path == "/token":
            self.server_fake.assertions.append(body.split("assertion=")[-1])
            if self.server_fake.refuse_key:
                self.send_json(400, {"error": "invalid_grant", "error_description": "bad key"})
            else:
                self.send_json(200, {"access_token": TOKEN, "expires_in": 3600})
            return
        self.server_fake.authorizations.append(self.headers.get("Authorization", ""))
        if len(self.server_fake.authorizations) == 1:
            self.send_json(
                503, {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
            )
        else:
            self.send_json(
                200,
                {"job": {"id": "job-1", "name": json.loads(body)["launchParameter"]["jobName"]}},
            )

    def do_GET(self) -> None:
        """Dataflow's job list, asked before each launch for the job budget: none active."""
        self.send_json(200, {"jobs": []})

    @property
    def server_fake(self) -> GoogleFake:
        return self.server.fake  # type: ignore[attr-defined]


@pytest.fixture
def google(
    gcs: GcsBuckets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[GoogleFake, str]]:
    """The fake endpoints, a service-account key pointing at them and the Dataflow settings;
    yields the fake and the key's PEM text."""
    fake = GoogleFake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.fake = fake  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "proj-1",
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": "upload@proj-1.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{fake.url}/token",
    }
    credentials = tmp_path / "key.json"
    credentials.write_text(json.dumps(account))
    environment = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        "DATABASE_PASSWORD": ENV_SECRET,
        "SLUICE_LAUNCHER": "dataflow",
        "SLUICE_WAREHOUSE": "bigquery",
        "SLUICE_BQ_PROJECT": "proj-1",
        "SLUICE_GCP_PROJECT": "proj-1",
        "SLUICE_DATAFLOW_REGION": "europe-west1",
        "SLUICE_DATAFLOW_TEMPLATE": "gs://sluice-pipeline/templates/pipeline.json",
        "SLUICE_DATAFLOW_ENDPOINT": f"{fake.url}/",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    yield fake, pem
    server.shutdown()
    server.server_close()


def deliver(gcs: GcsBuckets) -> tuple[int, str]:
    """Land GOOD and POST its finalize CloudEvent to main.on_upload; status and event key."""
    import functions_framework

    blob = gcs.landing.blob(NAME)
    blob.upload_from_string(GOOD, content_type="text/csv")
    attributes = {
        "type": "google.cloud.storage.object.v1.finalized",
        "id": uuid.uuid4().hex,
        "source": f"//storage.googleapis.com/projects/_/buckets/{gcs.landing.name}",
        "subject": f"objects/{NAME}",
        "time": datetime.now(UTC).isoformat(),
    }
    data = {"bucket": gcs.landing.name, "name": NAME, "generation": str(blob.generation)}
    headers, body = to_binary(CloudEvent(attributes, data))
    app = functions_framework.create_app(
        target="on_upload", source=str(REPO_ROOT / "main.py"), signature_type="cloudevent"
    )
    status = app.test_client().post("/", headers=dict(headers), data=body).status_code
    return status, event_key(gcs.landing.name, NAME, blob.generation)


def leaked(secrets: list[str], caplog: pytest.LogCaptureFixture, captured: Any) -> list[str]:
    """The secrets found in any captured log record or on stdout/stderr."""
    plain = logging.Formatter()
    texts = [plain.format(record) + repr(vars(record)) for record in caplog.records]
    texts += [captured.out, captured.err]
    return [secret for secret in secrets if any(secret in text for text in texts)]


def key_parts(pem: str) -> list[str]:
    """The key whole and each line of its body (a log could hold any of them)."""
    return [pem, *(line for line in pem.splitlines() if len(line) > 40)]


def test_on_upload_launch_on_dataflow_logs_no_credential(
    google: tuple[GoogleFake, str],
    gcs: GcsBuckets,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, pem = google
    caplog.set_level(logging.DEBUG)

    status, key = deliver(gcs)

    assert status == 200
    assert read_claim(storage_client(load_settings()), load_settings(), key).state == "launched"
    assert fake.authorizations == [f"Bearer {TOKEN}"] * 2  # the token was really used
    assert any("attempt 1 of 5" in record.getMessage() for record in caplog.records)
    secrets = [TOKEN, ENV_SECRET, *fake.assertions, *key_parts(pem)]
    assert leaked(secrets, caplog, capsys.readouterr()) == []


def test_on_upload_refused_credential_fails_without_logging_it(
    google: tuple[GoogleFake, str],
    gcs: GcsBuckets,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, pem = google
    fake.refuse_key = True
    caplog.set_level(logging.DEBUG)

    status, _ = deliver(gcs)

    assert status == 200  # queued: the scheduled flush launches it once the key is fixed
    assert fake.assertions and fake.authorizations == []
    assert any(record.exc_info for record in caplog.records)  # a traceback was logged
    secrets = [ENV_SECRET, *fake.assertions, *key_parts(pem)]
    assert leaked(secrets, caplog, capsys.readouterr()) == []


def test_json_log_lines_hold_only_the_record_and_its_fields(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_PASSWORD", ENV_SECRET)
    configure_logging()
    log = logging.getLogger("functions.security_test")

    with event_labels(event_key="landing/a.csv#1", dataset="kiva_loans"):
        log_event(log, logging.WARNING, "rejected a.csv", outcome="rejected")
        try:
            raise ValueError("bad thing")
        except ValueError:
            log.exception("failed")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    standard = {"severity", "message", "time", "logger", "logging.googleapis.com/sourceLocation"}
    assert set(lines[0]) == standard | {"outcome", "logging.googleapis.com/labels"}
    assert set(lines[1]) == standard | {"logging.googleapis.com/labels"}
    assert ENV_SECRET not in json.dumps(lines)


def test_logging_code_reads_no_environment_and_logs_no_settings_or_credentials() -> None:
    logs = ast.parse((REPO_ROOT / "sluice" / "logs.py").read_text(encoding="utf-8"))
    logs_names = {ast.unparse(n) for n in ast.walk(logs) if isinstance(n, ast.Name | ast.Attribute)}
    calls = []
    for path in [
        REPO_ROOT / "main.py",
        *(REPO_ROOT / "functions").glob("*.py"),
        *(REPO_ROOT / "sluice").rglob("*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in (
                "debug",
                "info",
                "warning",
                "error",
                "exception",
                "critical",
                "log",
                "log_event",
            ):
                calls += [
                    ast.unparse(arg) for arg in [*node.args, *(k.value for k in node.keywords)]
                ]

    assert (
        not {"os.environ", "environ", "os.getenv", "getenv", "Settings", "load_settings"}
        & logs_names
    )
    assert len(calls) > 50  # the scan sees the code's log calls
    suspicious = ("environ", "getenv", "settings", "credential", "token", "secret", "password")
    assert [arg for arg in calls if any(word in arg.lower() for word in suspicious)] == []
