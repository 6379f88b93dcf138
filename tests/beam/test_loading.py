"""The load step on its own: one replacing load, staging removal, retried bundles."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest

from beam.loading import LoadWarehouseFn
from beam.transforms import StageParquetFn
from sluice.ingest.claims import claim_event, read_claim, set_claim_state
from sluice.ingest.loading import remove_staging
from sluice.records.parse import iter_parsed_batches
from sluice.schema import SourceRef
from sluice.settings import Settings, load_settings
from tests.beam.conftest import SAMPLE_DEAD_LINES, SAMPLE_GOOD_IDS, SAMPLE_LOANS

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

STARTED_AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SOURCE = SourceRef("gs://landing/incoming/tiny_loans/loans.csv", 1732443303123456)
CLAIM_KEY = "landing/incoming/tiny_loans/loans.csv#1732443303123456"


def staged_sample(contract, staging: Path) -> tuple[list, list]:
    """SAMPLE_LOANS parsed and staged as the pipeline would: (rows files, dead files)."""
    rows, dead = [], []
    batches = iter_parsed_batches(
        io.BytesIO(SAMPLE_LOANS.encode()),
        contract,
        SOURCE,
        ingested_at=STARTED_AT,
        chunk_bytes=128,
        max_record_bytes=4096,
    )
    for batch in batches:
        rows += StageParquetFn(str(staging), "rows", load_settings()).process(batch.rows)
        dead += StageParquetFn(str(staging), "dead", load_settings()).process(batch.dead)
    return rows, dead


def loader(
    contract, settings: Settings, staging: Path, event_key: str | None = None
) -> LoadWarehouseFn:
    return LoadWarehouseFn(
        contract,
        SOURCE,
        settings,
        job_name="job-1",
        started_at=STARTED_AT,
        staging_dir=str(staging),
        event_key=event_key,
    )


def launched_claim(gcs: GcsBuckets, settings: Settings) -> None:
    """The claim as the function leaves it: claimed by the event, then launched."""
    claim_event(
        gcs.client,
        settings,
        CLAIM_KEY,
        bucket="landing",
        name="incoming/tiny_loans/loans.csv",
        generation=SOURCE.generation,
        dataset="tiny_loans",
    )
    set_claim_state(gcs.client, settings, CLAIM_KEY, "launched", runner_job_id="job-1")


def test_load_warehouse_replaces_source_and_removes_staging(
    tiny_contract, settings: Settings, tmp_path: Path
) -> None:
    staging = tmp_path / "staging" / "tiny_loans" / "job-1"
    rows, dead = staged_sample(tiny_contract, staging)

    [record] = loader(tiny_contract, settings, staging).process(None, rows, dead, [])

    good, bad = len(SAMPLE_GOOD_IDS), len(SAMPLE_DEAD_LINES)
    assert (record.status, record.rows_loaded, record.rows_dead) == ("loaded", good, bad)
    assert len(rows) > 1  # several staged batches, one load
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sluice.tiny_loans").fetchone() == (good,)
    assert not staging.exists()


def test_load_warehouse_retried_after_commit_returns_the_committed_record(
    tiny_contract, settings: Settings, tmp_path: Path
) -> None:
    staging = tmp_path / "staging" / "tiny_loans" / "job-1"
    rows, dead = staged_sample(tiny_contract, staging)
    load = loader(tiny_contract, settings, staging)
    [first] = load.process(None, rows, dead, [])

    # The same bundle again (a worker lost after the commit): its staging is gone.
    [again] = load.process(None, rows, dead, [])

    assert again == first
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM sluice.tiny_loans").fetchone()
    assert loaded == (len(SAMPLE_GOOD_IDS),)


def test_load_warehouse_records_rejection_without_loading(
    tiny_contract, settings: Settings, tmp_path: Path
) -> None:
    staging = tmp_path / "staging" / "tiny_loans" / "job-1"
    rows, dead = staged_sample(tiny_contract, staging)
    reason = "line 9: quoted field opened here is never closed"

    [record] = loader(tiny_contract, settings, staging).process(None, rows, dead, [reason])

    assert (record.status, record.rows_in, record.reason) == ("rejected", 0, reason)
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM sluice.tiny_loans").fetchone() == (0,)
        assert con.execute("SELECT status FROM sluice.ingestion_log").fetchall() == [("rejected",)]
    assert not staging.exists()


def test_remove_staging_deletes_directory_and_tolerates_missing(
    tmp_path: Path, settings: Settings
) -> None:
    staging = tmp_path / "staging" / "job"
    staging.mkdir(parents=True)
    (staging / "rows-1.parquet").write_bytes(b"x")

    remove_staging(str(staging), settings, expect_files=True)
    remove_staging(str(staging), settings, expect_files=False)

    assert not staging.exists()
    assert staging.parent.exists()


def test_load_warehouse_marks_the_claim_loaded(
    tiny_contract, gcs: GcsBuckets, tmp_path: Path
) -> None:
    settings = load_settings()
    launched_claim(gcs, settings)
    staging = tmp_path / "staging" / "tiny_loans" / "job-1"
    rows, dead = staged_sample(tiny_contract, staging)
    load = loader(tiny_contract, settings, staging, event_key=CLAIM_KEY)

    [record] = load.process(None, rows, dead, [])
    [again] = load.process(None, rows, dead, [])  # a retried bundle settles it again

    claim = read_claim(gcs.client, settings, CLAIM_KEY)
    assert (record.status, again) == ("loaded", record)
    assert (claim.state, claim.runner_job_id, claim.reason) == ("loaded", "job-1", None)
    assert claim.updated_at > STARTED_AT


def test_load_warehouse_marks_a_rejected_file_claim_rejected(
    tiny_contract, gcs: GcsBuckets, tmp_path: Path
) -> None:
    settings = load_settings()
    launched_claim(gcs, settings)
    staging = tmp_path / "staging" / "tiny_loans" / "job-1"
    reason = "line 9: quoted field opened here is never closed"

    [record] = loader(tiny_contract, settings, staging, CLAIM_KEY).process(None, [], [], [reason])

    claim = read_claim(gcs.client, settings, CLAIM_KEY)
    assert record.status == "rejected"
    assert (claim.state, claim.reason) == ("rejected", reason)


def test_load_warehouse_logs_a_claim_that_cannot_become_loaded(
    tiny_contract, gcs: GcsBuckets, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings()
    launched_claim(gcs, settings)
    set_claim_state(gcs.client, settings, CLAIM_KEY, "rejected", reason="quarantined")
    staging = tmp_path / "staging" / "tiny_loans" / "job-1"
    rows, dead = staged_sample(tiny_contract, staging)

    with caplog.at_level(logging.ERROR, logger="sluice.ingest.loading"):
        [record] = loader(tiny_contract, settings, staging, CLAIM_KEY).process(None, rows, dead, [])

    assert record.status == "loaded"  # the rows are in; the claim keeps its final state
    assert read_claim(gcs.client, settings, CLAIM_KEY).state == "rejected"
    assert "not marked loaded" in caplog.text and "'rejected'" in caplog.text


def test_load_warehouse_without_a_claim_never_touches_storage(
    tiny_contract, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_storage(_settings: Settings) -> None:
        raise AssertionError("storage_client called without a claim")

    monkeypatch.setattr("sluice.gcs.storage_client", no_storage)
    staging = tmp_path / "staging" / "tiny_loans" / "job-1"
    rows, dead = staged_sample(tiny_contract, staging)

    [record] = loader(tiny_contract, settings, staging).process(None, rows, dead, [])

    assert record.status == "loaded"
