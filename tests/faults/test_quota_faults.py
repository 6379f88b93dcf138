"""Dataflow's concurrent-job quota, on the real code paths: files wait, none fail, none twice.

A project runs at most 25 Dataflow jobs at once by default (``FakeDataflow.quota``); past
that Dataflow refuses a launch with its jobs-per-project quota error. Every test drives the
real ``on_upload`` (functions-framework), the real ``DataflowLauncher`` (google-api-python-client
over HTTP to ``FakeDataflow``), fake-gcs-server for claims and batches, and the scheduled
``flush_batches`` (one file a batch here, as ``SLUICE_BATCH_MAX_FILES=1`` makes it):

- The fake's jobs move queued -> running -> done over scaled time, or end on command, and
  the launcher's ``is_running`` (jobs.get by id, jobs.list by name) follows them.
- 40 files' events at once with the budget and the quota at 25: 25 jobs, 15 files in open
  batches (``batched``) with their events acknowledged; as jobs end each flush launches the
  oldest open batches and never more than the budget; every file launched once.
- A budget above the real quota: Dataflow's own quota error also means waiting (200, no
  retry storm), duplicates of a waiting file do nothing, the reconciliation leaves it alone.
- ``on_upload`` killed while Dataflow's quota answer is on its way: the file is queued in
  its open batch; the flush launches it once a job slot frees.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sluice.cook.reconcile import reconcile_bucket
from sluice.gcs import storage_client
from sluice.ingest.batches import FlushReport, flush_batches
from sluice.ingest.dataflow import DataflowLauncher
from sluice.ingest.launch import LaunchRequest
from sluice.schema import SourceRef
from sluice.settings import load_settings
from tests.faults.conftest import FakeDataflow
from tests.faults.fault_helpers import DATASET, URI, claim_of, job_name, lenders_csv
from tests.faults.test_faults import kill_while_launching
from tests.sluice.ingest.upload_doubles import land
from tests.test_main import deliver, upload_client

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]


def land_files(gcs: GcsBuckets, count: int) -> list[Blob]:
    """``count`` small kiva_lenders files in the landing bucket."""
    return [
        land(gcs, lenders_csv(range(i, i + 2)), f"incoming/kiva_lenders/quota-{i:03d}.csv")
        for i in range(count)
    ]


def deliver_at_once(blobs: list[Blob], workers: int = 8) -> list[int]:
    """Every blob's finalize event, ``workers`` deliveries at a time; their HTTP statuses."""

    def one(blob: Blob) -> int:
        return deliver(upload_client(), blob)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, blobs))


def states(gcs: GcsBuckets, blobs: list[Blob]) -> Counter[str]:
    """How many of the blobs' claims are in each state."""
    return Counter(claim_of(gcs, blob).state for blob in blobs)


def test_dataflow_job_states_move_over_time_and_on_command_as_is_running_sees_them(
    dataflow_env: FakeDataflow,
) -> None:
    dataflow_env.queued_seconds, dataflow_env.run_seconds = 1.0, 2.0
    launcher = DataflowLauncher(load_settings())
    timed = launcher.launch(LaunchRequest.for_object(DATASET, SourceRef(URI, 1)))
    ended = launcher.launch(LaunchRequest.for_object(DATASET, SourceRef(URI, 2)))

    queued = dataflow_env.states()
    running = states_within(dataflow_env, ["JOB_STATE_RUNNING"] * 2)
    by_id_running = launcher.is_running(timed.job_name, timed.runner_job_id)
    by_name_running = launcher.is_running(ended.job_name, None)
    failed = dataflow_env.finish(1, "JOB_STATE_FAILED")
    ended_states = states_within(dataflow_env, ["JOB_STATE_FAILED", "JOB_STATE_DONE"])

    assert queued == ["JOB_STATE_QUEUED"] * 2
    assert running and by_id_running and by_name_running
    assert failed == [timed.job_name]
    assert ended_states
    assert not launcher.is_running(timed.job_name, timed.runner_job_id)
    assert not launcher.is_running(ended.job_name, None)  # done after its run time


