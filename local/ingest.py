"""Ingest local files the way the cloud path does: validate at the door, then run the pipeline.

A rejected file is recorded in the ingestion log with its reason and loads nothing; an
accepted file runs ``beam.pipeline`` in this process on Beam's local runner, which stages
its rows and dead letters and loads them, replacing any earlier load of the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from functions.validation import ValidationReport, validate_stream
from sluice.contracts import Contract
from sluice.errors import ConfigError
from sluice.schema import IngestionRecord, SourceRef, ingest_job_id
from sluice.settings import Settings
from sluice.warehouse import open_warehouse


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one file."""

    path: Path
    record: IngestionRecord
    report: ValidationReport


def local_source(path: Path) -> SourceRef:
    """The source reference of a local file: absolute path, mtime in microseconds."""
    if not path.is_file():
        raise ConfigError(f"expected a readable file, found nothing at {path}")
    resolved = path.resolve()
    return SourceRef(str(resolved), resolved.stat().st_mtime_ns // 1000)


def ingest_file(path: Path, contract: Contract, settings: Settings) -> IngestOutcome:
    """Validate one file against its contract and, when accepted, run the pipeline on it."""
    started_at = datetime.now(UTC)
    source = local_source(path)
    with path.open("rb") as raw:
        report = validate_stream(raw, contract, settings)
    if not report.accepted:
        record = record_rejection(contract, source, report, started_at, settings)
        return IngestOutcome(path, record, report)

    from beam.pipeline import run  # Beam loads only when a file is actually ingested

    record = run(pipeline_argv(path, contract, source, started_at, settings))
    return IngestOutcome(path, record, report)


def pipeline_argv(
    path: Path, contract: Contract, source: SourceRef, started_at: datetime, settings: Settings
) -> list[str]:
    """The pipeline's parameters for one local file (the flex template's names)."""
    target = settings.bq_project if settings.warehouse == "bigquery" else settings.duckdb_file
    return [
        f"--input={path.resolve()}",
        f"--dataset={contract.name}",
        f"--source_uri={source.uri}",
        f"--source_generation={source.generation}",
        f"--staging_location={settings.staging_root.resolve()}",
        f"--warehouse={settings.warehouse}",
        f"--warehouse_target={target}",
        f"--warehouse_dataset={settings.dataset}",
        f"--contracts_dir={settings.contracts_dir}",
        f"--started_at={started_at.isoformat()}",
    ]


def record_rejection(
    contract: Contract,
    source: SourceRef,
    report: ValidationReport,
    started_at: datetime,
    settings: Settings,
) -> IngestionRecord:
    """Write a ``rejected`` ingestion-log row for a file that failed validation."""
    record = IngestionRecord(
        dataset=contract.name,
        source_uri=source.uri,
        source_generation=source.generation,
        status="rejected",
        rows_in=0,
        rows_loaded=0,
        rows_dead=0,
        reason=report.reason,
        job_id=ingest_job_id(contract.name, source),
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )
    warehouse = open_warehouse(settings)
    try:
        warehouse.ensure_tables(contract)
        warehouse.record_ingestion(record)
    finally:
        warehouse.close()
    return record
