"""Table schemas, the ingestion record's accounting rule and ingest job ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from sluice.contracts import Contract
from sluice.schema import (
    IngestionRecord,
    SourceRef,
    dead_letter_schema,
    job_name_for,
    processed_schema,
)

DATAFLOW_JOB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def record(**changes: object) -> IngestionRecord:
    values = dict(
        dataset="kiva_loans",
        source_uri="gs://landing/incoming/kiva_loans/a.csv",
        source_generation=7,
        status="loaded",
        rows_in=10,
        rows_loaded=8,
        rows_dead=2,
        reason=None,
        job_id="j",
        started_at=NOW,
        finished_at=NOW,
    )
    return IngestionRecord(**{**values, **changes})


def test_processed_schema_is_contract_columns_then_lineage(contracts: dict[str, Contract]) -> None:
    schema = processed_schema(contracts["kiva_lenders"])

    assert schema.names == [
        "loan_id",
        "lenders",
        "_source_uri",
        "_source_generation",
        "_source_line",
        "_contract_version",
        "_ingested_at",
    ]
    assert str(schema.field("_ingested_at").type) == "timestamp[us, tz=UTC]"


def test_dead_letter_schema_has_file_generation_line_raw_text_reason() -> None:
    names = dead_letter_schema().names

    assert names[:5] == ["source_uri", "source_generation", "line", "raw_text", "reason"]


def test_ingestion_record_refuses_rows_that_do_not_add_up() -> None:
    with pytest.raises(ValueError, match=r"rows_in \(10\) must equal rows_loaded \(8\)"):
        record(rows_dead=1)


def test_ingestion_record_refuses_unknown_status() -> None:
    with pytest.raises(
        ValueError, match="expected one of loaded, rejected, superseded, found 'done'"
    ):
        record(status="done")


def test_ingest_job_id_is_deterministic_per_generation() -> None:
    source = SourceRef("gs://b/incoming/kiva_loans/x.csv", 7)

    first = job_name_for("kiva_loans", source)

    assert first == job_name_for("kiva_loans", source)
    assert first != job_name_for("kiva_loans", SourceRef(source.uri, 8))
    assert first.startswith("sluice-kiva-loans-")


def test_ingest_job_id_is_a_valid_dataflow_job_name_for_any_dataset() -> None:
    names = [
        job_name_for(dataset, SourceRef("/tmp/x.csv", 1))
        for dataset in ("kiva_loans", "Very_Long_Dataset_Name_" * 5, "__", "Ünïcode")
    ]

    assert all(DATAFLOW_JOB_NAME.match(name) for name in names), names
