"""The one load path both lanes share: parse a byte range, stage it, load it, settle the claim.

The Beam pipeline (``beam.transforms.ParseCsvFn``, ``beam.loading.LoadWarehouseFn``), the
in-function fast lane (``sluice.ingest.fast_lane``) and ``sluice ingest`` (``local.ingest``)
call these functions and nothing else, so a file gives the same rows, dead letters, lineage
and ingestion record in every lane. No Beam here: the function's archive leaves Beam out.

- ``load_job`` is the job a pipeline run of a launch request would do (name, staging);
- ``parse_range`` turns one byte range of the input into ``(kind, payload)`` pairs: typed
  ``rows`` and ``dead`` tables, or the file's ``rejected`` reason;
- ``stage_records`` parses one chunk of records that validation has already scanned (the
  chunks ``parse_range`` scans itself) and stages its tables;
- ``stage_table`` writes one table as a Parquet file in the job's staging directory;
- ``load_staged`` runs once, after every range is staged: one replacing load of every staged
  file (repeated primary keys moved to dead letters first, ``sluice.records.keys``) and the
  ingestion record, or only a ``rejected`` record for a file rejected while parsing; then it
  settles the event's claim and removes the staging directory, never before the load.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import BinaryIO

import pyarrow as pa

from sluice.contracts import Contract, HeaderMapping
from sluice.errors import ContractError, FileRejected
from sluice.ingest import staging
from sluice.ingest.launch import LaunchRequest, job_staging_dir, staging_location
from sluice.records import keys
from sluice.records.chunks import RecordChunk
from sluice.records.csvscan import open_decompressed
from sluice.records.enrich import enrichment_versions
from sluice.records.parse import (
    ParsedBatch,
    dead_letter_table,
    iter_parsed_batches,
    parse_chunk,
    read_file_header,
)
from sluice.records.splits import WHOLE_FILE, ByteRange, RangeReader
from sluice.schema import IngestionRecord, SourceRef
from sluice.settings import Settings
from sluice.warehouse import Warehouse, connected_warehouse

LOG = logging.getLogger(__name__)
ROWS, DEAD, REJECTED = "rows", "dead", "rejected"
"""The kinds of what the parse emits, as ``(kind, payload)`` pairs."""
Staged = list[tuple[str, int]]
"""Staged files as ``(path, rows)``."""


@dataclass(frozen=True)
class LoadJob:
    """One file's ingestion: what it is, where it is staged, which claim it settles."""

    contract: Contract
    source: SourceRef
    settings: Settings
    """Its ``warehouse_dataset`` is the one this file loads into (a test file: the test one)."""
    job_name: str
    """The ingestion log's job id (the Dataflow job name, or the same name in the fast lane)."""
    started_at: datetime
    staging_dir: str
    event_key: str | None = None
    """The event whose claim the load settles; None for a file ingested by hand."""
    input_path: str | None = None
    """Where the bytes are read from; default ``source.uri``."""

    @property
    def input(self) -> str:
        """Where the file's bytes are read from."""
        return self.input_path or self.source.uri


def load_job(
    request: LaunchRequest, contract: Contract, settings: Settings, *, launcher: str | None = None
) -> LoadJob:
    """The load a pipeline run of ``request`` on ``launcher`` (default settings.launcher) would
    do: same job name, staging, dataset."""
    on_dataflow = (launcher or settings.launcher) == "dataflow"
    location = staging_location(settings, on_dataflow=on_dataflow)
    return LoadJob(
        contract,
        request.source,
        replace(settings, warehouse_dataset=request.warehouse_dataset(settings)),
        job_name=request.job_name,
        started_at=request.started_at,
        staging_dir=job_staging_dir(location, request.dataset, request.job_name),
        event_key=request.event_key,
        input_path=request.input_uri,
    )


def parse_range(
    path: str,
    contract: Contract,
    source: SourceRef,
    settings: Settings,
    byte_range: ByteRange,
    *,
    ingested_at: datetime,
) -> Iterator[tuple[str, pa.Table | str]]:
    """One byte range's ``rows`` and ``dead`` tables, or the file's ``rejected`` reason.

    ``settings.chunk_bytes`` of records are parsed at a time, so memory holds one chunk."""
    from google.api_core.exceptions import NotFound

    try:
        with staging.open_source(path, source, settings, chunk_bytes=settings.chunk_bytes) as raw:
            for batch in _parsed_batches(raw, byte_range, contract, source, settings, ingested_at):
                if batch.rows.num_rows:
                    yield ROWS, batch.rows
                if batch.dead.num_rows:
                    yield DEAD, batch.dead
    except NotFound:
        # The pinned generation was replaced or deleted before the parse read it.
        exc = FileRejected(
            f"expected generation {source.generation} of {path}, found it gone "
            "(replaced or deleted before the pipeline read it)",
            code="vanished",
        )
        LOG.warning("%s: file rejected: %s", source.uri, exc)
        yield REJECTED, str(exc)
    except FileRejected as exc:
        # Retrying cannot fix the file: report it once, the load records it.
        LOG.warning("%s: file rejected: %s", source.uri, exc)
        yield REJECTED, str(exc)


