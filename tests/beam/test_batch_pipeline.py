"""A batch job on the real pipeline: three files queued by the door, one local Beam run.

The door (``handle_object``) queues each accepted file; the third fills the batch, so its
flush launches ``python -m local.pipeline --batch gs://...`` through the LocalLauncher
against fake-gcs-server. The one run loads each file in its own replacing transaction:
its own rows and dead letters, its own ingestion-log row naming the batch's job, its own
claim settled ``loaded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from local.launcher import LocalLauncher
from sluice.ingest.door import handle_object
from sluice.settings import load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.faults.fault_helpers import DATASET, claim_of, lenders_csv, loaded_ids
from tests.sluice.ingest.upload_doubles import land

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]


@pytest.mark.emulator
@pytest.mark.slow
def test_one_run_loads_each_file_of_its_batch_with_its_own_accounting(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_BATCH_MAX_FILES", "3")
    monkeypatch.setenv("SLUICE_BATCH_MAX_AGE_SECONDS", "3600")
    files = {
        "a.csv": lenders_csv(range(1, 4)),
        "b.csv": lenders_csv(range(10, 12), bad=2),
        "c.csv": lenders_csv(range(20, 25)),
    }
    blobs = [land(gcs, data, f"incoming/{DATASET}/{name}") for name, data in files.items()]
    settings = load_settings()

    outcomes = [
        handle_object(b.bucket.name, b.name, b.generation, settings=settings) for b in blobs
    ]
    job = claim_of(gcs, blobs[0]).job_name
    exit_code = LocalLauncher(settings).wait(job, timeout=180)

    rows = {
        row["source_uri"].rsplit("/", 1)[1]: row
        for row in DuckDBWarehouse(settings).query(
            "SELECT source_uri, status, job_id, rows_in, rows_loaded, rows_dead"
            " FROM {dataset}.ingestion_log"
        )
    }
    assert [o.status for o in outcomes] == ["batched", "batched", "launched"]
    assert exit_code == 0
    assert {name: (r["rows_in"], r["rows_loaded"], r["rows_dead"]) for name, r in rows.items()} == {
        "a.csv": (3, 3, 0),
        "b.csv": (4, 2, 2),
        "c.csv": (5, 5, 0),
    }
    assert {r["job_id"] for r in rows.values()} == {job}
    assert {r["status"] for r in rows.values()} == {"loaded"}
    assert [loan for loan, _ in loaded_ids(settings)] == [1, 2, 3, 10, 11, 20, 21, 22, 23, 24]
    assert [claim_of(gcs, b).state for b in blobs] == ["loaded"] * 3
