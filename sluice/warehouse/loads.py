"""What every warehouse adapter checks before a load, and the load's deterministic key.

A load is identified by the dataset, the source object (uri and generation) and the pipeline
run that produced the staged files (the ingestion record's ``job_id`` and ``started_at``).
A retry of the same run derives the same key, so BigQuery finds the jobs it already ran
instead of loading twice; a new run of the same file gets a new key and loads afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.contracts import Contract
from sluice.errors import WarehouseError
from sluice.schema import IngestionRecord, SourceRef


def load_key(dataset: str, record: IngestionRecord) -> str:
    """A short hex digest naming one load attempt series (staging tables, job ids)."""
    parts = (
        dataset,
        record.dataset,
        record.source_uri,
        str(record.source_generation),
        record.job_id,
        record.started_at.isoformat(),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


SUPERSEDED = "superseded: a newer generation of this object is already loaded"
"""Reason of a load that arrives after a newer generation of the same object was loaded
(jobs may finish out of order): it replaces nothing and is logged with status
``superseded``, an outcome of its own: nothing failed."""


def superseded_record(record: IngestionRecord) -> IngestionRecord:
    """The log row of a load that a newer generation already superseded: nothing loaded."""
    return dataclasses.replace(
        record, status="superseded", rows_in=0, rows_loaded=0, rows_dead=0, reason=SUPERSEDED
    )


def check_load_record(contract: Contract, source: SourceRef, record: IngestionRecord) -> None:
    """Refuse a load whose ingestion record describes another dataset, file or outcome."""
    expected = (contract.name, source.uri, source.generation, "loaded")
    found = (record.dataset, record.source_uri, record.source_generation, record.status)
    if expected != found:
        raise WarehouseError(
            f"ingestion record: expected (dataset, uri, generation, status) {expected}, "
            f"found {found}"
        )


def check_counts(source: SourceRef, record: IngestionRecord, loaded: int, dead: int) -> None:
    """Refuse a load whose staged row counts disagree with its ingestion record."""
    if (loaded, dead) != (record.rows_loaded, record.rows_dead):
        raise WarehouseError(
            f"load of {source.uri}: expected {record.rows_loaded} rows and "
            f"{record.rows_dead} dead letters (from the ingestion record), found "
            f"{loaded} and {dead} in the staged files"
        )


def check_staged_files(paths: list[str], expected: pa.Schema) -> None:
    """Check that every local staged Parquet file has the expected columns and types."""
    for path in paths:
        try:
            found = pq.read_schema(path)
        except FileNotFoundError:
            raise WarehouseError(
                f"staged file {path}: expected a Parquet file, found none"
            ) from None
        except (OSError, pa.ArrowInvalid) as exc:
            raise WarehouseError(f"staged file {path}: expected Parquet, {exc}") from None
        for field in expected:
            index = found.get_field_index(field.name)
            if index < 0:
                raise WarehouseError(
                    f"staged file {path}: expected column {field.name!r}, "
                    f"found columns {found.names}"
                )
            if not _same_type(found.field(index).type, field.type):
                raise WarehouseError(
                    f"staged file {path}: column {field.name!r}: expected {field.type}, "
                    f"found {found.field(index).type}"
                )


def _same_type(found: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_timestamp(expected):
        # Parquet keeps "adjusted to UTC", not the zone's spelling ("UTC" vs "+00:00").
        return pa.types.is_timestamp(found) and found.tz is not None
    if pa.types.is_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    return found == expected
