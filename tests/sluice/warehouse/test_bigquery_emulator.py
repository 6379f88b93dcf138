"""BigQuery adapter end to end on the BigQuery emulator (bqemulator, DuckDB-backed REST).

The emulator runs from its own virtualenv (tests/sluice/warehouse/bqemulator_env.sh); these
tests are skipped when that virtualenv is missing. Each test uses its own datasets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest

from sluice.contracts import Contract
from sluice.errors import MissingTable, WarehouseError
from sluice.schema import SourceRef
from sluice.warehouse.bigquery import BigQueryWarehouse
from sluice.warehouse.loads import SUPERSEDED
from sluice.warehouse.state import Breach, LoadFacts, LoadWindow

from .conftest import (
    REPLAYED_DAYS,
    T0,
    Stager,
    emulator_warehouse,
    make_record,
    replayed_on_other_days,
)

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytestmark = pytest.mark.emulator

pytest_plugins = ["tests.gcs_fixtures"]

SOURCE_A = SourceRef("gs://landing/incoming/server_logs/a.csv", 1700000000000001)
SOURCE_B = SourceRef("gs://landing/incoming/server_logs/b.csv", 1700000000000002)
HOUR = timedelta(hours=1)


@pytest.fixture
def emu(
    bq_emulator: str, isolated_env: object, contract: Contract, gcs: GcsBuckets
) -> Iterator[BigQueryWarehouse]:
    """A BigQuery adapter on the emulator, with fresh datasets and the contract's tables."""
    warehouse = emulator_warehouse(bq_emulator, gcs)
    warehouse.ensure_tables(contract)
    yield warehouse
    warehouse.close()


def load(wh: BigQueryWarehouse, stager: Stager, source: SourceRef, rows: int, dead: int) -> None:
    contract = stager.contract
    record = make_record(contract, source, rows, dead)
    rows_files = [stager.rows(source, rows)] if rows else []
    dead_files = [stager.dead(source, dead)] if dead else []
    wh.load_replacing_source(contract, source, rows_files, dead_files, record)


def count(wh: BigQueryWarehouse, table: str, uri: str) -> int:
    column = "_source_uri" if table == "server_logs" else "source_uri"
    sql = f"SELECT COUNT(*) AS n FROM {{dataset}}.{table} WHERE {column} = @uri"
    return int(wh.query(sql, {"uri": uri})[0]["n"])


def test_emulator_ensure_tables_is_idempotent_with_partitions_and_clusters(
    emu: BigQueryWarehouse, contract: Contract
) -> None:
    emu.ensure_tables(contract)

    processed = emu.client.get_table(f"{emu.project}.{emu.dataset}.server_logs", timeout=10)
    ingestion_log = emu.client.get_table(f"{emu.project}.{emu.dataset}.ingestion_log", timeout=10)
    assert (processed.time_partitioning.field, processed.time_partitioning.type_) == (
        "timestamp",
        "DAY",
    )
    assert processed.clustering_fields == ["_source_uri", "host", "status"]
    assert ingestion_log.time_partitioning.field == "started_at"


def test_emulator_ensure_tables_reclusters_an_older_table_and_keeps_its_rows(
    emu: BigQueryWarehouse, stager: Stager, contract: Contract
) -> None:
    load(emu, stager, SOURCE_A, rows=3, dead=0)
    name = f"{emu.project}.{emu.dataset}.server_logs"
    table = emu.client.get_table(name, timeout=10)
    table.clustering_fields = ["host", "status"]  # as tables were clustered before
    emu.client.update_table(table, ["clustering_fields"], timeout=10)
    assert emu.client.get_table(name, timeout=10).clustering_fields == ["host", "status"]

    emu.ensure_tables(contract)
    load(emu, stager, SOURCE_A, rows=2, dead=0)

    assert emu.client.get_table(name, timeout=10).clustering_fields == [
        "_source_uri", "host", "status",
    ]  # fmt: skip
    assert count(emu, "server_logs", SOURCE_A.uri) == 2


