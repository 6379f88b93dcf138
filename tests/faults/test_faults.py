"""Fault injection on the real code paths: every fault, and how Sluice survives it.

The promise: a fault is retried or resumed, never double-loaded, never stuck, and the newest
generation of an object wins. Faults are injected only at the boundaries: a fake Dataflow API
(``conftest.FakeDataflow``), fake-gcs-server, the BigQuery emulator, staged files on disk,
and real processes killed with SIGKILL. Each fault, its expected survival, and the test that
proves it (``load::`` is test_load_faults.py, ``delivery::`` test_delivery_faults.py, a bare
name is in this file):

1a. Dataflow launch answers 429, 500 or 503, then 200: retried with jittered backoff, one job.
    test_dataflow_launch_retries_throttling_and_server_errors_then_launches
    (409 ABORTED retried, 400 permanent: tests/sluice/ingest/test_launch.py)
1b. Dataflow launch answers 409 ALREADY_EXISTS: counted as launched, HTTP 200, no new job.
    test_on_upload_dataflow_409_counts_as_launched
1c. Dataflow launch answers 503 to every attempt: on_upload tries 5 times and answers 200, its
    file queued for a batch (a redelivery is a duplicate); the next flush launches it once.
    test_on_upload_persistent_503_leaves_the_file_queued_and_the_next_flush_launches_once
2a. DuckDB load fails mid-transaction (a staged rows file corrupt after the source's rows
    were deleted; a dead-letter file corrupt after the new rows were inserted) or a staged
    file is gone: old rows, dead letters and log exactly as before, no 'loaded' row, staging
    kept; the rerun of the same job loads once and removes the staging.
    load::test_duckdb_load_failing_midway_keeps_the_old_rows_and_a_rerun_loads_once
2b. BigQuery transaction fails after its first DELETE (emulator): old rows and log kept; the
    retried load step loads once and leaves no staging table.
    load::test_bigquery_load_failing_midway_keeps_the_old_rows_and_a_retry_loads_once
    (the retry reuses the staged load jobs by id: tests/sluice/warehouse/test_bigquery.py::
    test_load_replacing_source_retry_reuses_loads_and_supersedes_a_failed_transaction)
3a. on_upload killed while launching its file's batch (the launch had reached Dataflow): a
    redelivery is a duplicate; the next flush resumes the open batch, the relaunch's 409
    counts; one job. A crash at every other step of a batch: tests/sluice/ingest/test_batches.py
    test_on_upload_killed_while_launching_is_resumed_by_the_next_flush
3b. Pipeline killed between launch and load: redeliveries (even past the lease) launch
    nothing (the event was acknowledged at launch) and `sluice upload --wait` says 'failed'
    and names the job's log; the next cook's sweep finds the claim 'launched' past
    SLUICE_JOB_CHECK_AFTER_SECONDS with no live job and no log row, relaunches it once under
    the same job name, and the file loads exactly once, no replay needed (a defect, fixed).
    delivery::test_pipeline_killed_before_loading_is_relaunched_by_the_cook_and_loads_once
    Two sweeps at once relaunch once; a job that finished without settling its claim is
    settled from its log row; a live local or Dataflow job is left alone; a file whose
    pipeline failed SLUICE_MAX_PIPELINE_ATTEMPTS times is logged 'rejected', landing file kept.
    tests/sluice/cook/test_sweep.py
4a. The same event delivered 10 times at once: one claim, one launch, one load.
    delivery::test_on_upload_same_event_ten_times_concurrently_launches_and_loads_once
4b. The newer generation's event handled before the older one's (versioned landing bucket):
    only the newer rows stay; the older load is logged 'rejected' as superseded.
    delivery::test_on_upload_older_generation_after_newer_leaves_the_newer_rows
    Its load bundle retried after it removed its staging: nothing changes (a defect, fixed).
    load::test_load_step_retried_after_being_superseded_changes_nothing
    An older generation already overwritten (unversioned bucket): rejected at the door.
    tests/sluice/ingest/test_door.py::test_handle_object_replaced_generation_is_rejected_as_vanished
5.  Two cooks at once give the tables of one cook.
    tests/sluice/cook/test_cook_order.py::test_two_cooks_at_once_give_the_tables_of_one
6.  Dataflow's concurrent-job quota spent (the budget SLUICE_DATAFLOW_MAX_JOBS, or Dataflow's
    own jobs-per-project quota error): the file waits in its open batch, its event
    acknowledged; each flush launches open batches oldest first within the budget; duplicates
    do nothing. A relaunch by the sweep that finds the budget spent waits as
    'waiting_for_quota' and the cook launches it. tests/faults/test_quota_faults.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.ingest import launch as launchers
from sluice.ingest.batches import flush_batches
from sluice.ingest.dataflow import DataflowLauncher
from sluice.ingest.launch import LaunchRequest
from sluice.schema import SourceRef
from sluice.settings import REPO_ROOT, load_settings
from tests.faults.conftest import TOKEN, FakeDataflow
from tests.faults.fault_helpers import DATASET, NAME, URI, claim_of, job_name, lenders_csv
from tests.sluice.ingest.upload_doubles import land
from tests.test_main import deliver, upload_client

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

KILL_WHILE_LAUNCHING = """
import sys
from sluice.ingest.door import handle_object
from sluice.settings import load_settings
handle_object(sys.argv[1], sys.argv[2], int(sys.argv[3]), settings=load_settings())
"""
"""``on_upload``'s work on one object, in a process a test can kill."""


