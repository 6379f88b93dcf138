"""Killed pipelines, duplicate and out-of-order events (rows 3b, 4a, 4b of test_faults.py).

Real jobs: ``main.on_upload`` (functions-framework's app) against fake-gcs-server launches
``python -m beam.pipeline`` through the LocalLauncher, into the test's DuckDB warehouse;
``main.cook`` sweeps the claims of pipelines that died and relaunches them the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING

import pytest
from google.cloud import storage

from local.jobs import LocalJobs
from local.landing import FAILED, LandedObject, current_result
from local.launcher import LocalLauncher
from sluice.settings import load_settings
from sluice.warehouse.loads import SUPERSEDED
from tests.faults.fault_helpers import (
    DATASET,
    NAME,
    claim_of,
    job_name,
    lenders_csv,
    loaded_ids,
    log_rows,
)
from tests.sluice.ingest.upload_doubles import claim_names, ingestion_rows, land
from tests.test_main import deliver, http_client, upload_client

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]


# 3b. The pipeline killed between launch and load --------------------------------------------------


@pytest.mark.emulator
@pytest.mark.slow
def test_pipeline_killed_before_loading_is_relaunched_by_the_cook_and_loads_once(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = land(gcs, lenders_csv(range(1, 6), bad=1), NAME)
    settings = load_settings()
    landed = LandedObject(gcs.landing.name, NAME, blob.generation, DATASET)
    jobs, client = LocalJobs(settings), upload_client()
    launched = deliver(client, blob)
    pid = jobs.running_pid(landed.job_name)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # long before Beam is even imported
    killed = LocalLauncher(settings).wait(landed.job_name, timeout=30)

    monkeypatch.setenv("SLUICE_CLAIM_LEASE_SECONDS", "0")  # past every lease, too
    redelivered = deliver(client, blob)
    stuck = current_result(gcs.client, settings, landed)
    nothing_loaded = ingestion_rows(settings)
    monkeypatch.setenv("SLUICE_JOB_CHECK_AFTER_SECONDS", "0")  # as if the check interval passed
    cooked = http_client("cook").post("/")  # what Cloud Scheduler and the local loop call
    finished = LocalLauncher(settings).wait(landed.job_name, timeout=120)
    done = current_result(gcs.client, settings, landed)

    assert (launched, killed, redelivered) == (200, -signal.SIGKILL, 200)
    assert stuck.state == FAILED and str(jobs.log_file(landed.job_name)) in (stuck.reason or "")
    assert nothing_loaded == []
    assert cooked.status_code == 200, cooked.get_json()
    assert cooked.get_json()["sweep"] == {
        "checked": 1, "running": 0, "settled": 0, "relaunched": 1, "waiting": 0, "gave_up": 0,
        "failed": 0,
    }  # fmt: skip
    assert cooked.get_json()["waiting_for_quota"]["waiting"] == 0
    assert jobs.pid_file(landed.job_name).read_text().strip() != str(pid)  # a new process
    assert finished == 0, jobs.log_file(landed.job_name).read_text()[-2000:]
    assert (done.state, done.rows_loaded, done.rows_dead) == ("loaded", 5, 1)
    assert claim_of(gcs, blob).pipeline_attempts == 2
    assert loaded_ids(settings) == [(loan_id, blob.generation) for loan_id in range(1, 6)]
    assert log_rows(settings) == [(blob.generation, "loaded", 5, 1, None)]


# 4. Duplicate and out-of-order events -------------------------------------------------------------


@pytest.mark.emulator
@pytest.mark.slow
def test_on_upload_same_event_ten_times_concurrently_launches_and_loads_once(
    gcs: GcsBuckets, caplog: pytest.LogCaptureFixture
) -> None:
    blob = land(gcs, lenders_csv(range(1, 21), bad=2), NAME)
    settings = load_settings()
    client = upload_client()
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def one_delivery() -> None:
        barrier.wait()
        statuses.append(deliver(client, blob))

    with caplog.at_level(logging.INFO):
        threads = [threading.Thread(target=one_delivery) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Eventarc redelivers each 503 (the winner still held the claim) until it is 2xx.
        retried = [deliver(client, blob) for status in statuses if status != 200]
        finished = LocalLauncher(settings).wait(job_name(blob), timeout=120)
        late = [deliver(client, blob) for _ in range(10)]  # more copies after the load

    outcomes = [getattr(r, "fields", {}).get("outcome") for r in caplog.records]
    assert len(statuses) == 10 and set(statuses) <= {200, 503}
    assert retried == [200] * statuses.count(503) and late == [200] * 10
    assert outcomes.count("launched") == 1 and finished == 0
    assert len(claim_names(gcs)) == 1 and claim_of(gcs, blob).state == "loaded"
    assert loaded_ids(settings) == [(loan_id, blob.generation) for loan_id in range(1, 21)]
    assert log_rows(settings) == [(blob.generation, "loaded", 20, 2, None)]


@pytest.mark.emulator
@pytest.mark.slow
def test_on_upload_older_generation_after_newer_leaves_the_newer_rows(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    versioned = storage.Bucket(gcs.client, f"{gcs.landing.name}-v")
    versioned.versioning_enabled = True  # as infra/ sets landing: older generations stay
    landing = gcs.client.create_bucket(versioned)
    monkeypatch.setenv("SLUICE_LANDING_BUCKET", landing.name)
    older, newer = landing.blob(NAME), landing.blob(NAME)
    older.upload_from_string(lenders_csv(range(1, 4)))
    newer.upload_from_string(lenders_csv(range(100, 105), bad=1))
    settings = load_settings()
    client, launcher = upload_client(), LocalLauncher(settings)

    statuses, codes = [], []
    for blob in (newer, older):  # the newer generation's event arrives first
        statuses.append(deliver(client, blob))
        codes.append(launcher.wait(job_name(blob), timeout=120))

    assert (statuses, codes) == ([200, 200], [0, 0])
    assert loaded_ids(settings) == [(loan_id, newer.generation) for loan_id in range(100, 105)]
    assert log_rows(settings) == [
        (older.generation, "superseded", 0, 0, SUPERSEDED),
        (newer.generation, "loaded", 5, 1, None),
    ]
    assert (claim_of(gcs, older).state, claim_of(gcs, newer).state) == ("superseded", "loaded")