def states_within(fake: FakeDataflow, wanted: list[str], timeout: float = 20) -> bool:
    """Whether the fake's job states become ``wanted`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while fake.states() != wanted:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def open_batch_keys(gcs: GcsBuckets) -> list[str]:
    """The event keys of the files in open batches, oldest batch first."""
    blobs = gcs.client.list_blobs(gcs.pipeline.name, prefix=f"batches/{DATASET}/open/")
    records = sorted((json.loads(blob.download_as_bytes()) for blob in blobs), key=by_creation)
    return [member["event_key"] for record in records for member in record["candidates"]]


def by_creation(record: dict[str, Any]) -> str:
    return str(record["created_at"])


def flush() -> FlushReport:
    """One scheduled flush."""
    settings = load_settings()
    return flush_batches(storage_client(settings), settings)


@pytest.mark.emulator
def test_forty_files_with_a_quota_of_25_wait_and_each_launches_once(
    gcs: GcsBuckets, dataflow_env: FakeDataflow
) -> None:
    blobs = land_files(gcs, 40)

    statuses = deliver_at_once(blobs)
    after_events = states(gcs, blobs)
    first_waiting = open_batch_keys(gcs)
    dataflow_env.finish(10)
    first_flush = flush()
    still_open = open_batch_keys(gcs)
    dataflow_env.finish(25)
    second_flush = flush()
    idle_flush = flush()

    assert statuses == [200] * 40
    assert after_events == {"launched": 25, "batched": 15}
    assert (first_flush.batches, first_flush.waiting, first_flush.failed) == (10, 5, 0)
    assert still_open == first_waiting[10:]  # the oldest ten went first
    assert (second_flush.batches, second_flush.waiting) == (5, 0)
    assert (idle_flush.batches, idle_flush.waiting, idle_flush.queued) == (0, 0, 0)
    assert states(gcs, blobs) == {"launched": 40}
    assert dataflow_env.peak_active <= 25
    assert sorted(dataflow_env.created_names()) == sorted(job_name(blob) for blob in blobs)
    assert "JOB_STATE_FAILED" not in dataflow_env.states()


@pytest.mark.emulator
def test_dataflow_quota_error_means_waiting_not_a_retry_and_duplicates_do_nothing(
    gcs: GcsBuckets, dataflow_env: FakeDataflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_DATAFLOW_MAX_JOBS", "100")  # above the project's real quota
    monkeypatch.setenv("SLUICE_RECONCILE_GRACE_SECONDS", "0")
    dataflow_env.quota = 3
    blobs = land_files(gcs, 5)
    client = upload_client()

    statuses = [deliver(client, blob) for blob in blobs]
    waiting = [claim_of(gcs, blob) for blob in blobs[3:]]
    duplicates = [deliver(client, blob) for blob in blobs[3:] for _ in range(3)]
    reconciled = reconcile_bucket(gcs.client, load_settings())
    still_full = flush()
    launches_while_full = Counter(launch.job_name for launch in dataflow_env.launches)
    dataflow_env.finish(3)
    freed = flush()

    assert statuses == [200] * 5
    assert [claim.state for claim in waiting] == ["batched"] * 2
    assert duplicates == [200] * 6
    assert (reconciled.ingested, reconciled.settled) == (0, 5)
    assert (still_full.batches, still_full.waiting) == (0, 2)
    assert set(still_full.unsettled) == {DATASET}  # for the unprocessed_files alert
    # One launch per refused file from on_upload (no backoff retries), one more from the
    # flush for the oldest (the quota refused it, so the flush stopped there).
    assert [launches_while_full[job_name(blob)] for blob in blobs] == [1, 1, 1, 2, 1]
    assert dataflow_env.quota_refusals == 3
    assert (freed.batches, freed.waiting, freed.unsettled) == (2, 0, {})
    assert states(gcs, blobs) == {"launched": 5}
    assert sorted(dataflow_env.created_names()) == sorted(job_name(blob) for blob in blobs)


@pytest.mark.emulator
def test_duplicate_events_of_a_waiting_file_leave_its_claim_untouched(
    gcs: GcsBuckets, dataflow_env: FakeDataflow
) -> None:
    dataflow_env.quota = 1
    running, waiting = land_files(gcs, 2)
    client = upload_client()
    deliver(client, running)
    deliver(client, waiting)
    before = claim_of(gcs, waiting)
    launches = len(dataflow_env.launches)

    duplicates = [deliver(client, waiting) for _ in range(5)]

    after = claim_of(gcs, waiting)
    assert duplicates == [200] * 5
    assert before.state == "batched"
    assert (after, after.claim_generation) == (before, before.claim_generation)
    assert len(dataflow_env.launches) == launches


@pytest.mark.emulator
def test_on_upload_killed_while_dataflow_refuses_is_launched_once_a_slot_frees(
    gcs: GcsBuckets,
    dataflow_env: FakeDataflow,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("SLUICE_DATAFLOW_MAX_JOBS", "100")  # the launch reaches Dataflow
    dataflow_env.quota = 1
    dataflow_env.run_elsewhere("another-teams-job")
    dataflow_env.hang = True  # Dataflow's quota answer never reaches the function
    (blob,) = land_files(gcs, 1)
    kill_while_launching(blob, dataflow_env, tmp_path / "killed.log")
    orphan = claim_of(gcs, blob)
    dataflow_env.hang = False

    redelivered = deliver(upload_client(), blob)
    while_full = flush()
    dataflow_env.finish(1)
    freed = flush()

    assert (orphan.state, orphan.attempt) == ("batched", 1)
    assert redelivered == 200 and (while_full.batches, while_full.waiting) == (0, 1)
    assert freed.batches == 1 and claim_of(gcs, blob).state == "launched"
    assert dataflow_env.quota_refusals == 2
    assert dataflow_env.created_names() == ["another-teams-job", job_name(blob)]
