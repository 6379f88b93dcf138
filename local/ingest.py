"""Ingest local files the way the cloud path does: validate at the door, then parse, stage, load.

A rejected file is recorded in the ingestion log with its reason and loads nothing. An
accepted file is parsed, staged and loaded by the pipeline's own Beam-free functions
(``sluice.ingest.loading``, which ``beam.pipeline`` and the fast lane call too), replacing
any earlier load of the same path, under the job name and staging directory a pipeline run
would use, so the ingestion log reads the same.

The file is read once: validation hands each chunk of records it has checked to
``sluice.ingest.chunk_staging.ChunkStager``, whose worker threads (``SLUICE_PIPELINE_WORKERS``,
default one per core) parse and stage it while validation reads on. A file validation
rejects after some chunks were staged loads nothing and its staging is removed. Beam is not
started: on a laptop its import and runner cost seconds a file and add nothing, and the
pipeline itself still runs for the local stack (``local.launcher``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from local import interrupts
from sluice.contracts import Contract
from sluice.errors import ConfigError, WarehouseError
from sluice.ingest.chunk_staging import ChunkStager
from sluice.ingest.launch import LaunchRequest
from sluice.ingest.loading import load_job, load_staged
from sluice.ingest.quarantine import record_rejection
from sluice.ingest.validation import ValidationReport, validate_stream
from sluice.schema import IngestionRecord, SourceRef
from sluice.settings import Settings
from sluice.warehouse import connected_warehouse


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
    """Validate one file against its contract while parsing and staging it; load it when
    validation accepts it, else record the rejection."""
    started_at = datetime.now(UTC)
    source = local_source(path)
    request = LaunchRequest.for_object(contract.name, source, started_at=started_at)
    job = load_job(request, contract, settings, launcher="local")
    stager = ChunkStager(job, settings.pipeline_workers or os.cpu_count() or 1)
    try:
        with path.open("rb") as raw:
            report = validate_stream(raw, contract, settings, on_records=stager.submit)
        if not report.accepted:
            record = record_rejection(contract, source, report, started_at, settings)
            return IngestOutcome(path, record, report)
        staged_rows, staged_dead = stager.staged()
        record = load_staged(job, staged_rows, staged_dead, rejections=[])
        return IngestOutcome(path, record, report)
    finally:
        # Nobody retries this run, so nothing it wrote may outlive it: a load removes its
        # staging itself; a rejection, a failure or Ctrl-C leaves staged Parquet that is
        # only litter, once the workers have stopped writing it.
        with interrupts.held():
            stager.stop()
            shutil.rmtree(job.staging_dir, ignore_errors=True)


def check_warehouse_opens(settings: Settings) -> None:
    """Open the DuckDB file before any input is read: a broken one is a setup error to fix,
    found at once, not a pipeline failure after the whole file was parsed."""
    if settings.warehouse != "duckdb":
        return  # BigQuery: reaching it is the first load's job, not a check worth a call
    try:
        with connected_warehouse(settings) as warehouse:
            warehouse.query("SELECT 1")
    except WarehouseError as exc:
        raise ConfigError(str(exc)) from exc
