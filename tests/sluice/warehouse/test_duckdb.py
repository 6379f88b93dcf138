"""DuckDB adapter: real DuckDB files under each test's own SLUICE_HOME."""

from __future__ import annotations

import dataclasses
import time
from datetime import date

import duckdb
import pytest

from sluice.contracts import Column, Contract
from sluice.errors import ConfigError, WarehouseError
from sluice.schema import SourceRef, processed_schema
from sluice.settings import Settings, load_settings
from sluice.warehouse import connected_warehouse, open_warehouse
from sluice.warehouse.duckdb import DuckDBWarehouse
from sluice.warehouse.loads import SUPERSEDED

from .conftest import REPLAYED_DAYS, Stager, make_record, replayed_on_other_days, sample_rows

SOURCE_A = SourceRef("gs://landing/incoming/server_logs/a.csv", 1700000000000001)
SOURCE_B = SourceRef("gs://landing/incoming/server_logs/b.csv", 1700000000000002)


def count(wh: DuckDBWarehouse, table: str, where: str = "TRUE", **params: object) -> int:
    rows = wh.query(f"SELECT COUNT(*) AS n FROM {{dataset}}.{table} WHERE {where}", params)
    return int(rows[0]["n"])


def inspect(wh: DuckDBWarehouse, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows of a DuckDB-dialect catalog query, read straight from the file."""
    with duckdb.connect(str(wh.path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def load(wh: DuckDBWarehouse, stager: Stager, source: SourceRef, rows: int, dead: int) -> None:
    contract = stager.contract
    rows_files = [stager.rows(source, rows)] if rows else []
    dead_files = [stager.dead(source, dead)] if dead else []
    record = make_record(contract, source, rows, dead)
    wh.load_replacing_source(contract, source, rows_files, dead_files, record)


def test_open_warehouse_chooses_duckdb_by_default(settings: Settings) -> None:
    assert isinstance(open_warehouse(settings), DuckDBWarehouse)


def test_duckdb_warehouse_rejects_unsafe_dataset_name(isolated_env: object) -> None:
    with pytest.raises(ConfigError, match="SLUICE_WAREHOUSE_DATASET"):
        DuckDBWarehouse(load_settings(warehouse_dataset='x"; DROP TABLE y; --'))


def test_ensure_tables_is_idempotent_and_matches_schema(
    settings: Settings, contract: Contract
) -> None:
    wh = DuckDBWarehouse(settings)

    wh.ensure_tables(contract)
    wh.ensure_tables(contract)

    assert settings.duckdb_file.exists()
    columns = inspect(
        wh,
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        settings.warehouse_dataset,
        contract.table,
    )
    assert [name for name, _ in columns] == processed_schema(contract).names
    assert dict(columns)["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    tables = inspect(wh, "SELECT table_schema, table_name FROM information_schema.tables")
    assert set(tables) == {
        ("sluice", "server_logs"),
        ("sluice", "server_logs_dead_letter"),
        ("sluice", "ingestion_log"),
    }


def test_ensure_tables_adds_columns_of_a_newer_contract(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    load(warehouse, stager, SOURCE_A, rows=2, dead=0)
    newer = dataclasses.replace(
        contract, version=2, columns=(*contract.columns, Column("region", "string", since=2))
    )

    warehouse.ensure_tables(newer)

    rows = warehouse.query("SELECT region FROM {dataset}.server_logs")
    assert rows == [{"region": None}, {"region": None}]


def test_load_replacing_source_twice_keeps_one_copy(
    warehouse: DuckDBWarehouse, stager: Stager
) -> None:
    load(warehouse, stager, SOURCE_A, rows=3, dead=2)

    load(warehouse, stager, SOURCE_A, rows=3, dead=2)

    assert count(warehouse, "server_logs") == 3
    assert count(warehouse, "server_logs_dead_letter") == 2
    assert count(warehouse, "ingestion_log") == 1


def test_load_replacing_source_replay_on_other_days_deletes_the_old_rows(
    warehouse: DuckDBWarehouse, stager: Stager, contract: Contract
) -> None:
    days = replayed_on_other_days(warehouse, contract, stager, "gs://landing/a.csv")

    assert days == REPLAYED_DAYS


def test_load_replacing_source_leaves_other_sources_alone(
    warehouse: DuckDBWarehouse, stager: Stager
) -> None:
    load(warehouse, stager, SOURCE_A, rows=3, dead=1)
    load(warehouse, stager, SOURCE_B, rows=2, dead=1)

    load(warehouse, stager, SOURCE_A, rows=1, dead=0)

    assert count(warehouse, "server_logs", "_source_uri = @u", u=SOURCE_A.uri) == 1
    assert count(warehouse, "server_logs", "_source_uri = @u", u=SOURCE_B.uri) == 2
    assert count(warehouse, "server_logs_dead_letter", "source_uri = @u", u=SOURCE_A.uri) == 0
    assert count(warehouse, "server_logs_dead_letter", "source_uri = @u", u=SOURCE_B.uri) == 1


def test_load_replacing_source_keeps_rejections_of_other_generations(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    old = SourceRef(SOURCE_A.uri, 1)
    warehouse.record_ingestion(make_record(contract, old, 0, 0, "rejected", "header: bad"))
    load(warehouse, stager, SourceRef(SOURCE_A.uri, 2), rows=2, dead=0)

    load(warehouse, stager, SourceRef(SOURCE_A.uri, 3), rows=1, dead=0)

    log = warehouse.query(
        "SELECT source_generation, status FROM {dataset}.ingestion_log ORDER BY 1"
    )
    assert log == [
        {"source_generation": 1, "status": "rejected"},
        {"source_generation": 3, "status": "loaded"},
    ]


def test_load_replacing_source_logs_rows_in_as_loaded_plus_dead(
    warehouse: DuckDBWarehouse, stager: Stager
) -> None:
    load(warehouse, stager, SOURCE_A, rows=4, dead=2)

    log = warehouse.query("SELECT rows_in, rows_loaded, rows_dead FROM {dataset}.ingestion_log")

    assert log == [{"rows_in": 6, "rows_loaded": 4, "rows_dead": 2}]
    assert count(warehouse, "server_logs") == 4
    assert count(warehouse, "server_logs_dead_letter") == 2


def test_load_replacing_source_accepts_empty_file_lists(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    load(warehouse, stager, SOURCE_A, rows=3, dead=1)

    warehouse.load_replacing_source(
        contract, SOURCE_A, [], [], make_record(contract, SOURCE_A, 0, 0)
    )

    assert count(warehouse, "server_logs") == 0
    assert count(warehouse, "server_logs_dead_letter") == 0
    assert warehouse.query("SELECT rows_in FROM {dataset}.ingestion_log") == [{"rows_in": 0}]


def test_load_replacing_source_rolls_back_when_counts_disagree(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    load(warehouse, stager, SOURCE_A, rows=3, dead=1)
    files = [stager.rows(SOURCE_A, 2)]

    with pytest.raises(WarehouseError, match="expected 5 rows"):
        warehouse.load_replacing_source(
            contract, SOURCE_A, files, [], make_record(contract, SOURCE_A, 5, 0)
        )

    assert count(warehouse, "server_logs") == 3
    assert count(warehouse, "server_logs_dead_letter") == 1
    assert warehouse.query("SELECT rows_loaded FROM {dataset}.ingestion_log") == [
        {"rows_loaded": 3}
    ]


def test_load_replacing_source_refuses_a_wrongly_typed_file(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    load(warehouse, stager, SOURCE_A, rows=3, dead=0)
    table = sample_rows(contract, SOURCE_A, 2)
    status = table.schema.get_field_index("status")
    bad = stager.write(table.set_column(status, "status", table["status"].cast("string")))

    with pytest.raises(WarehouseError, match="column 'status': expected int64, found string"):
        warehouse.load_replacing_source(
            contract, SOURCE_A, [bad], [], make_record(contract, SOURCE_A, 2, 0)
        )

    assert count(warehouse, "server_logs") == 3


def test_load_replacing_source_refuses_a_missing_file(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    load(warehouse, stager, SOURCE_A, rows=3, dead=0)
    missing = str(stager.root / "never-written.parquet")

    with pytest.raises(WarehouseError, match="found none"):
        warehouse.load_replacing_source(
            contract, SOURCE_A, [missing], [], make_record(contract, SOURCE_A, 1, 0)
        )

    assert count(warehouse, "server_logs") == 3
    assert count(warehouse, "ingestion_log") == 1


def test_load_replacing_source_refuses_a_record_of_another_file(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    files = [stager.rows(SOURCE_A, 1)]

    with pytest.raises(WarehouseError, match="ingestion record"):
        warehouse.load_replacing_source(
            contract, SOURCE_A, files, [], make_record(contract, SOURCE_B, 1, 0)
        )


def test_record_ingestion_replaces_the_same_generation_only(
    warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    first = SourceRef(SOURCE_A.uri, 1)
    warehouse.record_ingestion(make_record(contract, first, 0, 0, "rejected", "header: one"))
    warehouse.record_ingestion(make_record(contract, first, 0, 0, "rejected", "header: two"))

    warehouse.record_ingestion(
        make_record(contract, SourceRef(SOURCE_A.uri, 2), 0, 0, "rejected", "quote")
    )

    log = warehouse.query(
        "SELECT source_generation, reason FROM {dataset}.ingestion_log ORDER BY 1"
    )
    assert log == [
        {"source_generation": 1, "reason": "header: two"},
        {"source_generation": 2, "reason": "quote"},
    ]


def test_query_binds_named_parameters(warehouse: DuckDBWarehouse, stager: Stager) -> None:
    load(warehouse, stager, SOURCE_A, rows=3, dead=0)
    load(warehouse, stager, SOURCE_B, rows=5, dead=0)

    rows = warehouse.query(
        "SELECT _source_uri AS uri, COUNT(*) AS n FROM {dataset}.server_logs"
        " WHERE _source_uri = @uri AND status >= @min_status GROUP BY 1",
        {"uri": SOURCE_B.uri, "min_status": 203},
    )

    assert rows == [{"uri": SOURCE_B.uri, "n": 2}]


def test_query_computes_dates_in_utc_whatever_the_local_zone(
    warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        rows = warehouse.query("SELECT DATE(TIMESTAMP '2024-04-01 03:30:00+00') AS d")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()

    assert rows == [{"d": date(2024, 4, 1)}]


def test_run_script_runs_every_statement(warehouse: DuckDBWarehouse, stager: Stager) -> None:
    load(warehouse, stager, SOURCE_A, rows=30, dead=0)
    script = """
    CREATE OR REPLACE TABLE {cooked_dataset}.daily AS
    SELECT DATE(timestamp) AS day, COUNT(*) AS requests
    FROM {dataset}.server_logs GROUP BY day;
    CREATE OR REPLACE TABLE {cooked_dataset}.months AS
    SELECT DATE_TRUNC(day, MONTH) AS month, SUM(requests) AS requests
    FROM {cooked_dataset}.daily GROUP BY month;
    """

    warehouse.run_script(script)

    assert warehouse.query("SELECT * FROM {cooked_dataset}.daily ORDER BY day") == [
        {"day": date(2024, 3, 15), "requests": 1},
        {"day": date(2024, 3, 16), "requests": 24},
        {"day": date(2024, 3, 17), "requests": 5},
    ]
    assert warehouse.query("SELECT * FROM {cooked_dataset}.months") == [
        {"month": date(2024, 3, 1), "requests": 30}
    ]


def test_run_script_is_all_or_nothing(warehouse: DuckDBWarehouse) -> None:
    script = """
    CREATE TABLE {cooked_dataset}.first AS SELECT 1 AS x;
    SELECT * FROM {dataset}.no_such_table;
    """

    with pytest.raises(WarehouseError, match="no_such_table"):
        warehouse.run_script(script)

    tables = inspect(
        warehouse,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
        "sluice_cooked",
    )
    assert tables == []


def test_connected_warehouse_closes_after_the_block_even_on_error(settings: Settings) -> None:
    with pytest.raises(RuntimeError), connected_warehouse(settings) as warehouse:
        assert isinstance(warehouse, DuckDBWarehouse)
        raise RuntimeError("boom")

    # Closed: another process-local connection can take the write lock at once.
    with connected_warehouse(settings) as again:
        assert again.query("SELECT 1 AS one") == [{"one": 1}]


def test_load_of_an_older_generation_after_a_newer_one_replaces_nothing(
    warehouse: DuckDBWarehouse, stager: Stager
) -> None:
    newer = SourceRef(SOURCE_A.uri, SOURCE_A.generation + 10)
    load(warehouse, stager, newer, rows=3, dead=1)

    load(warehouse, stager, SOURCE_A, rows=1, dead=0)  # its job finished last

    log = inspect(
        warehouse,
        "SELECT source_generation, status, rows_loaded, reason FROM sluice.ingestion_log"
        " ORDER BY source_generation",
    )
    assert count(warehouse, "server_logs") == 3
    assert count(warehouse, "server_logs_dead_letter") == 1
    assert log == [
        (SOURCE_A.generation, "superseded", 0, SUPERSEDED),
        (newer.generation, "loaded", 3, None),
    ]


def test_query_truncates_a_date_column_to_a_date(warehouse: DuckDBWarehouse) -> None:
    # Arrange: a DATE column, which only the catalog can tell apart from a TIMESTAMP.
    warehouse.run_script("CREATE TABLE {cooked_dataset}.days AS SELECT DATE '2024-03-15' AS day")

    # Act
    rows = warehouse.query("SELECT DATE_TRUNC(day, MONTH) AS month FROM {cooked_dataset}.days")

    # Assert: BigQuery's answer, a DATE (DuckDB alone would give a TIMESTAMP).
    assert rows == [{"month": date(2024, 3, 1)}]
    assert type(rows[0]["month"]) is date


def test_session_runs_a_load_on_one_connection(
    warehouse: DuckDBWarehouse, stager: Stager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    opened = []
    connect = DuckDBWarehouse._connect
    monkeypatch.setattr(DuckDBWarehouse, "_connect", lambda wh: opened.append(1) or connect(wh))

    # Act: what load_staged does, inside one session.
    with warehouse.session():
        warehouse.ensure_tables(stager.contract)
        load(warehouse, stager, SOURCE_A, rows=3, dead=1)
        logged = warehouse.latest_ingestion(SOURCE_A)

    # Assert: one open of the file, and the committed load is there for the next connection.
    assert len(opened) == 1
    assert logged is not None and (logged.rows_loaded, logged.rows_dead) == (3, 1)
    assert count(warehouse, "server_logs") == 3
    assert len(opened) == 2
