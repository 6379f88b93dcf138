"""The Cloud Function entry points in main.py, driven through functions-framework's real app.

on_upload gets binary-mode CloudEvents, as Eventarc sends them, against a real fake-gcs-server
(tests/gcs_fixtures.py); the launcher is a recording double (tests/sluice/ingest/upload_doubles.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient
from google.cloud.storage import Blob

from sluice.contracts import Contract
from sluice.cook import summaries
from sluice.cook.alerts import Alert
from sluice.cook.summaries import CookedTable, CookReport
from sluice.gcs import storage_client
from sluice.ingest.batches import flush_batches
from sluice.ingest.claims import claim_event, event_key, read_claim
from sluice.ingest.quarantine import REASON_SUFFIX, quarantine_name
from sluice.settings import REPO_ROOT, Settings, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.cook import cook_data
from tests.sluice.ingest.upload_doubles import (
    BAD,
    GOOD,
    PREFIX,
    claim_names,
    ingestion_rows,
    install_launcher,
    land,
)

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]
FINALIZED = "google.cloud.storage.object.v1.finalized"


def http_client(target: str) -> FlaskClient:
    import functions_framework

    app = functions_framework.create_app(target=target, source=str(REPO_ROOT / "main.py"))
    return app.test_client()


def upload_client() -> FlaskClient:
    import functions_framework

    app = functions_framework.create_app(
        target="on_upload", source=str(REPO_ROOT / "main.py"), signature_type="cloudevent"
    )
    return app.test_client()


def storage_event(
    bucket: str, name: str, generation: int | None, *, kind: str = FINALIZED, age: float = 0
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode storage CloudEvent, shaped like Eventarc's."""
    attributes = {
        "type": kind,
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "subject": f"objects/{name}",
        "id": str(uuid.uuid4()),
        "time": (datetime.now(UTC) - timedelta(seconds=age)).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
    }
    data = {"bucket": bucket, "name": name, "generation": str(generation), "metageneration": "1"}
    headers, body = to_binary(CloudEvent(attributes, data))
    return dict(headers), body


def deliver(client: FlaskClient, blob: Blob, **kwargs: object) -> int:
    """POST the finalize event of ``blob``; the HTTP status."""
    headers, body = storage_event(blob.bucket.name, blob.name, blob.generation, **kwargs)  # type: ignore[arg-type]
    return client.post("/", headers=headers, data=body).status_code


def test_main_import_does_not_load_beam() -> None:
    code = "import sys, main; sys.exit('apache_beam' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_cook_http_reports_every_table_with_its_rows(
    gcs: GcsBuckets, settings: Settings, contracts: dict[str, Contract], tmp_path: Path
) -> None:
    data = cook_data.build()
    cook_data.load(DuckDBWarehouse(settings), contracts, data, tmp_path / "staged")

    response = http_client("cook").post("/")

    assert response.status_code == 200
    tables = {t["table"]: t for t in response.get_json()["tables"]}
    assert len(tables) == len(list((REPO_ROOT / "sql").glob("*.sql")))
    countries = {r["country_code"] for r in data.rows("kiva_loans")}
    assert tables["kiva_loans_by_country"]["rows"] == len(countries)
    assert all(isinstance(t["seconds"], float) for t in tables.values())


def test_cook_http_with_empty_warehouse_builds_empty_tables(gcs: GcsBuckets) -> None:
    response = http_client("cook").get("/")

    assert response.status_code == 200
    assert {t["rows"] for t in response.get_json()["tables"]} == {0}
    assert set(response.get_json()["sweep"].values()) == {0}  # no claim to sweep


