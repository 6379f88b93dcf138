"""sluice.ingest.quarantine: quarantine names, the reason document, the ingestion-log row."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

from sluice.contracts import Contract
from sluice.ingest.quarantine import (
    QUARANTINE_PREFIX,
    quarantine_details,
    quarantine_name,
    record_rejection,
)
from sluice.ingest.validation import Problem, ValidationReport
from sluice.schema import SourceRef
from sluice.settings import load_settings
from tests.sluice.ingest.upload_doubles import ingestion_rows

REPORT = ValidationReport(
    accepted=False,
    problems=(Problem("header", "expected column 'loan_id', found 'id'", 1),),
    warnings=(),
    header=("id",),
    records=3,
    bytes_read=40,
    compressed=False,
)


def test_quarantine_name_is_flat_reversible_and_keyed_by_generation() -> None:
    name = "incoming/kiva_loans/2024/01/a b%.csv"

    quarantined = quarantine_name(name, 123)

    prefix = f"{QUARANTINE_PREFIX}123/"
    assert quarantined.startswith(prefix)
    encoded = quarantined.removeprefix(prefix)
    assert "/" not in encoded and unquote(encoded) == name


def test_quarantine_details_joins_report_and_event(contracts: dict[str, Contract]) -> None:
    source = SourceRef("gs://landing/incoming/kiva_loans/a.csv", 42)

    details = quarantine_details(
        REPORT.reason or "", REPORT, contracts["kiva_loans"], "landing/x#42", source
    )

    assert details["problems"][0]["code"] == "header" and details["accepted"] is False
    assert (details["bucket"], details["object"], details["generation"]) == (
        "landing",
        "incoming/kiva_loans/a.csv",
        42,
    )
    assert details["event_key"] == "landing/x#42" and details["dataset"] == "kiva_loans"
    assert ValidationReport.from_dict(details) == REPORT


def test_record_rejection_writes_one_rejected_row_replacing_a_retry(
    contracts: dict[str, Contract],
) -> None:
    source = SourceRef("gs://landing/incoming/kiva_loans/a.csv", 42)
    started = datetime(2024, 1, 1, tzinfo=UTC)
    settings = load_settings()

    record_rejection(contracts["kiva_loans"], source, REPORT, started, settings)
    record = record_rejection(contracts["kiva_loans"], source, REPORT, started, settings)

    rows = ingestion_rows(settings)
    assert len(rows) == 1
    assert rows[0]["status"] == "rejected" and rows[0]["reason"] == REPORT.reason
    assert rows[0]["job_id"] == record.job_id and record.rows_in == 0
