"""The port's state tables on the DuckDB adapter: typed reads of the ingestion log and the
alerts table, and MissingTable for a table that does not exist."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from sluice.contracts import Contract
from sluice.errors import MissingTable, WarehouseError
from sluice.schema import AlertRecord, IngestionRecord, SourceRef
from sluice.settings import Settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from sluice.warehouse.state import Breach, LoadFacts, LoadWindow

from .conftest import T0, make_record

SOURCE_A = SourceRef("gs://landing/incoming/server_logs/a.csv", 1700000000000001)
SOURCE_B = SourceRef("gs://landing/incoming/server_logs/b.csv", 1700000000000002)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def logged(
    wh: DuckDBWarehouse,
    contract: Contract,
    source: SourceRef,
    *,
    job_id: str,
    finished_at: datetime,
    loaded: int = 5,
    dead: int = 0,
    status: str = "loaded",
) -> IngestionRecord:
    """Write one ingestion-log row; the record written."""
    record = dataclasses.replace(
        make_record(
            contract, source, loaded, dead, status, "header" if status != "loaded" else None
        ),
        job_id=job_id,
        started_at=finished_at - timedelta(minutes=1),
        finished_at=finished_at,
    )
    wh.record_ingestion(record)
    return record


def test_query_of_a_missing_table_raises_missing_table_naming_it(
    warehouse: DuckDBWarehouse,
) -> None:
    with pytest.raises(MissingTable, match=r"sluice\.no_such_table") as caught:
        warehouse.query("SELECT * FROM {dataset}.no_such_table")

    assert isinstance(caught.value, WarehouseError)


def test_query_of_a_missing_dataset_raises_missing_table(settings: Settings) -> None:
    with pytest.raises(MissingTable, match="ingestion_log"):
        DuckDBWarehouse(settings).ingestion_log(10)


def test_other_catalog_errors_stay_warehouse_errors(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError) as caught:
        warehouse.query("SELECT no_such_column FROM {dataset}.ingestion_log")

    assert not isinstance(caught.value, MissingTable)


def test_latest_ingestion_is_the_newest_row_of_the_generation(
    warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    logged(warehouse, contract, SOURCE_A, job_id="job-1", finished_at=T0)
    newer = SourceRef(SOURCE_A.uri, SOURCE_A.generation + 1)
    logged(warehouse, contract, newer, job_id="job-2", finished_at=T0 + HOUR)

    found = warehouse.latest_ingestion(SOURCE_A)

    assert found is not None
    assert (found.job_id, found.source_generation, found.finished_at) == (
        "job-1",
        SOURCE_A.generation,
        T0,
    )
    assert found.finished_at.tzinfo is not None


def test_latest_ingestion_of_a_job_ignores_other_jobs(
    warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    # record_ingestion keeps one row per uri+generation: the replay's row replaced job-1's.
    written = logged(warehouse, contract, SOURCE_A, job_id="job-replay", finished_at=T0, loaded=3)

    assert warehouse.latest_ingestion(SOURCE_A, job_name="job-replay") == written
    assert warehouse.latest_ingestion(SOURCE_A, job_name="job-1") is None
    assert warehouse.latest_ingestion(SOURCE_B) is None


def test_ingestion_log_is_newest_first_and_limited(
    warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    first = logged(warehouse, contract, SOURCE_A, job_id="a", finished_at=T0)
    second = logged(
        warehouse, contract, SOURCE_B, job_id="b", finished_at=T0 + HOUR, status="rejected",
        loaded=0,
    )  # fmt: skip

    assert warehouse.ingestion_log(10) == [second, first]
    assert warehouse.ingestion_log(1) == [second]


def test_load_facts_counts_loaded_rows_in_each_window_up_to_now(
    warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    old = SourceRef("gs://landing/incoming/server_logs/old.csv", 1)
    logged(warehouse, contract, old, job_id="old", finished_at=NOW - 5 * HOUR, loaded=100)
    logged(warehouse, contract, SOURCE_A, job_id="a", finished_at=NOW - HOUR / 2, loaded=8, dead=2)
    logged(warehouse, contract, SOURCE_B, job_id="b", finished_at=NOW - HOUR / 4, status="rejected",
           loaded=0)  # fmt: skip
    future = SourceRef("gs://landing/incoming/server_logs/late.csv", 9)
    logged(warehouse, contract, future, job_id="late", finished_at=NOW + HOUR, loaded=50)
    windows = [
        LoadWindow(contract.name, rows_since=NOW - HOUR, dead_since=NOW - 24 * HOUR),
        LoadWindow("never_loaded", rows_since=NOW - HOUR, dead_since=NOW - HOUR),
    ]

    facts = warehouse.load_facts(windows, NOW)

    assert facts == {
        contract.name: LoadFacts(NOW - HOUR / 2, 8, 110, 2),
        "never_loaded": LoadFacts(None, 0, 0, 0),
    }
    assert warehouse.load_facts([], NOW) == {}


def breach(dataset: str, rule: str = "max_hours_without_file") -> Breach:
    return Breach(dataset, rule, "missing_data", f"{dataset}: nothing", None, 1.0)


def test_record_alerts_opens_keeps_and_clears(warehouse: DuckDBWarehouse) -> None:
    opened = warehouse.record_alerts([breach("a"), breach("b")], ["a", "b"], NOW)
    kept = warehouse.record_alerts([breach("a")], ["a", "b"], NOW + HOUR)

    assert [(r.dataset, r.status, r.opened_at) for r in opened] == [
        ("a", "open", NOW),
        ("b", "open", NOW),
    ]
    assert kept == [
        AlertRecord("a", "max_hours_without_file", "missing_data", "open", "a: nothing", None,
                    1.0, NOW, NOW + HOUR, None),
        AlertRecord("b", "max_hours_without_file", "missing_data", "cleared", "b: nothing",
                    None, 1.0, NOW, NOW + HOUR, NOW + HOUR),
    ]  # fmt: skip


def test_record_alerts_leaves_datasets_it_did_not_check(warehouse: DuckDBWarehouse) -> None:
    warehouse.record_alerts([breach("a")], ["a"], NOW)

    assert warehouse.record_alerts([], ["b"], NOW + HOUR) == []
    assert [row["dataset"] for row in warehouse.open_alerts()] == ["a"]


def test_open_alerts_before_any_check_is_empty(warehouse: DuckDBWarehouse) -> None:
    assert warehouse.open_alerts() == []


def test_open_alerts_rows_by_dataset_and_rule(warehouse: DuckDBWarehouse) -> None:
    warehouse.record_alerts(
        [breach("b"), breach("a", "min_rows_per_hour"), breach("a")], ["a", "b"], NOW
    )
    warehouse.record_alerts([breach("a"), breach("a", "min_rows_per_hour")], ["a", "b"], NOW + HOUR)

    rows = warehouse.open_alerts()

    assert [(r["dataset"], r["rule"]) for r in rows] == [
        ("a", "max_hours_without_file"),
        ("a", "min_rows_per_hour"),
    ]
    assert list(rows[0]) == [
        "dataset", "rule", "alert", "message", "observed", "threshold", "opened_at", "checked_at",
    ]  # fmt: skip
    assert (rows[0]["opened_at"], rows[0]["checked_at"]) == (NOW, NOW + HOUR)
