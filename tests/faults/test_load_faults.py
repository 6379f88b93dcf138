"""Faults of the warehouse load (table rows 2a, 2b and 4b in test_faults.py's docstring).

A load that fails midway must leave the source's previous rows, dead letters and log row
exactly as they were and keep its staged files; rerunning the job loads the file once.
Staged files are written by the pipeline's own parser and staging DoFn, then broken on disk.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from beam.loading import LoadWarehouseFn
from sluice.contracts import Contract
from sluice.errors import WarehouseError
from sluice.ingest.launch import LaunchRequest
from sluice.schema import IngestionRecord
from sluice.settings import Settings, load_settings
from sluice.warehouse.bigquery import BigQueryWarehouse
from sluice.warehouse.loads import SUPERSEDED
from tests.faults.fault_helpers import (
    DATASET,
    URI,
    corrupt,
    duckdb_state,
    lenders_csv,
    loaded_ids,
    local_request,
    log_rows,
    run_in_process,
    stage,
    staging_dir,
)
from tests.sluice.warehouse.conftest import EMULATOR_PROJECT, bq_emulator  # noqa: F401

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

LOAD_FAULTS = {
    # kiva_lenders merges on loan_id: reading the staged keys finds the file broken first
    "rows-file-corrupt": (lambda rows, dead: corrupt(rows[1][0]), "expected Parquet"),
    # ... after this load's rows were inserted, while inserting its dead letters
    "dead-file-corrupt": (lambda rows, dead: corrupt(dead[0][0]), "DuckDB rolled back"),
    # the first staged file is what a retried bundle checks for a committed earlier attempt
    "rows-file-gone": (lambda rows, dead: Path(rows[0][0]).unlink(), "found none"),
}


@pytest.mark.parametrize("fault", list(LOAD_FAULTS))
def test_duckdb_load_failing_midway_keeps_the_old_rows_and_a_rerun_loads_once(
    fault: str, settings: Settings, contracts: dict[str, Contract], tmp_path: Path
) -> None:
    contract = contracts[DATASET]
    (tmp_path / "old.csv").write_bytes(lenders_csv(range(1, 6), bad=1))
    (tmp_path / "new.csv").write_bytes(lenders_csv(range(50, 90), bad=3))
    old = local_request(URI, 1000, tmp_path / "old.csv")
    new = local_request(URI, 2000, tmp_path / "new.csv")
    run_in_process(old, settings)
    before = duckdb_state(settings)
    rows, dead = stage(contract, new, settings)
    inject, message = LOAD_FAULTS[fault]
    inject(rows, dead)
    load = LoadWarehouseFn(
        contract, new.source, settings, job_name=new.job_name, started_at=new.started_at,
        staging_dir=str(staging_dir(new, settings)),
    )  # fmt: skip

    with pytest.raises(WarehouseError, match=message):
        list(load.process(None, rows, dead, []))
    after_failure = duckdb_state(settings)
    kept_staging = staging_dir(new, settings).is_dir()
    rerun = run_in_process(new, settings)

    assert len(rows) > 1 and dead
    assert after_failure == before and kept_staging
    assert (rerun.status, rerun.rows_loaded, rerun.rows_dead) == ("loaded", 40, 3)
    assert loaded_ids(settings) == [(loan_id, 2000) for loan_id in range(50, 90)]
    assert log_rows(settings) == [(2000, "loaded", 40, 3, None)]
    assert not staging_dir(new, settings).exists()


@pytest.mark.emulator
def test_bigquery_load_failing_midway_keeps_the_old_rows_and_a_retry_loads_once(
    bq_emulator: str,  # noqa: F811 - the fixture imported above
    contracts: dict[str, Contract],
    tmp_path: Path,
    gcs: GcsBuckets,  # the load slots' bucket
) -> None:
    suffix = uuid.uuid4().hex[:10]
    settings = load_settings(
        warehouse="bigquery", bq_project=EMULATOR_PROJECT, bq_endpoint=bq_emulator,
        warehouse_dataset=f"faults_{suffix}", cooked_warehouse_dataset=f"faults_cooked_{suffix}",
    )  # fmt: skip
    contract = contracts[DATASET]
    (tmp_path / "old.csv").write_bytes(lenders_csv(range(1, 6), bad=1))
    (tmp_path / "new.csv").write_bytes(lenders_csv(range(50, 60), bad=2))
    old = local_request(URI, 1000, tmp_path / "old.csv")
    new = local_request(URI, 2000, tmp_path / "new.csv")

    def load_step(request: LaunchRequest) -> LoadWarehouseFn:
        directory = str(staging_dir(request, settings))
        return LoadWarehouseFn(
            contract, request.source, settings, job_name=request.job_name,
            started_at=request.started_at, staging_dir=directory,
        )  # fmt: skip

    list(load_step(old).process(None, *stage(contract, old, settings), []))
    before = (loaded_ids(settings), log_rows(settings))
    rows, dead = stage(contract, new, settings)
    # The record the load step writes for this run, so its retry derives the same load key.
    record = IngestionRecord(
        dataset=DATASET, source_uri=URI, source_generation=2000, status="loaded", rows_in=12,
        rows_loaded=10, rows_dead=2, reason=None, job_id=new.job_name,
        started_at=new.started_at, finished_at=datetime.now(UTC),
    )  # fmt: skip
    warehouse = BigQueryWarehouse(settings, api_timeout=10, job_timeout=30)
    # Without its dead-letter table the transaction fails after deleting the source's rows.
    warehouse.client.delete_table(f"{EMULATOR_PROJECT}.{warehouse.dataset}.{DATASET}_dead_letter")

    with pytest.raises(WarehouseError):
        warehouse.load_replacing_source(
            contract, new.source, [p for p, _ in rows], [p for p, _ in dead], record
        )
    after_failure = (loaded_ids(settings), log_rows(settings))
    [retried] = load_step(new).process(None, rows, dead, [])  # ensure_tables repairs the table

    staging = f"{EMULATOR_PROJECT}.{warehouse.staging_dataset}"
    assert after_failure == before
    assert (retried.status, retried.rows_loaded, retried.rows_dead) == ("loaded", 10, 2)
    assert loaded_ids(settings) == [(loan_id, 2000) for loan_id in range(50, 60)]
    assert log_rows(settings) == [(2000, "loaded", 10, 2, None)]
    assert list(warehouse.client.list_tables(staging, timeout=10)) == []
    warehouse.close()


def test_load_step_retried_after_being_superseded_changes_nothing(
    settings: Settings, contracts: dict[str, Contract], tmp_path: Path
) -> None:
    contract = contracts[DATASET]
    (tmp_path / "new.csv").write_bytes(lenders_csv(range(50, 55)))
    (tmp_path / "old.csv").write_bytes(lenders_csv(range(1, 4)))
    newer = local_request(URI, 2000, tmp_path / "new.csv")
    older = local_request(URI, 1000, tmp_path / "old.csv")
    run_in_process(newer, settings)
    rows, dead = stage(contract, older, settings)
    load = LoadWarehouseFn(
        contract, older.source, settings, job_name=older.job_name, started_at=older.started_at,
        staging_dir=str(staging_dir(older, settings)),
    )  # fmt: skip
    [first] = load.process(None, rows, dead, [])  # the older job finished last
    state = duckdb_state(settings)

    # Its worker is lost after the load removed the staging: Beam retries the bundle.
    [again] = load.process(None, rows, dead, [])

    assert (first.status, first.reason) == ("superseded", SUPERSEDED)
    assert again == first
    assert duckdb_state(settings) == state
    assert loaded_ids(settings) == [(loan_id, 2000) for loan_id in range(50, 55)]
