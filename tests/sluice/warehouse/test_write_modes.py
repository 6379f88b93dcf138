"""Write modes on both warehouses: merge keeps the newest file's version of each key,
replace_dataset keeps the newest snapshot, whatever order files load in and however often."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from sluice.contracts import Contract
from sluice.schema import SourceRef, processed_schema
from sluice.settings import Settings
from sluice.warehouse import Warehouse
from sluice.warehouse.duckdb import DuckDBWarehouse
from sluice.warehouse.loads import SUPERSEDED

from .conftest import T0, Stager, emulator_warehouse, make_record

pytest_plugins = ["tests.gcs_fixtures"]

OLD = SourceRef("gs://landing/incoming/kiva_lenders/2024-01-01.csv", 1700000000000001)
NEW = SourceRef("gs://landing/incoming/kiva_lenders/2024-01-02.csv", 1700000000000002)


@pytest.fixture
def lenders(contracts: dict[str, Contract]) -> Contract:
    return contracts["kiva_lenders"]


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.emulator)])
def warehouse(
    request: pytest.FixtureRequest, settings: Settings, lenders: Contract
) -> Iterator[Warehouse]:
    """The DuckDB adapter, and the BigQuery adapter on the emulator."""
    if request.param == "duckdb":
        wh: Warehouse = DuckDBWarehouse(settings)
    else:
        wh = emulator_warehouse(
            request.getfixturevalue("bq_emulator"), request.getfixturevalue("gcs")
        )
    wh.ensure_tables(lenders)
    yield wh
    wh.close()


def lender_rows(contract: Contract, source: SourceRef, rows: dict[int, str]) -> pa.Table:
    """Processed rows of ``source``: loan_id -> lenders, on lines 2, 3, ..."""
    return pa.table(
        {
            "loan_id": list(rows),
            "lenders": list(rows.values()),
            "_source_uri": [source.uri] * len(rows),
            "_source_generation": [source.generation] * len(rows),
            "_source_line": list(range(2, len(rows) + 2)),
            "_contract_version": [contract.version] * len(rows),
            "_ingested_at": [T0] * len(rows),
        },
        schema=processed_schema(contract),
    )


def load(
    wh: Warehouse, contract: Contract, tmp_path: Path, source: SourceRef, rows: dict[int, str]
) -> None:
    stager = Stager(tmp_path, contract)
    stager.count = len(list(tmp_path.glob("*.parquet")))
    staged = [stager.write(lender_rows(contract, source, rows))] if rows else []
    record = make_record(contract, source, len(rows), 0)
    wh.load_replacing_source(contract, source, staged, [], record)


def table(wh: Warehouse) -> list[tuple[int, str, str]]:
    found = wh.query(
        "SELECT loan_id, lenders, _source_uri FROM {dataset}.kiva_lenders ORDER BY loan_id"
    )
    return [(r["loan_id"], r["lenders"], r["_source_uri"].rsplit("/", 1)[1]) for r in found]


def log(wh: Warehouse) -> list[tuple[str, str, int]]:
    found = wh.query(
        "SELECT source_uri, status, rows_loaded FROM {dataset}.ingestion_log ORDER BY source_uri"
    )
    return [(r["source_uri"].rsplit("/", 1)[1], r["status"], r["rows_loaded"]) for r in found]


FIRST_DAY = {1: "ann", 2: "bo", 3: "cy"}
SECOND_DAY = {2: "bo, dee", 3: "cy", 4: "eve"}
MERGED = [
    (1, "ann", "2024-01-01.csv"),
    (2, "bo, dee", "2024-01-02.csv"),
    (3, "cy", "2024-01-02.csv"),
    (4, "eve", "2024-01-02.csv"),
]


@pytest.mark.parametrize("order", ["in order", "newest first"])
def test_merge_keeps_one_row_per_key_from_the_newest_file(
    warehouse: Warehouse, lenders: Contract, tmp_path: Path, order: str
) -> None:
    """Two snapshot files of the same loans give each loan once, not twice."""
    files = [(OLD, FIRST_DAY), (NEW, SECOND_DAY)]
    for source, rows in files if order == "in order" else files[::-1]:
        load(warehouse, lenders, tmp_path, source, rows)

    assert table(warehouse) == MERGED
    assert log(warehouse) == [("2024-01-01.csv", "loaded", 3), ("2024-01-02.csv", "loaded", 3)]


def test_merge_replays_change_nothing(
    warehouse: Warehouse, lenders: Contract, tmp_path: Path
) -> None:
    load(warehouse, lenders, tmp_path, OLD, FIRST_DAY)
    load(warehouse, lenders, tmp_path, NEW, SECOND_DAY)

    load(warehouse, lenders, tmp_path, OLD, FIRST_DAY)
    load(warehouse, lenders, tmp_path, NEW, SECOND_DAY)
    load(warehouse, lenders, tmp_path, OLD, FIRST_DAY)

    assert table(warehouse) == MERGED


def test_merge_of_a_newer_generation_of_the_same_object_replaces_its_rows(
    warehouse: Warehouse, lenders: Contract, tmp_path: Path
) -> None:
    load(warehouse, lenders, tmp_path, OLD, FIRST_DAY)
    newer = dataclasses.replace(OLD, generation=OLD.generation + 10)

    load(warehouse, lenders, tmp_path, newer, {3: "cy, fay"})

    assert table(warehouse) == [(3, "cy, fay", "2024-01-01.csv")]


def test_replace_dataset_keeps_only_the_newest_snapshot(
    warehouse: Warehouse, lenders: Contract, tmp_path: Path
) -> None:
    snapshots = dataclasses.replace(lenders, write="replace_dataset", primary_key=())
    load(warehouse, snapshots, tmp_path, OLD, FIRST_DAY)
    load(warehouse, snapshots, tmp_path, NEW, {4: "eve"})

    load(warehouse, snapshots, tmp_path, OLD, FIRST_DAY)  # a late replay of the older one

    assert table(warehouse) == [(4, "eve", "2024-01-02.csv")]
    late = warehouse.query(
        "SELECT status, reason FROM {dataset}.ingestion_log WHERE source_uri = @uri",
        {"uri": OLD.uri},
    )
    assert late == [{"status": "superseded", "reason": SUPERSEDED}]


def test_append_keeps_every_file_s_rows(
    warehouse: Warehouse, lenders: Contract, tmp_path: Path
) -> None:
    appended = dataclasses.replace(lenders, write="append", primary_key=())
    load(warehouse, appended, tmp_path, OLD, FIRST_DAY)
    load(warehouse, appended, tmp_path, NEW, SECOND_DAY)
    load(warehouse, appended, tmp_path, NEW, SECOND_DAY)

    assert len(table(warehouse)) == 6