def _parsed_batches(
    raw: BinaryIO,
    byte_range: ByteRange,
    contract: Contract,
    source: SourceRef,
    settings: Settings,
    ingested_at: datetime,
) -> Iterator[ParsedBatch]:
    """The range's batches; a range past the first takes the header from the file's start."""
    header = None
    if byte_range == WHOLE_FILE:
        stream: BinaryIO = open_decompressed(raw)  # the only range a gzip file has
    else:
        if not byte_range.at_file_start:
            header = read_file_header(raw, contract, max_record_bytes=settings.max_record_bytes)
        stream = io.BufferedReader(RangeReader(raw, byte_range), settings.chunk_bytes)
    return iter_parsed_batches(
        stream,
        contract,
        source,
        ingested_at=ingested_at,
        chunk_bytes=settings.chunk_bytes,
        max_record_bytes=settings.max_record_bytes,
        header=header,
        byte_offset=byte_range.start,
        first_line=byte_range.first_line,
    )


def stage_records(
    chunk: RecordChunk, mapping: HeaderMapping, job: LoadJob
) -> list[tuple[str, tuple[str, int]]]:
    """Parse one chunk of data records as ``parse_range`` parses each chunk it scans and stage
    its tables: ``(kind, (path, rows))`` for the non-empty ``rows`` and ``dead`` tables."""
    batch = parse_chunk(chunk, mapping, job.contract, job.source, ingested_at=job.started_at)
    staged = [
        (kind, stage_table(table, job.staging_dir, kind, job.settings))
        for kind, table in ((ROWS, batch.rows), (DEAD, batch.dead))
    ]
    return [(kind, one) for kind, one in staged if one is not None]


def stage_table(
    table: pa.Table, directory: str, kind: str, settings: Settings
) -> tuple[str, int] | None:
    """Stage one table as a uniquely named Parquet file: ``(path, rows)``; None when empty."""
    if table.num_rows == 0:
        return None
    path = staging.join(directory, f"{kind}-{uuid.uuid4().hex}.parquet")
    staging.write_parquet(table, path, settings)
    LOG.debug("staged %d %s to %s", table.num_rows, kind, path)
    return path, table.num_rows


def load_staged(
    job: LoadJob, staged_rows: Staged, staged_dead: Staged, rejections: list[str]
) -> IngestionRecord:
    """Load everything staged in one replacing transaction, settle the claim, remove staging;
    the ingestion record the warehouse holds."""
    with connected_warehouse(job.settings) as warehouse, warehouse.session():
        record = _load(job, warehouse, staged_rows, staged_dead, rejections)
    if job.event_key:
        # Before removing staging: a failure here retries the (idempotent) load too.
        settle_claim(job.settings, job.event_key, record)
    # Only after success: a failed load keeps its files for the retry.
    remove_staging(job.staging_dir, job.settings, expect_files=bool(staged_rows or staged_dead))
    LOG.info(
        "%s: %s, %d rows loaded, %d dead (job %s)",
        record.source_uri, record.status, record.rows_loaded, record.rows_dead, record.job_id,
    )  # fmt: skip
    return record


def _load(
    job: LoadJob,
    warehouse: Warehouse,
    staged_rows: Staged,
    staged_dead: Staged,
    rejections: list[str],
) -> IngestionRecord:
    try:
        warehouse.ensure_tables(job.contract)
    except ContractError as exc:
        # A breaking change to the table: every retry would fail the same way, so the file
        # is rejected now, with the fix in the reason (declare a table_version).
        rejections = [*rejections, str(exc)]
    if rejections:
        record = _record(job, "rejected", 0, 0, "; ".join(sorted(set(rejections))))
        warehouse.record_ingestion(record)
        return record
    staged = [*staged_rows, *staged_dead]
    if staged and not staging.exists(staged[0][0], job.settings):
        # A retried step whose earlier attempt committed, then removed the staging (a load
        # a newer generation had superseded committed its log row too).
        earlier = finished_load(warehouse, job)
        if earlier is not None:
            return earlier
    if job.contract.write == "merge":
        staged_rows, staged_dead = _repeated_keys_to_dead_letters(job, staged_rows, staged_dead)
    record = _record(job, "loaded", sum(n for _, n in staged_rows), sum(n for _, n in staged_dead))
    warehouse.load_replacing_source(
        job.contract,
        job.source,
        sorted(path for path, _ in staged_rows),
        sorted(path for path, _ in staged_dead),
        record,
    )
    # What the warehouse logged: a load overtaken by a newer generation is 'superseded'.
    return warehouse.latest_ingestion(job.source, job_name=job.job_name) or record


