"""Ingest local files the way the cloud path does: validate at the door, then run the pipeline.

A rejected file is recorded in the ingestion log with its reason and loads nothing; an
accepted file runs ``beam.pipeline`` (through ``local.pipeline``, emulator-ready) in this
process on Beam's local runner, which stages its rows and dead letters and loads them,
replacing any earlier load of the same path.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sluice.contracts import Contract
from sluice.errors import ConfigError
from sluice.ingest.launch import LaunchRequest, launch_parameters
from sluice.ingest.quarantine import record_rejection
from sluice.ingest.validation import ValidationReport, validate_stream
from sluice.schema import IngestionRecord, SourceRef
from sluice.settings import Settings


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

    from local.pipeline import run  # Beam loads only when a file is actually ingested

    request = LaunchRequest.for_object(contract.name, source, started_at=started_at)
    with tempfile.TemporaryDirectory(prefix="sluice-splits-") as scratch:
        index = report.split_index(source)
        if index is not None:
            # The split points validation found, so the pipeline parses ranges in parallel.
            index_path = Path(scratch) / "split-index.json"
            index_path.write_text(index.to_json())
            request = replace(request, split_index=str(index_path))
        params = launch_parameters(request, settings, launcher="local")
        record = run([f"--{name}={value}" for name, value in params.items()])
    return IngestOutcome(path, record, report)