def kill_while_launching(blob: Blob, fake: FakeDataflow, log_path: Path) -> int:
    """Run ``on_upload`` for ``blob`` in its own process and SIGKILL it once its launch has
    reached ``fake`` (set ``fake.hang`` first, so the answer never comes); its return code."""
    argv = [sys.executable, "-c", KILL_WHILE_LAUNCHING]
    with log_path.open("wb") as log:
        function = subprocess.Popen(
            [*argv, blob.bucket.name, blob.name, str(blob.generation)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert fake.received.wait(60), log_path.read_text()
    finally:
        os.kill(function.pid, signal.SIGKILL)
        function.wait(10)
    return function.returncode


def within_backoff(sleeps: list[float]) -> bool:
    """Each wait is full jitter under the launcher's doubling cap (base 1 s)."""
    return all(0 <= wait <= 2**attempt for attempt, wait in enumerate(sleeps))


# 1. The Dataflow launch API failing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"), [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE")]
)
def test_dataflow_launch_retries_throttling_and_server_errors_then_launches(
    dataflow_env: FakeDataflow, status: int, code: str
) -> None:
    dataflow_env.script = [(status, code)] * 2
    sleeps: list[float] = []
    launcher = DataflowLauncher(load_settings(), sleep=sleeps.append)
    request = LaunchRequest.for_object(DATASET, SourceRef(URI, 7))

    result = launcher.launch(request)

    first, second, third = dataflow_env.launches
    assert (result.runner_job_id, result.already_running) == ("fake-job-1", False)
    assert first.body == second.body == third.body
    assert {launch.authorization for launch in dataflow_env.launches} == {f"Bearer {TOKEN}"}
    assert len(sleeps) == 2 and within_backoff(sleeps)
    assert dataflow_env.active_names() == {request.job_name: "fake-job-1"}


@pytest.mark.emulator
def test_on_upload_dataflow_409_counts_as_launched(
    gcs: GcsBuckets, dataflow_env: FakeDataflow
) -> None:
    blob = land(gcs, lenders_csv(range(1, 4)), NAME)
    running = dataflow_env.run_elsewhere(job_name(blob))

    status = deliver(upload_client(), blob)

    claim = claim_of(gcs, blob)
    assert status == 200
    assert (claim.state, claim.runner_job_id) == ("launched", job_name(blob))
    assert [launch.job_name for launch in dataflow_env.launches] == [job_name(blob)]
    assert dataflow_env.active_names() == {job_name(blob): running}


@pytest.mark.emulator
def test_on_upload_persistent_503_leaves_the_file_queued_and_the_next_flush_launches_once(
    gcs: GcsBuckets, dataflow_env: FakeDataflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    # The launcher's clock is its one dependency besides the network: record its backoff.
    monkeypatch.setattr(
        launchers, "launcher_from_settings", lambda s: DataflowLauncher(s, sleep=sleeps.append)
    )
    dataflow_env.script = [(503, "UNAVAILABLE")] * 5
    blob = land(gcs, lenders_csv(range(1, 4)), NAME)
    client = upload_client()

    first = deliver(client, blob)
    queued = claim_of(gcs, blob)
    duplicate = deliver(client, blob)
    flushed = flush_batches(gcs.client, load_settings())

    claim = claim_of(gcs, blob)
    assert (first, duplicate) == (200, 200)  # queued: a redelivery could not help
    assert queued.state == "batched" and flushed.batches == 1
    assert len(sleeps) == 4 and within_backoff(sleeps)
    assert [launch.job_name for launch in dataflow_env.launches] == [job_name(blob)] * 6
    assert dataflow_env.active_names() == {job_name(blob): "fake-job-1"}
    assert (claim.state, claim.runner_job_id, claim.attempt) == ("launched", "fake-job-1", 1)


# 3a. on_upload killed while launching its file's batch --------------------------------------------


@pytest.mark.emulator
def test_on_upload_killed_while_launching_is_resumed_by_the_next_flush(
    gcs: GcsBuckets,
    dataflow_env: FakeDataflow,
    tmp_path: Path,
) -> None:
    dataflow_env.hang = True  # Dataflow creates the job; its answer never reaches the caller
    blob = land(gcs, lenders_csv(range(1, 4)), NAME)
    returncode = kill_while_launching(blob, dataflow_env, tmp_path / "killed.log")
    orphan = claim_of(gcs, blob)
    dataflow_env.hang = False

    redelivered = deliver(upload_client(), blob)
    flushed = flush_batches(gcs.client, load_settings())
    again = flush_batches(gcs.client, load_settings())

    taken = claim_of(gcs, blob)
    assert returncode == -signal.SIGKILL
    assert (orphan.state, orphan.attempt) == ("batched", 1)
    assert redelivered == 200 and (flushed.batches, again.batches) == (1, 0)
    assert (taken.state, taken.attempt, taken.runner_job_id) == ("launched", 1, job_name(blob))
    assert [launch.job_name for launch in dataflow_env.launches] == [job_name(blob)] * 2
    assert dataflow_env.created_names() == [job_name(blob)]
