"""The real local stack: fake-gcs-server, the event bridge, functions-framework, the pipeline."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from local.eventarc import storage_event
from local.generate import generate
from local.jobs import LocalJobs
from local.landing import LandedObject
from local.services import pid_alive
from local.stack import LocalStack, call_cook_report, settings_for_stack, stack_file
from sluice.errors import ConfigError, WarehouseError
from sluice.gcs import storage_client
from sluice.ingest.claims import LAUNCHED, LOADED, Claim, read_claim
from sluice.settings import Settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.local.conftest import TEST_RETRY, process_group_members, stack_settings
from tests.local.test_stack_commands import start_up

NO_SUCH_PID = 2**22 + 1
"""Above Linux's largest pid_max: never a live process."""
LOG_SQL = (
    "SELECT source_uri, status, rows_in, rows_loaded, rows_dead, reason"
    " FROM {dataset}.ingestion_log"
)


def bare_client(endpoint: str) -> storage.Client:
    """A plain google-cloud-storage client, built here and not by sluice.gcs."""
    return storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


def record_count(data: bytes) -> int:
    """Records in a CSV file as the csv module counts them (the independent reading)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return sum(1 for _ in csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def log_rows(settings: Settings) -> list[dict]:
    """Every ingestion-log row so far; none before the table exists."""
    try:
        return DuckDBWarehouse(settings).query(LOG_SQL)
    except WarehouseError:
        return []


def wait_for_log_rows(settings: Settings, uris: set[str], timeout: float) -> dict[str, dict]:
    """Ingestion-log rows of ``uris`` once every one has a final row (fails after timeout)."""
    deadline = time.monotonic() + timeout
    rows: dict[str, dict] = {}
    while time.monotonic() < deadline:
        rows = {row["source_uri"]: row for row in log_rows(settings) if row["source_uri"] in uris}
        if set(rows) == uris:
            return rows
        time.sleep(0.5)
    pytest.fail(f"expected final log rows for {sorted(uris)}, found {sorted(rows)}")


def wait_for_claim(settings: Settings, landed: LandedObject, state: str, timeout: float) -> Claim:
    """The claim of ``landed`` once it is in ``state`` (fails after timeout)."""
    client, deadline = storage_client(settings), time.monotonic() + timeout
    claim = None
    while time.monotonic() < deadline:
        claim = read_claim(client, settings, landed.event_key)
        if claim is not None and claim.state == state:
            return claim
        time.sleep(0.05)
    pytest.fail(f"expected the claim of {landed.uri} {state}, found {claim}")


def cooked_tables(settings: Settings) -> list[str]:
    """Tables in the cooked schema, read with duckdb itself once the stack has stopped."""
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        found = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [settings.cooked_warehouse_dataset],
        ).fetchall()
    return [name for (name,) in found]


@pytest.mark.slow
def test_stack_ingests_good_files_rejects_bad_ones_and_stops_clean(tmp_path: Path) -> None:
    files = {
        "incoming/kiva_loans/loans.csv": generate("kiva_loans", 300, tmp_path / "l.csv", seed=3),
        "incoming/kiva_lenders/lenders.csv.gz": generate(
            "kiva_lenders", 200, tmp_path / "k.csv.gz", seed=3, gzip=True, dirty=0.05
        ),
        "incoming/server_logs/day.csv": generate("server_logs", 400, tmp_path / "s.csv", seed=3),
    }
    payloads = {name: result.path.read_bytes() for name, result in files.items()}
    payloads["incoming/kiva_lenders/wrong_header.csv"] = b"loan_id,borrowers\n1,alice\n"
    header = payloads["incoming/server_logs/day.csv"].split(b"\n", 1)[0]
    payloads["incoming/server_logs/open_quote.csv"] = header + b'\n"2026-11-08,/\n'
    settings = stack_settings(tmp_path / "home")

    with LocalStack(settings, retry=TEST_RETRY) as stack:
        landing = bare_client(stack.gcs_endpoint).bucket(settings.landing_bucket)
        for name, data in payloads.items():
            landing.blob(name).upload_from_string(data)
        before = {b.name: (b.generation, b.md5_hash) for b in landing.list_blobs()}
        uris = {f"gs://{settings.landing_bucket}/{name}" for name in payloads}
        rows = wait_for_log_rows(stack.settings, uris, timeout=240)
        after = {b.name: (b.generation, b.md5_hash) for b in landing.list_blobs()}
        stored = {name: landing.blob(name).download_as_bytes() for name in payloads}
        leaders = [s.pid for s in stack.services]
        processes = process_group_members(leaders)

    for name, data in payloads.items():
        row = rows[f"gs://{settings.landing_bucket}/{name}"]
        if name in files:
            assert row["status"] == "loaded", row
            assert row["rows_in"] == record_count(data)
            assert row["rows_in"] == row["rows_loaded"] + row["rows_dead"]
        else:
            assert row["status"] == "rejected", row
            assert row["rows_loaded"] == 0
            assert row["reason"]
    assert rows["gs://sluice-landing/incoming/kiva_lenders/lenders.csv.gz"]["rows_dead"] > 0
    assert after == before
    assert stored == payloads
    assert len(processes) >= 3  # fake-gcs-server and both functions (gunicorn master + worker)
    assert process_group_members(leaders) == set()
    assert not any(pid_alive(pid) for pid in processes)
    assert not stack_file(settings).exists()


def test_stack_stop_ends_running_pipeline_jobs(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "home", SLUICE_COOK_INTERVAL_SECONDS="0")
    with LocalStack(settings, retry=TEST_RETRY) as stack:
        jobs = LocalJobs(stack.settings)
        job = "sluice-test-job-0123456789abcdef"
        sleeper = [sys.executable, "-c", "import time; time.sleep(120)", job]
        pid = jobs.start(job, sleeper, cwd=tmp_path)
        assert pid is not None and jobs.running_pid(job) == pid

    assert not pid_alive(pid)


def test_stack_cooks_on_schedule(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="local.stack")
    settings = stack_settings(tmp_path / "home", SLUICE_COOK_INTERVAL_SECONDS="1")

    with LocalStack(settings, retry=TEST_RETRY) as stack:
        deadline = time.monotonic() + 60
        while "scheduled cook" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.2)

    assert "scheduled cook rebuilt" in caplog.text
    assert "sweep of stuck files {'checked': 0," in caplog.text  # the cook's sweep, logged
    assert "server_requests_per_day" in cooked_tables(stack.settings)


def test_stack_replaces_leftovers_of_a_stack_that_died(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "home")
    leftover = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "fake-gcs-server"],
        start_new_session=True,
    )
    cmdline = Path(f"/proc/{leftover.pid}/cmdline")
    while b"fake-gcs-server" not in cmdline.read_bytes():
        time.sleep(0.01)  # empty for a moment after fork: a real leftover has run a while
    stack_file(settings).parent.mkdir(parents=True)
    stack_file(settings).write_text(
        json.dumps({"pid": NO_SUCH_PID, "services": {"fake-gcs-server": leftover.pid}})
    )

    with LocalStack(settings, retry=TEST_RETRY) as stack:
        endpoint = json.loads(stack_file(settings).read_text())["gcs_endpoint"]

    assert leftover.wait(timeout=5) != 0  # stopped by a signal, not finished
    assert endpoint == stack.gcs_endpoint


def test_stack_stops_pipeline_jobs_left_by_a_stack_that_died(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "home", SLUICE_COOK_INTERVAL_SECONDS="0")
    jobs = LocalJobs(settings)
    job = "sluice-test-job-0123456789abcdef"
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)", job]
    pid = jobs.start(job, sleeper, cwd=tmp_path)  # its stack was killed: nothing stopped it
    stack_file(settings).write_text(json.dumps({"pid": NO_SUCH_PID, "services": {}}))

    with LocalStack(settings, retry=TEST_RETRY):
        left_running = jobs.running_pid(job)

    assert pid is not None and left_running is None
    assert not pid_alive(pid)


@pytest.mark.slow
def test_stack_start_resumes_a_file_whose_stack_was_killed_mid_pipeline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="local.stack")
    source = generate("kiva_loans", 100, tmp_path / "l.csv", seed=7)
    home = tmp_path / "home"
    # `sluice up`, with the default cook interval and check delay; the file takes the
    # pipeline lane (small files are otherwise loaded in the function).
    up, info = start_up(home, SLUICE_FAST_LANE_MAX_BYTES="0")
    settings = dataclasses.replace(stack_settings(home), gcs_endpoint=info["gcs_endpoint"])
    landing = bare_client(info["gcs_endpoint"]).bucket(settings.landing_bucket)
    blob = landing.blob("incoming/kiva_loans/interrupted.csv")
    blob.upload_from_filename(source.path)
    landed = LandedObject(settings.landing_bucket, blob.name, blob.generation, "kiva_loans")
    wait_for_claim(settings, landed, LAUNCHED, timeout=60)
    pid = LocalJobs(settings).running_pid(landed.job_name)
    assert pid is not None
    # The laptop goes down mid-load: the stack and its pipeline die at once, unstopped.
    up.kill()
    os.killpg(pid, signal.SIGKILL)
    up.wait(timeout=10)
    # Its services end with it (the parent-death signal): the claim is read after restart.
    nothing_loaded = log_rows(settings)

    started = time.monotonic()
    restarted = stack_settings(home, SLUICE_FAST_LANE_MAX_BYTES="0")
    with LocalStack(restarted, retry=TEST_RETRY) as stack:
        row = wait_for_log_rows(stack.settings, {landed.uri}, timeout=60)[landed.uri]
        resumed_after = time.monotonic() - started
        done = wait_for_claim(stack.settings, landed, LOADED, timeout=10)

    assert nothing_loaded == []
    assert resumed_after < stack.settings.job_check_after_seconds / 10
    assert (row["status"], row["rows_in"]) == ("loaded", source.rows)
    assert done.pipeline_attempts == 2  # relaunched once, by the start-up sweep
    assert "start-up sweep relaunched 1 file(s)" in caplog.text


def test_stack_refuses_a_second_stack_for_the_same_home(local_stack: LocalStack) -> None:
    with pytest.raises(ConfigError, match="found one running"):
        LocalStack(local_stack.settings).start()

    assert stack_file(local_stack.settings).exists()
    assert not local_stack.dead_services()


def test_settings_for_stack_points_at_the_running_stack(local_stack: LocalStack) -> None:
    settings = stack_settings(local_stack.settings.home)
    explicit = stack_settings(local_stack.settings.home, SLUICE_GCS_ENDPOINT="http://elsewhere")

    assert settings_for_stack(settings).gcs_endpoint == local_stack.gcs_endpoint
    assert settings_for_stack(explicit).gcs_endpoint == "http://elsewhere"


def test_settings_for_stack_ignores_a_dead_stack(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "home")
    stack_file(settings).parent.mkdir(parents=True)
    stack_file(settings).write_text(json.dumps({"pid": NO_SUCH_PID, "gcs_endpoint": "http://x"}))

    assert settings_for_stack(settings).gcs_endpoint == ""


@pytest.mark.slow
def test_stack_duplicate_events_load_rows_once(tmp_path: Path) -> None:
    source = generate("kiva_loans", 200, tmp_path / "l.csv", seed=5, dirty=0.05)
    name = "incoming/kiva_loans/dup.csv"
    settings = stack_settings(tmp_path / "home")

    with LocalStack(settings, retry=TEST_RETRY) as stack:
        blob = bare_client(stack.gcs_endpoint).bucket(settings.landing_bucket).blob(name)
        blob.upload_from_filename(source.path)
        attributes = {
            "eventType": "OBJECT_FINALIZE",
            "bucketId": settings.landing_bucket,
            "objectId": name,
            "objectGeneration": str(blob.generation),
        }
        # Eventarc's at-least-once: the same finalize ten more times, delivered in parallel
        # while the first delivery is still validating and launching.
        for copy in range(10):
            event = storage_event(
                f"dup-{copy}", attributes, json.dumps(blob._properties).encode(), datetime.now(UTC)
            )
            stack.bridge.enqueue(event)
        uri = f"gs://{settings.landing_bucket}/{name}"
        row = wait_for_log_rows(stack.settings, {uri}, timeout=240)[uri]
        assert stack.bridge.wait_idle(timeout=60)
        jobs = LocalJobs(stack.settings)
        deadline = time.monotonic() + 60
        while jobs.running_jobs() and time.monotonic() < deadline:
            time.sleep(0.2)  # a second pipeline, were one launched, would finish here
        warehouse = DuckDBWarehouse(stack.settings)
        log_rows = warehouse.query(LOG_SQL)
        loaded = warehouse.query("SELECT COUNT(*) AS n FROM {dataset}.kiva_loans")[0]["n"]
        dead = warehouse.query("SELECT COUNT(*) AS n FROM {dataset}.kiva_loans_dead_letter")
        claims = list(
            bare_client(stack.gcs_endpoint).list_blobs(settings.pipeline_bucket, prefix="claims/")
        )

    assert row["status"] == "loaded"
    assert row["rows_in"] == source.rows
    assert len(log_rows) == 1
    assert loaded == row["rows_loaded"] == source.rows - source.dirty_rows
    assert dead[0]["n"] == row["rows_dead"] == source.dirty_rows
    assert len(claims) == 1


@pytest.mark.slow
def test_stack_with_every_event_too_old_loads_each_file_once_after_one_cook(
    tmp_path: Path,
) -> None:
    settings = stack_settings(
        tmp_path / "home",
        SLUICE_MAX_EVENT_AGE_SECONDS="0",  # every event is dropped as too old
        SLUICE_RECONCILE_GRACE_SECONDS="0",  # and no wait before reconciling
        SLUICE_COOK_INTERVAL_SECONDS="0",  # only the cook this test calls
    )
    sources = [
        generate("kiva_lenders", 40, tmp_path / f"lenders-{i}.csv", seed=i) for i in range(3)
    ]
    with LocalStack(settings, retry=TEST_RETRY) as stack:
        landing = bare_client(stack.gcs_endpoint).bucket(settings.landing_bucket)
        uris = set()
        for source in sources:
            blob = landing.blob(f"incoming/kiva_lenders/{source.path.name}")
            blob.upload_from_filename(source.path)
            uris.add(f"gs://{settings.landing_bucket}/{blob.name}")
        time.sleep(2)  # the events arrive, and are dropped
        dropped = log_rows(stack.settings)
        answer = call_cook_report(stack.cook_url, timeout=120)
        rows = wait_for_log_rows(stack.settings, uris, timeout=120)
        again = call_cook_report(stack.cook_url, timeout=120)
        time.sleep(2)
        final = log_rows(stack.settings)

    assert dropped == []
    assert answer["reconcile"]["ingested"] == 3
    assert again["reconcile"]["settled"] == 3 and again["reconcile"]["ingested"] == 0
    assert {uri: (row["status"], row["rows_in"]) for uri, row in rows.items()} == {
        f"gs://{settings.landing_bucket}/incoming/kiva_lenders/{s.path.name}": ("loaded", s.rows)
        for s in sources
    }
    assert sorted(row["source_uri"] for row in final) == sorted(uris)  # one row each


@pytest.mark.slow
def test_stack_with_the_fast_lane_off_loads_forty_files_in_a_few_pipeline_runs(
    tmp_path: Path,
) -> None:
    settings = stack_settings(
        tmp_path / "home", SLUICE_FAST_LANE_MAX_BYTES="0", SLUICE_COOK_INTERVAL_SECONDS="0"
    )
    sources = [
        generate("kiva_lenders", 20, tmp_path / f"lenders-{i:02d}.csv", seed=i) for i in range(40)
    ]
    with LocalStack(settings, retry=TEST_RETRY) as stack:
        landing = bare_client(stack.gcs_endpoint).bucket(settings.landing_bucket)
        uris = set()
        for source in sources:
            blob = landing.blob(f"incoming/kiva_lenders/{source.path.name}")
            blob.upload_from_filename(source.path)
            uris.add(f"gs://{settings.landing_bucket}/{blob.name}")
        rows = wait_for_log_rows(stack.settings, uris, timeout=300)
        jobs = DuckDBWarehouse(stack.settings).query(
            "SELECT DISTINCT job_id FROM {dataset}.ingestion_log"
        )

    assert {row["status"] for row in rows.values()} == {"loaded"}
    assert sum(row["rows_in"] for row in rows.values()) == sum(s.rows for s in sources)
    assert 1 <= len(jobs) <= 8  # batches: not one pipeline run per file