def finished_load(warehouse: Warehouse, job: LoadJob) -> IngestionRecord | None:
    """The ``loaded`` or ``superseded`` log row this job already committed, if any."""
    earlier = warehouse.latest_ingestion(job.source, job_name=job.job_name)
    if earlier is not None and earlier.status in ("loaded", "superseded"):
        return earlier
    return None


def _repeated_keys_to_dead_letters(
    job: LoadJob, staged_rows: Staged, staged_dead: Staged
) -> tuple[Staged, Staged]:
    """Staged files with every record whose primary key an earlier line of the file used
    moved to a dead letter (``sluice.records.keys``); unchanged without repeats."""
    settings = job.settings
    columns = [*job.contract.primary_key, keys.LINE]
    reasons = keys.repeated_keys(
        [staging.read_parquet(path, settings, columns) for path, _ in staged_rows], job.contract
    )
    if not reasons:
        return staged_rows, staged_dead
    with staging.open_source(
        job.input, job.source, settings, chunk_bytes=settings.chunk_bytes
    ) as raw:
        texts = keys.record_texts(
            open_decompressed(raw),
            job.contract,
            reasons,
            chunk_bytes=settings.chunk_bytes,
            max_record_bytes=settings.max_record_bytes,
        )
    kept: Staged = []
    for path, count in staged_rows:
        unique = keys.without_lines(staging.read_parquet(path, settings), reasons)
        if unique.num_rows == count:
            kept.append((path, count))
        elif unique.num_rows:
            # A fixed name: a retried load rewrites the same file.
            staged = staging.write_parquet(unique, f"{path}.unique.parquet", settings)
            kept.append((staged, unique.num_rows))
    lines = sorted(reasons)
    dead = dead_letter_table(
        job.source,
        job.contract,
        job.started_at,
        lines=lines,
        raw_texts=[texts.get(line, "") for line in lines],
        reasons=[reasons[line] for line in lines],
    )
    path = staging.write_parquet(
        dead, staging.join(job.staging_dir, "dead-repeated-keys.parquet"), settings
    )
    LOG.warning("%s: %d record(s) repeat a primary key; dead-lettered", job.source.uri, len(lines))
    return kept, [*staged_dead, (path, dead.num_rows)]


def _record(
    job: LoadJob, status: str, loaded: int, dead: int, reason: str | None = None
) -> IngestionRecord:
    return IngestionRecord(
        dataset=job.contract.name,
        source_uri=job.source.uri,
        source_generation=job.source.generation,
        status=status,
        rows_in=loaded + dead,
        rows_loaded=loaded,
        rows_dead=dead,
        reason=reason,
        job_id=job.job_name,
        started_at=job.started_at,
        finished_at=datetime.now(UTC),
        enrichment=enrichment_versions(job.contract) if status == "loaded" else None,
    )


def settle_claim(settings: Settings, event_key: str, record: IngestionRecord) -> None:
    """Move the event's claim to the load's outcome: ``loaded`` or ``rejected`` (with reason).

    Re-marking the same state is allowed, so a retried step repeats the write harmlessly.
    A claim that cannot take the state (gone, or settled otherwise) is logged, not raised:
    the warehouse already holds the right rows and a retry could not change the claim.
    """
    from sluice.gcs import storage_client
    from sluice.ingest.claims import SETTABLE_FIELDS, ClaimStateError, set_claim_state

    details = {
        "runner_job_id": record.job_id,  # the job that settled it, by name
        "reason": record.reason,
        "rows_in": record.rows_in,
        "rows_loaded": record.rows_loaded,
        "rows_dead": record.rows_dead,
    }
    # The claim schema decides what it stores (row counts live in the ingestion log anyway).
    settable = {k: v for k, v in details.items() if k in SETTABLE_FIELDS and v is not None}
    try:
        set_claim_state(storage_client(settings), settings, event_key, record.status, **settable)
    except ClaimStateError as exc:
        LOG.error("claim %s not marked %s: %s", event_key, record.status, exc)
        return
    LOG.info("claim %s: %s", event_key, record.status)


def remove_staging(directory: str, settings: Settings, *, expect_files: bool) -> None:
    """Delete a job's staging directory; a missing one is fine when nothing was staged."""
    from sluice.errors import TransientError

    try:
        removed = staging.remove_tree(directory, settings)
    except (OSError, TransientError) as exc:
        # The load is committed; leftover staging is litter, not a failed ingestion.
        LOG.warning("could not remove staging %s: %s", directory, exc)
        return
    if expect_files and not removed:
        LOG.warning("could not remove staging %s: no files found", directory)
