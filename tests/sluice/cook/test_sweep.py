"""The sweep of launched claims whose pipeline died: against fake-gcs-server and DuckDB.

Job status is real: local jobs are real processes with pid files (``LocalJobs``), Dataflow
answers through scripted HTTP (``HttpMockSequence``). Only starting a local pipeline is
recorded instead of run (the real start is tests/faults/test_delivery_faults.py's).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from googleapiclient.http import HttpMockSequence

from local.jobs import LocalJobs
from local.launcher import LocalLauncher
from sluice.cook.sweep import stuck_claim_names, sweep_stuck_claims
from sluice.ingest.claims import (
    LAUNCHED,
    LOADED,
    WAITING_FOR_QUOTA,
    Claim,
    claim_event,
    claim_object_name,
    event_key,
    read_claim,
    set_claim_state,
    split_index_name,
    swap_claim,
)
from sluice.ingest.dataflow import DataflowLauncher
from sluice.ingest.launch import LaunchRequest, LaunchResult
from sluice.schema import IngestionRecord, SourceRef
from sluice.settings import Settings, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.ingest.upload_doubles import DATASET, GOOD, PREFIX, ingestion_rows, land

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

LATER = datetime.now(UTC) + timedelta(hours=1)
"""A sweep's clock past every claim's check interval (600 s by default)."""


class RecordingLocalLauncher(LocalLauncher):
    """The real LocalLauncher's job status (pid files, live processes); launches recorded."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.requests: list[LaunchRequest] = []
        self._lock = threading.Lock()

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Record the request instead of starting Beam."""
        with self._lock:
            self.requests.append(request)
            return LaunchResult(request.job_name, f"local-job-{len(self.requests)}")


class RecordingHttp(HttpMockSequence):
    """Scripted Dataflow answers, with every request kept as (method, uri, body)."""

    def __init__(self, responses: list[tuple[dict[str, str], str]]) -> None:
        super().__init__(responses)
        self.requests: list[tuple[str, str, Any]] = []

    def request(self, uri: str, method: str = "GET", body: Any = None, **kwargs: Any) -> Any:
        """Keep the request, answer the next scripted response."""
        self.requests.append((method, uri, json.loads(body) if body else None))
        return super().request(uri, method, body, **kwargs)


def launched(gcs: GcsBuckets, name: str, *, replay: str | None = None) -> tuple[Blob, Claim]:
    """Land ``name``, claim its event and record it launched, as on_upload does."""
    settings, blob = load_settings(), land(gcs, GOOD, name)
    key = event_key(gcs.landing.name, name, blob.generation, replay)
    claim_event(
        gcs.client, settings, key, bucket=gcs.landing.name, name=name,
        generation=blob.generation, dataset=DATASET,
    )  # fmt: skip
    return blob, set_claim_state(
        gcs.client, settings, key, LAUNCHED, runner_job_id=job_of(blob, replay)
    )


def job_of(blob: Blob, replay: str | None = None) -> str:
    """The job name on_upload gives the blob's event."""
    source = SourceRef(f"gs://{blob.bucket.name}/{blob.name}", blob.generation)
    return LaunchRequest.for_object(DATASET, source, replay=replay).job_name


def run_job(settings: Settings, job_name: str, code: str) -> int:
    """Start a real local job process running ``code`` under ``job_name``; its pid."""
    argv = [sys.executable, "-c", code, job_name]  # the name in argv, as a pipeline's
    pid = LocalJobs(settings).start(job_name, argv, cwd=Path.cwd())
    assert pid is not None
    return pid


@pytest.fixture
def local_launcher(gcs: GcsBuckets) -> Iterator[RecordingLocalLauncher]:
    """A recording local launcher; stops any job process a test leaves running."""
    launcher = RecordingLocalLauncher(load_settings())
    yield launcher
    for pid in LocalJobs(load_settings()).running_jobs().values():
        os.kill(pid, signal.SIGKILL)