def test_emulator_load_twice_keeps_one_copy_and_other_sources(
    emu: BigQueryWarehouse, stager: Stager
) -> None:
    load(emu, stager, SOURCE_B, rows=2, dead=0)
    load(emu, stager, SOURCE_A, rows=3, dead=1)

    load(emu, stager, SOURCE_A, rows=3, dead=1)

    assert count(emu, "server_logs", SOURCE_A.uri) == 3
    assert count(emu, "server_logs_dead_letter", SOURCE_A.uri) == 1
    assert count(emu, "server_logs", SOURCE_B.uri) == 2
    log = emu.query(
        "SELECT source_uri, status, rows_in, rows_loaded, rows_dead"
        " FROM {dataset}.ingestion_log ORDER BY source_uri"
    )
    assert log == [
        {"source_uri": SOURCE_A.uri, "status": "loaded", "rows_in": 4, "rows_loaded": 3,
         "rows_dead": 1},
        {"source_uri": SOURCE_B.uri, "status": "loaded", "rows_in": 2, "rows_loaded": 2,
         "rows_dead": 0},
    ]  # fmt: skip
    assert list(emu.client.list_tables(f"{emu.project}.{emu.staging_dataset}", timeout=10)) == []


def test_emulator_replay_on_other_days_deletes_the_old_rows_in_their_partitions(
    emu: BigQueryWarehouse, stager: Stager, contract: Contract
) -> None:
    days = replayed_on_other_days(emu, contract, stager, SOURCE_A.uri)

    assert days == REPLAYED_DAYS


def test_emulator_first_load_of_a_file_without_a_log_row_loads_beside_others(
    emu: BigQueryWarehouse, stager: Stager
) -> None:
    load(emu, stager, SOURCE_B, rows=2, dead=1)

    load(emu, stager, SOURCE_A, rows=3, dead=1)  # no log row yet: its deletes are skipped

    assert (count(emu, "server_logs", SOURCE_A.uri), count(emu, "server_logs", SOURCE_B.uri)) == (
        3, 2,
    )  # fmt: skip
    assert count(emu, "server_logs_dead_letter", SOURCE_B.uri) == 1


def test_emulator_failed_transaction_keeps_the_old_rows(
    emu: BigQueryWarehouse, stager: Stager
) -> None:
    load(emu, stager, SOURCE_A, rows=3, dead=1)
    # Without its dead-letter table the transaction fails after deleting processed rows.
    emu.client.delete_table(f"{emu.project}.{emu.dataset}.server_logs_dead_letter", timeout=10)

    with pytest.raises(WarehouseError):
        load(emu, stager, SOURCE_A, rows=1, dead=0)

    assert count(emu, "server_logs", SOURCE_A.uri) == 3
    assert emu.query("SELECT rows_loaded FROM {dataset}.ingestion_log") == [{"rows_loaded": 3}]


def test_emulator_record_ingestion_replaces_the_same_generation_only(
    emu: BigQueryWarehouse, contract: Contract
) -> None:
    first = SourceRef(SOURCE_A.uri, 1)
    emu.record_ingestion(make_record(contract, first, 0, 0, "rejected", "header: one"))
    emu.record_ingestion(make_record(contract, first, 0, 0, "rejected", "header: two"))

    emu.record_ingestion(make_record(contract, SourceRef(SOURCE_A.uri, 2), 0, 0, "rejected", "q"))

    log = emu.query("SELECT source_generation, reason FROM {dataset}.ingestion_log ORDER BY 1")
    assert log == [
        {"source_generation": 1, "reason": "header: two"},
        {"source_generation": 2, "reason": "q"},
    ]


