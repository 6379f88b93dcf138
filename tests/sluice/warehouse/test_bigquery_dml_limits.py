"""BigQuery's per-table DML limits (2 running, 20 queued) met by a burst of loads into one table.

The real client drives the REST fake, which enforces the limits as BigQuery does and fails
the 23rd outstanding mutating DML job with BigQuery's own error; the load slots
(``sluice.warehouse.table_slots``) live in a real fake-gcs-server bucket.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from sluice.contracts import Contract
from sluice.errors import TransientError, WarehouseError
from sluice.schema import SourceRef
from sluice.settings import Settings
from sluice.warehouse.bigquery import BigQueryWarehouse
from sluice.warehouse.bigquery_jobs import TableBusy
from sluice.warehouse.loads import load_key
from sluice.warehouse.table_slots import RELEASED_AT, SLOTS_PREFIX, TableSlots, TableSlotsFull

from .conftest import Stager, make_record
from .fake_bigquery import FakeBigQuery

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

LOADS = 30


def busy_tolerant(settings: Settings, busy_timeout: float = 60.0) -> BigQueryWarehouse:
    """An adapter with short timeouts and a short first backoff."""
    return BigQueryWarehouse(
        settings, api_timeout=5, job_timeout=30, busy_timeout=busy_timeout, busy_delay=0.05
    )


def burst_of_loads(
    settings: Settings, fake: FakeBigQuery, contract: Contract, *, hold_until: int
) -> list[str]:
    """``LOADS`` loads into ``contract``'s table at once, each by its own adapter; DML jobs
    matching ``fake.held_dml`` are held until ``hold_until`` DML statements are outstanding on
    the table (or 60 s passed), and half a second more, so any overflow would show. Their
    load keys."""
    table = f"proj-1.sluice.{contract.table}"
    sources = [
        SourceRef(f"gs://landing/incoming/server_logs/2024/03/15/{hour:02d}.csv", 1710 + hour)
        for hour in range(LOADS)
    ]

    def load(source: SourceRef) -> str:
        # Staged in Cloud Storage: one load job per kind, so the loads reach their
        # transactions together (the fake's load jobs report 0 rows, as the record says).
        record = make_record(contract, source, 0, 0)
        staged = f"gs://pipeline/staging/server_logs/{source.generation}/rows-0.parquet"
        warehouse = busy_tolerant(settings)
        try:
            warehouse.load_replacing_source(contract, source, [staged], [], record)
        finally:
            warehouse.close()
        return load_key(warehouse.dataset, record)

    with concurrent.futures.ThreadPoolExecutor(LOADS) as pool:
        futures = [pool.submit(load, source) for source in sources]
        deadline = time.monotonic() + 60
        while fake.peak_outstanding.get(table, 0) < hold_until and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        fake.release_held()
        return [future.result() for future in futures]


def transactions_done(fake: FakeBigQuery, keys: list[str]) -> dict[str, list[str]]:
    """Load key -> the ids of its transaction jobs that succeeded."""
    return {
        key: [
            job_id
            for job_id, job in fake.jobs.items()
            if job_id.startswith(f"sluice_tx_{key}_") and job["status"] == {"state": "DONE"}
        ]
        for key in keys
    }


def slot_leases(gcs: GcsBuckets) -> dict[str, str]:
    """Slot object name -> its ``held_until``, as stored."""
    listed = gcs.client.list_blobs(gcs.pipeline, prefix=SLOTS_PREFIX)
    return {blob.name: json.loads(blob.download_as_bytes())["held_until"] for blob in listed}


def crashed_holders(gcs: GcsBuckets, table: str, count: int, lease_seconds: float) -> None:
    """Take every one of ``count`` slots of ``table`` and never release them."""
    slots = TableSlots(
        gcs.client, gcs.pipeline.name, count=count, lease_seconds=lease_seconds,
        wait_seconds=0, first_delay=0.01,
    )  # fmt: skip
    for _ in range(count):
        slots.acquire(table)


@pytest.mark.parametrize(
    ("slots", "others"),
    [
        pytest.param(None, 2, id="default-slots-beside-2-running-updates-of-others"),
        pytest.param(5, 0, id="5-slots"),
    ],
)
def test_thirty_concurrent_loads_into_one_table_never_exceed_its_load_slots(
    bq_settings: Settings,
    fake: FakeBigQuery,
    contract: Contract,
    gcs: GcsBuckets,
    slots: int | None,
    others: int,
) -> None:
    settings = dataclasses.replace(bq_settings, table_load_slots=slots or 20)
    fake.dml_seconds = 0.1
    # Held until the burst has filled the slots: someone else's long UPDATEs, and our own
    # transactions, so loads pile up and any load past the cap would be seen outstanding.
    fake.held_dml += [r"^UPDATE", r"BEGIN TRANSACTION"]
    other = busy_tolerant(settings)
    for _ in range(others):
        other.client.query(f"UPDATE `proj-1.sluice.{contract.table}` SET host = host WHERE TRUE")

    keys = burst_of_loads(settings, fake, contract, hold_until=settings.table_load_slots + others)
    other.close()

    succeeded = transactions_done(fake, keys)
    assert len(set(keys)) == LOADS
    assert all(len(jobs) == 1 for jobs in succeeded.values()), succeeded
    assert fake.dml_refused == 0  # never "Too many DML statements outstanding"
    changed = [f"proj-1.sluice.{name}" for name in (contract.table, contract.dead_letter_table)]
    for table in [*changed, "proj-1.sluice.ingestion_log"]:
        ours = settings.table_load_slots + (others if table == changed[0] else 0)
        assert fake.peak_outstanding[table] == ours, table  # the cap was reached, never passed
    assert not fake.dml_running and not fake.dml_pending
    leases = slot_leases(gcs)
    assert len(leases) == 3 * settings.table_load_slots  # K slot objects for each table
    assert set(leases.values()) == {RELEASED_AT.isoformat()}  # every slot released


def test_a_burst_past_the_dml_queue_is_retried_until_each_load_lands_once(
    bq_settings: Settings, fake: FakeBigQuery, contract: Contract
) -> None:
    # 22 slots, all BigQuery queues: with someone else's 2 UPDATEs holding both running
    # places, the burst overflows the queue and its overflow is retried with backoff.
    settings = dataclasses.replace(bq_settings, table_load_slots=22)
    fake.dml_seconds = 0.1
    fake.held_dml.append(r"^UPDATE")
    other = busy_tolerant(settings)
    for _ in range(2):
        other.client.query(f"UPDATE `proj-1.sluice.{contract.table}` SET host = host WHERE TRUE")

    keys = burst_of_loads(settings, fake, contract, hold_until=22)
    other.close()

    succeeded = transactions_done(fake, keys)
    assert len(set(keys)) == LOADS
    assert all(len(jobs) == 1 for jobs in succeeded.values()), succeeded
    assert fake.dml_refused > 0  # the burst really overflowed the queue, and was retried
    assert max(fake.peak_running.values()) <= 2
    assert max(fake.peak_pending.values()) <= 20
    assert fake.peak_pending[f"proj-1.sluice.{contract.table}"] == 20  # the queue was full
    assert not fake.dml_running and not fake.dml_pending


def test_a_crashed_holders_load_slot_is_taken_over_after_its_lease(
    bq_settings: Settings, fake: FakeBigQuery, contract: Contract, gcs: GcsBuckets, stager: Stager
) -> None:
    settings = dataclasses.replace(bq_settings, table_load_slots=2)
    crashed_holders(gcs, f"sluice.{contract.table}", 2, lease_seconds=2)
    source = SourceRef("gs://landing/incoming/server_logs/after-crash.csv", 1)
    record = make_record(contract, source, 2, 0)
    started = time.monotonic()

    busy_tolerant(settings, busy_timeout=30).load_replacing_source(
        contract, source, [stager.rows(source, 2)], [], record
    )

    waited = time.monotonic() - started
    leases = slot_leases(gcs)
    processed = {
        name: held for name, held in leases.items() if f"/sluice.{contract.table}/" in name
    }
    assert waited >= 1.5  # not before the crashed holders' lease ran out
    assert transactions_done(fake, [load_key("sluice", record)]) == {
        load_key("sluice", record): [f"sluice_tx_{load_key('sluice', record)}_0"]
    }
    # One slot taken over, then released; the other still holds the dead holder's old lease.
    assert sorted(processed.values())[0] == RELEASED_AT.isoformat()
    assert datetime.fromisoformat(sorted(processed.values())[1]) < datetime.now(UTC)


def test_a_table_whose_load_slots_stay_held_is_a_transient_error_before_any_dml(
    bq_settings: Settings, fake: FakeBigQuery, contract: Contract, gcs: GcsBuckets, stager: Stager
) -> None:
    settings = dataclasses.replace(bq_settings, table_load_slots=2)
    crashed_holders(gcs, f"sluice.{contract.table}", 2, lease_seconds=600)
    source = SourceRef("gs://landing/incoming/server_logs/full.csv", 1)
    warehouse = busy_tolerant(settings, busy_timeout=0.3)

    with pytest.raises(TableSlotsFull, match=r"expected one of 2 free within 0.3 s, found all 2"):
        warehouse.load_replacing_source(
            contract, source, [stager.rows(source, 2)], [], make_record(contract, source, 2, 0)
        )

    assert issubclass(TableSlotsFull, TransientError)
    assert not [job_id for job_id in fake.jobs if job_id.startswith("sluice_tx_")]
    others = {name: held for name, held in slot_leases(gcs).items() if contract.table not in name}
    assert set(others.values()) == {RELEASED_AT.isoformat()}  # slots taken before, given back


def test_a_failed_transaction_releases_its_load_slots(
    bq_settings: Settings, fake: FakeBigQuery, contract: Contract, gcs: GcsBuckets, stager: Stager
) -> None:
    source = SourceRef("gs://landing/incoming/server_logs/fails.csv", 1)
    fake.fail_job(r"^sluice_tx_", "invalidQuery", "Syntax error: unexpected keyword")

    with pytest.raises(WarehouseError, match="Syntax error"):
        busy_tolerant(bq_settings).load_replacing_source(
            contract, source, [stager.rows(source, 2)], [], make_record(contract, source, 2, 0)
        )

    leases = slot_leases(gcs)
    assert len(leases) == 3  # one slot of each table the transaction changes
    assert set(leases.values()) == {RELEASED_AT.isoformat()}


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