def test_sweep_relaunches_a_dead_local_job_with_the_request_on_upload_built(
    gcs: GcsBuckets, local_launcher: RecordingLocalLauncher
) -> None:
    name = f"{PREFIX}_test/a.csv"
    blob, claim = launched(gcs, name, replay="r1")
    settings = load_settings()
    gcs.pipeline.blob(split_index_name(claim.event_key)).upload_from_string(b"{}")
    job = job_of(blob, "r1")
    run_job(settings, job, "pass")
    LocalJobs(settings).wait(job, timeout=10)  # the job has died without a log row

    report = sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER)

    [request] = local_launcher.requests
    after = read_claim(gcs.client, settings, claim.event_key)
    assert (report.checked, report.relaunched, report.failed) == (1, 1, 0)
    assert (request.job_name, request.event_key, request.test) == (job, claim.event_key, True)
    assert request.source == SourceRef(f"gs://{gcs.landing.name}/{name}", blob.generation)
    assert request.split_index == f"gs://{gcs.pipeline.name}/{split_index_name(claim.event_key)}"
    assert (after.state, after.pipeline_attempts, after.runner_job_id) == (
        LAUNCHED,
        2,
        "local-job-1",
    )


def test_sweep_two_concurrent_sweeps_relaunch_once(
    gcs: GcsBuckets, local_launcher: RecordingLocalLauncher, contracts: dict
) -> None:
    _, claim = launched(gcs, PREFIX + "a.csv")
    settings = load_settings()
    DuckDBWarehouse(settings).ensure_tables(contracts[DATASET])  # a warehouse in use
    barrier = threading.Barrier(2)
    reports = []

    def one_sweep() -> None:
        barrier.wait()
        reports.append(sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER))

    threads = [threading.Thread(target=one_sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(local_launcher.requests) == 1
    assert sum(r.relaunched for r in reports) == 1 and sum(r.failed for r in reports) == 0
    assert read_claim(gcs.client, settings, claim.event_key).pipeline_attempts == 2


def test_sweep_leaves_a_claim_whose_local_job_still_runs(
    gcs: GcsBuckets, local_launcher: RecordingLocalLauncher
) -> None:
    blob, claim = launched(gcs, PREFIX + "a.csv")
    settings = load_settings()
    run_job(settings, job_of(blob), "import time; time.sleep(60)")

    report = sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER)

    assert (report.checked, report.running, report.relaunched) == (1, 1, 0)
    assert local_launcher.requests == []
    assert read_claim(gcs.client, settings, claim.event_key) == claim  # not even rewritten


@pytest.mark.parametrize(("status", "reason"), [("loaded", None), ("rejected", "bad header")])
def test_sweep_settles_a_claim_from_its_jobs_log_row_without_relaunch(
    gcs: GcsBuckets,
    local_launcher: RecordingLocalLauncher,
    contracts: dict,
    status: str,
    reason: str | None,
) -> None:
    blob, claim = launched(gcs, PREFIX + "a.csv")
    settings = load_settings()
    rows, now = (2 if status == "loaded" else 0), datetime.now(UTC)
    uri = f"gs://{gcs.landing.name}/{blob.name}"
    record = IngestionRecord(
        DATASET, uri, blob.generation, status, rows, rows, 0, reason, job_of(blob), now, now
    )
    warehouse = DuckDBWarehouse(settings)
    warehouse.ensure_tables(contracts[DATASET])
    warehouse.record_ingestion(record)  # the job's last act before it died

    report = sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER)

    after = read_claim(gcs.client, settings, claim.event_key)
    assert (report.settled, report.relaunched) == (1, 0) and local_launcher.requests == []
    assert (after.state, after.reason, after.pipeline_attempts) == (status, reason, 1)


