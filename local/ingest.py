"""Ingest local files the way the cloud path does: validate at the door, then run the pipeline.

A rejected file is recorded in the ingestion log with its reason and loads nothing; an
accepted file runs ``beam.pipeline`` (through ``local.pipeline``, emulator-ready) in this
process on Beam's local runner, which stages its rows and dead letters and loads them,
replacing any earlier load of the same path.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from local import interrupts
from sluice.contracts import Contract
from sluice.errors import ConfigError, WarehouseError
from sluice.ingest.launch import LaunchRequest, launch_parameters
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
    """Validate one file against its contract and, when accepted, run the pipeline on it."""
    started_at = datetime.now(UTC)
    source = local_source(path)
    with path.open("rb") as raw:
        report = validate_stream(raw, contract, settings)
    if not report.accepted:
        record = record_rejection(contract, source, report, started_at, settings)
        return IngestOutcome(path, record, report)

    # Beam loads only when a file is actually ingested.
    from local.pipeline import run, wait_for_running_bundles

    request = LaunchRequest.for_object(contract.name, source, started_at=started_at)
    params = launch_parameters(request, settings, launcher="local")
    # beam.options.PipelineParams.staging_dir: <staging_location>/<dataset>/<job_name>
    staging = Path(params["staging_location"], request.dataset, request.job_name)
    scratch = Path(tempfile.mkdtemp(prefix="sluice-splits-"))
    try:
        index = report.split_index(source)
        if index is not None:
            # The split points validation found, so the pipeline parses ranges in parallel.
            index_path = scratch / "split-index.json"
            index_path.write_text(index.to_json())
            params["split_index"] = str(index_path)
        record = run([f"--{name}={value}" for name, value in params.items()])
    except BaseException:  # a failure or Ctrl-C: the cleanup below must come after the workers
        wait_for_running_bundles()
        raise
    finally:
        # Nobody retries this run, so nothing it wrote may outlive it: a load removes its
        # staging itself, a failure or Ctrl-C leaves staged Parquet that is only litter.
        with interrupts.held():
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
    return IngestOutcome(path, record, report)


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