def test_cook_http_cooks_even_when_reconciliation_fails_and_asks_for_a_retry(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_LANDING_BUCKET", "no-such-landing-bucket")

    response = http_client("cook").post("/")

    answer = response.get_json()
    assert response.status_code == 503
    assert len(answer["tables"]) == len(list((REPO_ROOT / "sql").glob("*.sql")))
    assert "no-such-landing-bucket" in answer["reconcile"]["error"]
    assert answer["error"] == answer["reconcile"]["error"]


def test_cook_http_alerts_on_a_queued_file_whose_batch_waits_too_long(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_launcher(monkeypatch)
    monkeypatch.setenv("SLUICE_BATCH_MAX_FILES", "10")
    monkeypatch.setenv("SLUICE_BATCH_MAX_AGE_SECONDS", "3600")  # never due during the test
    monkeypatch.setenv("SLUICE_UNPROCESSED_ALERT_SECONDS", "0")
    delivered = deliver(upload_client(), land(gcs, GOOD))

    answer = http_client("cook").post("/").get_json()

    unprocessed = [a["dataset"] for a in answer["alerts"] if a["alert"] == "unprocessed_files"]
    assert delivered == 200
    assert (answer["batches"]["queued"], answer["batches"]["batches"]) == (1, 0)
    assert unprocessed == ["kiva_lenders"]


def test_cook_http_reports_open_alerts_of_never_loaded_datasets(
    gcs: GcsBuckets, contracts: dict[str, Contract]
) -> None:
    response = http_client("cook").post("/")

    alerts = response.get_json()["alerts"]
    assert response.status_code == 200
    assert {a["dataset"] for a in alerts} == set(contracts)
    assert {a["alert"] for a in alerts} == {"missing_data"}
    assert all(a["opened_at"].endswith("+00:00") for a in alerts)


def test_cook_http_bad_summary_file_is_500_with_reason(
    gcs: GcsBuckets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "10_broken.sql").write_text(
        "CREATE OR REPLACE TABLE {cooked_dataset}.other AS SELECT 1"
    )
    monkeypatch.setenv("SLUICE_SQL_DIR", str(tmp_path))

    response = http_client("cook").post("/")

    assert response.status_code == 500
    assert "10_broken.sql" in response.get_json()["error"]


def strict_json(text: str) -> Any:
    """Parse as a strict reader would: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_cook_http_of_extreme_rows_builds_every_table_in_strict_json(
    gcs: GcsBuckets, settings: Settings, contracts: dict[str, Contract], tmp_path: Path
) -> None:
    data = cook_data.build_extremes()
    cook_data.load(DuckDBWarehouse(settings), contracts, data, tmp_path / "staged")

    response = http_client("cook").post("/")

    answer = strict_json(response.get_data(as_text=True))
    assert response.status_code == 200 and answer["failed"] == answer["skipped"] == []
    assert len(answer["tables"]) == len(list((REPO_ROOT / "sql").glob("*.sql")))
    assert answer["alerts"]  # checked after the summaries, as every cook does


def test_cook_http_writes_nan_and_infinity_as_null(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = datetime(2026, 12, 3, tzinfo=UTC)
    alert = Alert("server_logs", "min_rows_per_hour", "too few", float("inf"), 1.0, opened)
    report = CookReport([CookedTable("t", 1, float("nan"))], [alert])
    monkeypatch.setattr(summaries, "cook_and_check_alerts", lambda *args, **kwargs: report)

    response = http_client("cook").post("/")

    answer = strict_json(response.get_data(as_text=True))
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert answer["tables"] == [{"table": "t", "rows": 1, "seconds": None}]
    assert answer["alerts"][0]["observed"] is None


def test_main_import_is_light_and_fast() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import main; t = time.perf_counter() - t;"
        "heavy = [m for m in ('apache_beam', 'google.cloud.storage', 'pyarrow', 'duckdb')"
        " if m in sys.modules]; print(f'{t:.3f}', *heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True)

    seconds, *heavy = done.stdout.decode().split()
    print(f"import main: {seconds} s")
    assert heavy == []
    assert float(seconds) < 3.0


def test_on_upload_accepted_file_launches_once(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    status = deliver(upload_client(), blob)

    assert status == 200
    assert [r.event_key for r in launcher.requests] == [
        event_key(gcs.landing.name, blob.name, blob.generation)
    ]


def test_on_upload_same_event_ten_times_one_claim_one_launch(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    client = upload_client()

    statuses = [deliver(client, blob) for _ in range(10)]

    assert statuses == [200] * 10
    assert len(launcher.requests) == 1 and len(claim_names(gcs)) == 1


def test_on_upload_same_event_ten_times_concurrently_one_claim_one_launch(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    client = upload_client()
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait()
        statuses.append(deliver(client, blob))

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Deliveries that met the winner still at work got 503 (retry later); redelivered now,
    # as Eventarc would, they find the claim settled.
    redelivered = [deliver(client, blob) for status in statuses if status != 200]

    assert len(statuses) == 10 and set(statuses) <= {200, 503} and 200 in statuses
    assert redelivered == [200] * statuses.count(503)
    assert len(launcher.requests) == 1 and len(claim_names(gcs)) == 1
    key = event_key(gcs.landing.name, blob.name, blob.generation)
    assert read_claim(gcs.client, load_settings(), key).state == "launched"


def test_on_upload_bad_file_is_quarantined_with_reason_and_returns_200(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, BAD)

    status = deliver(upload_client(), blob)

    assert status == 200 and launcher.attempts == 0
    copy_name = quarantine_name(blob.name, blob.generation)
    assert gcs.pipeline.blob(copy_name).download_as_bytes() == BAD
    reason = json.loads(gcs.pipeline.blob(copy_name + REASON_SUFFIX).download_as_bytes())
    assert "header" in reason["reason"] and reason["generation"] == blob.generation
    assert [r["status"] for r in ingestion_rows()] == ["rejected"]
    landed = gcs.landing.get_blob(blob.name)
    assert (landed.generation, landed.download_as_bytes()) == (blob.generation, BAD)


def test_on_upload_transient_launch_error_leaves_the_file_queued_for_the_flush(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once queued, a redelivery can only be a duplicate: the scheduled flush launches it.
    launcher = install_launcher(monkeypatch, failures=1)
    blob = land(gcs, GOOD)
    client = upload_client()
    settings = load_settings()
    key = event_key(gcs.landing.name, blob.name, blob.generation)

    first = deliver(client, blob)
    queued = read_claim(gcs.client, settings, key)
    redelivered = deliver(client, blob)
    flushed = flush_batches(gcs.client, settings, launcher=launcher)
    again = flush_batches(gcs.client, settings, launcher=launcher)

    assert (first, redelivered) == (200, 200)
    assert queued is not None and queued.state == "batched"
    assert (flushed.batches, flushed.files, again.batches) == (1, 1, 0)
    assert (launcher.attempts, len(launcher.requests)) == (2, 1)
    assert read_claim(gcs.client, settings, key).state == "launched"


def test_on_upload_crash_after_claim_is_recovered_after_the_lease_not_before(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_CLAIM_LEASE_SECONDS", "1")
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    settings = load_settings()
    key = event_key(gcs.landing.name, blob.name, blob.generation)
    crashed = claim_event(
        storage_client(settings), settings, key, bucket=gcs.landing.name, name=blob.name,
        generation=blob.generation, dataset="kiva_lenders",
    )  # fmt: skip
    assert crashed is not None
    client = upload_client()

    within_lease = deliver(client, blob)
    time.sleep(1.2)
    after_lease = deliver(client, blob)

    assert (within_lease, after_lease) == (503, 200)
    assert len(launcher.requests) == 1
    claim = read_claim(gcs.client, settings, key)
    assert (claim.state, claim.attempt) == ("launched", 2)


@pytest.mark.parametrize(
    ("where", "name", "kind", "age"),
    [
        ("pipeline", PREFIX + "a.csv", FINALIZED, 0),
        ("landing", PREFIX + "a.csv", "google.cloud.storage.object.v1.metadataUpdated", 0),
        ("landing", "unknown/a.csv", FINALIZED, 0),
        ("landing", PREFIX + "a.csv", FINALIZED, 3 * 86400),
    ],
    ids=["pipeline-bucket", "wrong-type", "unknown-prefix", "too-old"],
)
def test_on_upload_ignores_events_that_are_not_ours_with_200(
    gcs: GcsBuckets,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    name: str,
    kind: str,
    age: float,
) -> None:
    launcher = install_launcher(monkeypatch)
    bucket = gcs.landing if where == "landing" else gcs.pipeline
    blob = bucket.blob(name)
    blob.upload_from_string(GOOD)

    status = deliver(upload_client(), blob, kind=kind, age=age)

    assert status == 200
    assert claim_names(gcs) == [] and launcher.attempts == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ignored = [line for line in lines if line.get("outcome") == "ignored"]
    assert len(ignored) == 1 and ignored[0]["severity"] == "INFO"


def test_on_upload_logs_json_lines_labelled_with_the_event_key(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    deliver(upload_client(), blob)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    launched = [line for line in lines if line.get("outcome") == "launched"]
    assert len(launched) == 1
    labels = launched[0]["logging.googleapis.com/labels"]
    assert labels == {
        "event_key": event_key(gcs.landing.name, blob.name, blob.generation),
        "dataset": "kiva_lenders",
    }
    assert launched[0]["severity"] == "INFO" and launched[0]["runner_job_id"] == "job-1"


def test_function_runtime_requirements_exclude_apache_beam() -> None:
    lines = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    packages = [line.split("==")[0].strip().lower() for line in lines if "==" in line]

    assert "functions-framework" in packages
    assert not [p for p in packages if p.startswith("apache-beam")]