def test_emulator_run_script_builds_a_cooked_table(emu: BigQueryWarehouse, stager: Stager) -> None:
    load(emu, stager, SOURCE_A, rows=30, dead=0)

    emu.run_script(
        "CREATE OR REPLACE TABLE {cooked_dataset}.daily AS"
        " SELECT DATE(timestamp) AS day, COUNT(*) AS requests"
        " FROM {dataset}.server_logs GROUP BY day;"
    )

    rows = emu.query(
        "SELECT day, requests FROM {cooked_dataset}.daily WHERE day >= @since ORDER BY day",
        {"since": date(2024, 3, 16)},
    )
    assert rows == [
        {"day": date(2024, 3, 16), "requests": 24},
        {"day": date(2024, 3, 17), "requests": 5},
    ]


def test_emulator_load_of_an_older_generation_after_a_newer_one_replaces_nothing(
    emu: BigQueryWarehouse, stager: Stager
) -> None:
    newer = SourceRef(SOURCE_A.uri, SOURCE_A.generation + 10)
    load(emu, stager, newer, rows=3, dead=1)

    load(emu, stager, SOURCE_A, rows=1, dead=0)  # its job finished last

    log = emu.query(
        "SELECT source_generation, status, rows_loaded, reason"
        " FROM {dataset}.ingestion_log ORDER BY source_generation"
    )
    assert count(emu, "server_logs", SOURCE_A.uri) == 3
    assert count(emu, "server_logs_dead_letter", SOURCE_A.uri) == 1
    assert log == [
        {"source_generation": SOURCE_A.generation, "status": "superseded", "rows_loaded": 0,
         "reason": SUPERSEDED},
        {"source_generation": newer.generation, "status": "loaded", "rows_loaded": 3,
         "reason": None},
    ]  # fmt: skip


def test_emulator_typed_reads_of_the_ingestion_log(
    emu: BigQueryWarehouse, stager: Stager, contract: Contract
) -> None:
    load(emu, stager, SOURCE_A, rows=3, dead=1)
    rejected = make_record(contract, SOURCE_B, 0, 0, "rejected", "header: x")
    emu.record_ingestion(dataclasses.replace(rejected, finished_at=rejected.finished_at + HOUR))

    latest = emu.latest_ingestion(SOURCE_A)
    log = emu.ingestion_log(10)

    assert latest is not None and (latest.status, latest.rows_loaded, latest.rows_dead) == (
        "loaded", 3, 1,
    )  # fmt: skip
    assert emu.latest_ingestion(SOURCE_A, job_name="another-job") is None
    assert [(r.source_uri, r.status) for r in log] == [
        (SOURCE_B.uri, "rejected"),
        (SOURCE_A.uri, "loaded"),
    ]
    assert emu.ingestion_log(1) == log[:1]


def test_emulator_alert_facts_merge_and_open_alerts(
    emu: BigQueryWarehouse, stager: Stager, contract: Contract
) -> None:
    load(emu, stager, SOURCE_A, rows=3, dead=1)
    now = T0 + 2 * HOUR  # the record finished at T0 + 3 s
    breach = Breach(contract.name, "dead_letter_rate", "dead_letter_rate", "too many", 0.25, 0.01)

    facts = emu.load_facts([LoadWindow(contract.name, now - HOUR, now - 24 * HOUR)], now)
    assert emu.open_alerts() == []  # no check yet: no alerts table
    opened = emu.record_alerts([breach], [contract.name], now)
    cleared = emu.record_alerts([], [contract.name], now + HOUR)

    assert facts == {contract.name: LoadFacts(T0 + timedelta(seconds=3), 0, 4, 1)}
    assert [(r.rule, r.status, r.opened_at) for r in opened] == [("dead_letter_rate", "open", now)]
    assert [(r.status, r.cleared_at) for r in cleared] == [("cleared", now + HOUR)]
    assert emu.open_alerts() == []


def test_emulator_query_of_a_missing_table_raises_missing_table(emu: BigQueryWarehouse) -> None:
    with pytest.raises(MissingTable, match="no_such_table"):
        emu.query("SELECT * FROM {dataset}.no_such_table")
