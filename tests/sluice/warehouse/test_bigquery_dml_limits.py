"""BigQuery's per-table DML limits (2 running, 20 queued) met by a burst of loads into one table.

The real client drives the REST fake, which enforces the limits as BigQuery does and fails
the 23rd outstanding mutating DML job with BigQuery's own error.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from sluice.contracts import Contract
from sluice.errors import TransientError
from sluice.schema import SourceRef
from sluice.settings import Settings
from sluice.warehouse.bigquery import BigQueryWarehouse
from sluice.warehouse.bigquery_jobs import TableBusy
from sluice.warehouse.loads import load_key

from .conftest import Stager, make_record
from .fake_bigquery import FakeBigQuery

LOADS = 30


def busy_tolerant(settings: Settings, busy_timeout: float = 60.0) -> BigQueryWarehouse:
    """An adapter with short timeouts and a short first backoff."""
    return BigQueryWarehouse(
        settings, api_timeout=5, job_timeout=30, busy_timeout=busy_timeout, busy_delay=0.05
    )


def test_thirty_concurrent_loads_into_one_table_stay_within_its_dml_queue(
    bq_settings: Settings, fake: FakeBigQuery, contract: Contract
) -> None:
    fake.dml_seconds = 0.1
    # Two long UPDATEs of someone else hold both running slots until the burst overflows.
    fake.held_dml.append(r"^UPDATE")
    other = busy_tolerant(bq_settings)
    for _ in range(2):
        other.client.query(f"UPDATE `proj-1.sluice.{contract.table}` SET host = host WHERE TRUE")
    sources = [
        SourceRef(f"gs://landing/incoming/server_logs/2024/03/15/{hour:02d}.csv", 1710 + hour)
        for hour in range(LOADS)
    ]

    def load(source: SourceRef) -> str:
        # Staged in Cloud Storage: one load job per kind, so the loads reach their
        # transactions together (the fake's load jobs report 0 rows, as the record says).
        record = make_record(contract, source, 0, 0)
        staged = f"gs://pipeline/staging/server_logs/{source.generation}/rows-0.parquet"
        warehouse = busy_tolerant(bq_settings)
        try:
            warehouse.load_replacing_source(contract, source, [staged], [], record)
        finally:
            warehouse.close()
        return load_key(warehouse.dataset, record)

    with concurrent.futures.ThreadPoolExecutor(LOADS) as pool:
        futures = [pool.submit(load, source) for source in sources]
        deadline = time.monotonic() + 60
        while not fake.dml_refused and time.monotonic() < deadline:
            time.sleep(0.05)
        refused_while_held = fake.dml_refused
        fake.release_held()
        keys = [future.result() for future in futures]
    other.close()

    succeeded = {
        key: [
            job_id
            for job_id, job in fake.jobs.items()
            if job_id.startswith(f"sluice_tx_{key}_") and job["status"] == {"state": "DONE"}
        ]
        for key in keys
    }
    assert len(set(keys)) == LOADS
    assert all(len(jobs) == 1 for jobs in succeeded.values()), succeeded
    assert refused_while_held > 0  # the burst really overflowed the queue, and was retried
    assert max(fake.peak_running.values()) <= 2
    assert max(fake.peak_pending.values()) <= 20
    assert fake.peak_pending[f"proj-1.sluice.{contract.table}"] == 20  # the queue was full
    assert not fake.dml_running and not fake.dml_pending


def test_a_table_busy_past_the_busy_timeout_is_a_transient_error(
    bq_settings: Settings, fake: FakeBigQuery, contract: Contract, stager: Stager
) -> None:
    source = SourceRef("gs://landing/incoming/server_logs/busy.csv", 1)
    record = make_record(contract, source, 2, 0)
    message = (
        "Resources exceeded during query execution: Too many DML statements outstanding"
        " against table proj-1:sluice.server_logs, limit is 20"
    )
    fake.fail_job(r"^sluice_tx_", "resourcesExceeded", message)
    warehouse = busy_tolerant(bq_settings, busy_timeout=0.3)

    with pytest.raises(TableBusy, match="Too many DML statements outstanding") as raised:
        warehouse.load_replacing_source(contract, source, [stager.rows(source, 2)], [], record)

    assert isinstance(raised.value, TransientError)
    tries = [job_id for job_id in fake.jobs if job_id.startswith("sluice_tx_")]
    assert len(tries) >= 2  # tried again, each try on a fresh job id


def test_a_full_queue_refusing_the_job_itself_is_retried_on_the_same_id(
    bq_settings: Settings, fake: FakeBigQuery, contract: Contract, stager: Stager
) -> None:
    source = SourceRef("gs://landing/incoming/server_logs/refused.csv", 1)
    message = (
        "Resources exceeded during query execution: Too many DML statements outstanding"
        " against table proj-1:sluice.ingestion_log, limit is 20"
    )
    error = {"code": 400, "message": message, "errors": [{"reason": "resourcesExceeded"}]}
    fake.fail_next(r"^POST /bigquery/v2/projects/proj-1/jobs$", 400, error)
    record = make_record(contract, source, 2, 0)

    busy_tolerant(bq_settings).load_replacing_source(
        contract, source, [stager.rows(source, 2)], [], record
    )

    key = load_key("sluice", record)
    tries = [
        job["jobReference"]["jobId"]
        for job in fake.job_inserts()
        if job["jobReference"]["jobId"].startswith("sluice_tx_")
    ]
    assert tries == [f"sluice_tx_{key}_0", f"sluice_tx_{key}_0"]  # no job was made: id kept
    assert fake.jobs[f"sluice_tx_{key}_0"]["status"] == {"state": "DONE"}
