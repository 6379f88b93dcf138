"""Contract versioning against a real DuckDB file: additive changes in place, breaking refused."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sluice.contracts import Column, Contract
from sluice.errors import ContractError, PermanentError
from sluice.records.parse import iter_parsed_batches
from sluice.schema import SourceRef, table_columns
from sluice.warehouse.duckdb import DuckDBWarehouse
from sluice.warehouse.evolution import columns_to_add

from .conftest import Stager, make_record

OLD = SourceRef("gs://landing/incoming/server_logs/old.csv", 1700000000000001)
NEW = SourceRef("gs://landing/incoming/server_logs/new.csv", 1700000000000002)
OLD_LAYOUT = SourceRef("gs://landing/incoming/server_logs/late-old.csv", 1700000000000003)


def with_region(contract: Contract) -> Contract:
    """Version 2 of ``contract``: one new optional column."""
    region = Column("region", "string", required=False, since=2)
    return dataclasses.replace(contract, version=2, columns=(*contract.columns, region))


def with_status_as(contract: Contract, kind: str, **changes: object) -> Contract:
    """Version 2 of ``contract`` with the ``status`` column retyped."""
    columns = tuple(
        dataclasses.replace(c, type=kind) if c.name == "status" else c for c in contract.columns
    )
    return dataclasses.replace(contract, version=2, columns=columns, **changes)


def load_staged(
    wh: DuckDBWarehouse, contract: Contract, source: SourceRef, table: pa.Table
) -> None:
    stager = Stager(wh.path.parent, contract)
    record = make_record(contract, source, table.num_rows, 0)
    wh.load_replacing_source(contract, source, [stager.write(table)], [], record)


def load_rows(wh: DuckDBWarehouse, stager: Stager, source: SourceRef, count: int) -> None:
    record = make_record(stager.contract, source, count, 0)
    wh.load_replacing_source(stager.contract, source, [stager.rows(source, count)], [], record)


def parse_csv(text: str, contract: Contract, source: SourceRef) -> pa.Table:
    """The processed rows of a whole CSV file, as the pipeline types them."""
    batches = list(
        iter_parsed_batches(
            io.BytesIO(text.encode()),
            contract,
            source,
            ingested_at=datetime(2024, 3, 16, tzinfo=UTC),
            chunk_bytes=1 << 16,
            max_record_bytes=1 << 16,
        )
    )
    assert all(batch.dead.num_rows == 0 for batch in batches)
    return pa.concat_tables([batch.rows for batch in batches])


def by_source(wh: DuckDBWarehouse) -> list[dict[str, object]]:
    """Rows, contract version and non-NULL regions of each source in server_logs."""
    return wh.query(
        "SELECT _source_uri AS uri, _contract_version AS version, COUNT(*) AS n,"
        " COUNT(region) AS regions FROM {dataset}.server_logs GROUP BY 1, 2 ORDER BY 1"
    )


def test_ensure_tables_additive_change_loads_old_and_new_files_into_one_table(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    load_rows(warehouse, stager, OLD, 3)
    newer = with_region(contract)
    values = {
        "timestamp": "2024-03-16T10:00:00Z",
        "method": "GET",
        "status": "200",
        "bytes_sent": "5",
        "latency_ms": "1.5",
    }
    # A file of the old layout: every version-1 column, no 'region' in the header.
    old_layout = ",".join(contract.column_names) + "\n"
    old_layout += ",".join(values.get(name, "x") for name in contract.column_names) + "\n"

    warehouse.ensure_tables(newer)
    stager.contract = newer
    load_rows(warehouse, stager, NEW, 2)
    load_staged(warehouse, newer, OLD_LAYOUT, parse_csv(old_layout, newer, OLD_LAYOUT))

    assert by_source(warehouse) == [
        {"uri": OLD_LAYOUT.uri, "version": 2, "n": 1, "regions": 0},
        {"uri": NEW.uri, "version": 2, "n": 2, "regions": 2},
        {"uri": OLD.uri, "version": 1, "n": 3, "regions": 0},
    ]
    log = warehouse.query("SELECT SUM(rows_loaded) AS n FROM {dataset}.ingestion_log")
    assert log == [{"n": 6}]


def test_ensure_tables_refuses_a_type_change_and_keeps_the_table(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    load_rows(warehouse, stager, OLD, 3)

    with pytest.raises(ContractError) as caught:
        warehouse.ensure_tables(with_status_as(contract, "string"))

    assert str(caught.value) == (
        "table sluice.server_logs: contract 'server_logs' version 2 makes a breaking change: "
        "column 'status' is integer in the table, string in the contract; "
        "declare table_version: 2 in the contract to start a new table"
    )
    assert isinstance(caught.value, PermanentError)
    rows = warehouse.query("SELECT MIN(status) AS low, COUNT(*) AS n FROM {dataset}.server_logs")
    assert rows == [{"low": 200, "n": 3}]


def test_ensure_tables_with_a_new_table_version_starts_a_new_table(
    warehouse: DuckDBWarehouse, contract: Contract, stager: Stager
) -> None:
    load_rows(warehouse, stager, OLD, 3)
    retyped = with_status_as(contract, "string", table_version=2)

    warehouse.ensure_tables(retyped)
    stager.contract = retyped
    load_rows(warehouse, stager, NEW, 2)

    statuses = warehouse.query("SELECT status FROM {dataset}.server_logs_v2 ORDER BY 1")
    assert statuses == [{"status": "status-0"}, {"status": "status-1"}]
    old = warehouse.query("SELECT COUNT(*) AS n FROM {dataset}.server_logs")
    assert old == [{"n": 3}]


def test_ensure_tables_refuses_a_removed_column(
    warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    fewer = dataclasses.replace(
        contract, version=2, columns=tuple(c for c in contract.columns if c.name != "client_ip")
    )

    with pytest.raises(
        ContractError,
        match=r"column 'client_ip' \(string\) is in the table but not in the contract; "
        "declare table_version: 2",
    ):
        warehouse.ensure_tables(fewer)


def test_columns_to_add_adds_missing_lineage_and_ignores_unknown_warehouse_types(
    contract: Contract,
) -> None:
    existing = dict(table_columns(contract)[:-1])
    existing["_source_line"] = "INTERVAL"

    added = columns_to_add(contract, "sluice.server_logs", existing)

    assert added == [("_ingested_at", "timestamp")]


def test_columns_to_add_names_the_next_table_version_and_every_problem(
    contract: Contract,
) -> None:
    later = dataclasses.replace(contract, table_version=3)
    existing = {**dict(table_columns(later)), "status": "STRUCT", "legacy": "float"}

    with pytest.raises(ContractError) as caught:
        columns_to_add(later, "sluice.server_logs_v3", existing)

    message = str(caught.value)
    assert "column 'status' is STRUCT in the table, integer in the contract" in message
    assert "column 'legacy' (float) is in the table but not in the contract" in message
    assert message.endswith("declare table_version: 4 in the contract to start a new table")