def test_sweep_gives_up_after_max_attempts_with_a_rejected_log_row(
    gcs: GcsBuckets, local_launcher: RecordingLocalLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_MAX_PIPELINE_ATTEMPTS", "2")
    blob, claim = launched(gcs, PREFIX + "a.csv")
    settings = load_settings()
    job = job_of(blob)

    first = sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER)
    second = sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER + timedelta(1))
    third = sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER + timedelta(2))

    reason = f"pipeline failed 2 times; see job {job} log"
    after = read_claim(gcs.client, settings, claim.event_key)
    assert (first.relaunched, second.gave_up, third.checked) == (1, 1, 0)
    assert len(local_launcher.requests) == 1  # the relaunched job never ran: it died too
    assert (after.state, after.reason, after.pipeline_attempts) == ("rejected", reason, 2)
    assert [(r["status"], r["reason"], r["job_id"]) for r in ingestion_rows(settings)] == [
        ("rejected", reason, job)
    ]
    landing = [(b.name, b.generation) for b in gcs.client.list_blobs(gcs.landing.name)]
    assert landing == [(blob.name, blob.generation)]  # the file stays, untouched
    assert not list(gcs.client.list_blobs(gcs.pipeline.name, prefix="quarantine/"))


def test_sweep_touches_no_young_claim_and_reads_only_old_launched_ones(
    gcs: GcsBuckets, local_launcher: RecordingLocalLauncher
) -> None:
    settings = load_settings()
    _, stuck = launched(gcs, PREFIX + "stuck.csv")
    _, loaded = launched(gcs, PREFIX + "loaded.csv")
    set_claim_state(gcs.client, settings, loaded.event_key, LOADED)
    gcs.pipeline.blob(split_index_name(stuck.event_key)).upload_from_string(b"{}")
    # A claim as written before claims carried their state (and attempts) as metadata.
    old_blob, old = launched(gcs, PREFIX + "old.csv")
    stored = json.loads(old.to_json())
    del stored["pipeline_attempts"]
    gcs.pipeline.blob(claim_object_name(old.event_key)).upload_from_string(json.dumps(stored))

    early = sweep_stuck_claims(gcs.client, settings, local_launcher)  # every claim is young
    early_launches = list(local_launcher.requests)
    due = stuck_claim_names(gcs.client, settings, LATER)
    report = sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER)

    assert (early.checked, early_launches) == (0, [])
    assert sorted(due) == sorted(claim_object_name(c.event_key) for c in (stuck, old))
    assert report.relaunched == 2
    assert {r.job_name for r in local_launcher.requests} == {job_of(old_blob), stuck.runner_job_id}
    assert read_claim(gcs.client, settings, old.event_key).pipeline_attempts == 2


def test_sweep_without_check_delay_relaunches_young_claims_of_dead_jobs_only(
    gcs: GcsBuckets, local_launcher: RecordingLocalLauncher
) -> None:
    settings = load_settings()
    dead_blob, dead = launched(gcs, PREFIX + "dead.csv")
    live_blob, live = launched(gcs, PREFIX + "live.csv")
    run_job(settings, job_of(dead_blob), "pass")
    LocalJobs(settings).wait(job_of(dead_blob), timeout=10)  # died without a log row
    run_job(settings, job_of(live_blob), "import time; time.sleep(60)")

    usual = sweep_stuck_claims(gcs.client, settings, local_launcher)  # both claims are young
    at_once = sweep_stuck_claims(gcs.client, settings, local_launcher, check_after_seconds=0)

    assert usual.checked == 0
    assert (at_once.checked, at_once.running, at_once.relaunched) == (2, 1, 1)
    assert [r.job_name for r in local_launcher.requests] == [job_of(dead_blob)]
    assert read_claim(gcs.client, settings, dead.event_key).pipeline_attempts == 2
    assert read_claim(gcs.client, settings, live.event_key) == live  # not even rewritten


def test_sweep_logs_a_bad_claim_with_its_key_and_sweeps_the_rest(
    gcs: GcsBuckets, local_launcher: RecordingLocalLauncher, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings()
    _, good = launched(gcs, PREFIX + "a.csv")
    _, bad = launched(gcs, PREFIX + "b.csv")
    swap_claim(gcs.client, settings, bad, dataset="no_such_dataset")  # its contract removed

    report = sweep_stuck_claims(gcs.client, settings, local_launcher, now=LATER)

    assert (report.checked, report.relaunched, report.failed) == (2, 1, 1)
    assert [r.event_key for r in local_launcher.requests] == [good.event_key]
    assert (
        f"sweep of claim {bad.event_key} failed" in caplog.text and "no_such_dataset" in caplog.text
    )


def dataflow_job(state: str) -> tuple[dict[str, str], str]:
    """A jobs.get answer."""
    return {"status": "200"}, json.dumps({"id": "df-1", "currentState": state})


@pytest.mark.parametrize(
    ("state", "relaunched"),
    [
        ("JOB_STATE_RUNNING", 0),
        ("JOB_STATE_CANCELLING", 0),
        ("JOB_STATE_FAILED", 1),
        ("JOB_STATE_CANCELLED", 1),
    ],
)
def test_sweep_asks_dataflow_for_the_job_state_and_relaunches_only_an_ended_job(
    gcs: GcsBuckets, state: str, relaunched: int
) -> None:
    blob, claim = launched(gcs, PREFIX + "a.csv")
    settings = load_settings()
    swap_claim(gcs.client, settings, claim, runner_job_id="df-1")  # the id the launch returned
    launch_ok = {"status": "200"}, json.dumps({"job": {"id": "df-2"}})
    no_active_jobs = {"status": "200"}, "{}"  # the launcher's budget check
    http = RecordingHttp([dataflow_job(state), no_active_jobs, launch_ok])
    # Dataflow launches need BigQuery settings; the sweep reads the log in the test's DuckDB.
    dataflow = replace(
        settings, launcher="dataflow", warehouse="bigquery", gcp_project="proj-1",
        dataflow_region="europe-west1", dataflow_template="gs://templates/pipeline.json",
    )  # fmt: skip

    report = sweep_stuck_claims(gcs.client, settings, DataflowLauncher(dataflow, http), LATER)

    after = read_claim(gcs.client, settings, claim.event_key)
    method, uri, _ = http.requests[0]
    assert method == "GET" and "/projects/proj-1/locations/europe-west1/jobs/df-1?" in uri
    assert (report.running, report.relaunched) == (1 - relaunched, relaunched)
    launches = [body["launchParameter"]["jobName"] for m, _, body in http.requests if m == "POST"]
    assert launches == [job_of(blob)] * relaunched
    assert (after.runner_job_id, after.pipeline_attempts) == (
        ("df-2", 2) if relaunched else ("df-1", 1)
    )


def test_sweep_relaunch_finding_the_job_budget_spent_leaves_the_file_waiting_for_quota(
    gcs: GcsBuckets,
) -> None:
    _, claim = launched(gcs, PREFIX + "a.csv")
    settings = load_settings()
    swap_claim(gcs.client, settings, claim, runner_job_id="df-1")
    budget_spent = (
        {"status": "200"},
        json.dumps({"jobs": [{"name": "sluice-other-1", "currentState": "JOB_STATE_RUNNING"}]}),
    )
    http = RecordingHttp([dataflow_job("JOB_STATE_FAILED"), budget_spent])
    dataflow = replace(
        settings, launcher="dataflow", warehouse="bigquery", gcp_project="proj-1",
        dataflow_region="europe-west1", dataflow_template="gs://templates/pipeline.json",
        dataflow_max_jobs=1,
    )  # fmt: skip

    report = sweep_stuck_claims(gcs.client, settings, DataflowLauncher(dataflow, http), LATER)

    after = read_claim(gcs.client, settings, claim.event_key)
    assert (report.relaunched, report.waiting, report.failed) == (0, 1, 0)
    assert [method for method, _, _ in http.requests] == ["GET", "GET"]  # no launch sent
    assert (after.state, after.pipeline_attempts) == (WAITING_FOR_QUOTA, 2)
    assert "SLUICE_DATAFLOW_MAX_JOBS" in after.reason
