"""The "Load warehouse" step: one replacing load of every staged file, then the log row.

It runs once per file, after all staging, so the warehouse sees the whole file in one
transaction or nothing. What it loads arrives as ONE side input of ``(kind, payload)``
pairs (staged rows and dead letters as ``(path, rows)``, rejections as reasons): on runners
that compute each side input from scratch (Beam's DaskRunner does), three side inputs would
parse the file three times. A file rejected while parsing (bad header, unterminated quote)
loads nothing: only its ``rejected`` log row is written.
The staging directory is removed after a successful load, never before. With an event key
(the event that launched this run) the step then settles the claim: ``loaded`` with the row
counts, or ``rejected`` with the reason, so the function's side sees how the file ended.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import AsList, PBegin, PCollection

from beam.ranges import open_source
from beam.transforms import DEAD, REJECTED, ROWS, tagged, write_parquet
from sluice.contracts import Contract
from sluice.errors import ContractError, WarehouseError
from sluice.gcs import is_local_path
from sluice.records import keys
from sluice.records.csvscan import open_decompressed
from sluice.records.enrich import enrichment_versions
from sluice.records.parse import dead_letter_table
from sluice.schema import IngestionRecord, SourceRef
from sluice.settings import Settings
from sluice.warehouse import Warehouse, connected_warehouse

LOG = logging.getLogger(__name__)


class LoadWarehouseFn(beam.DoFn):
    """Load every staged file in one replacing transaction and write the ingestion record."""

    def __init__(
        self,
        contract: Contract,
        source: SourceRef,
        settings: Settings,
        *,
        job_name: str,
        started_at: datetime,
        staging_dir: str,
        event_key: str | None = None,
        input_path: str | None = None,
    ) -> None:
        self._contract = contract
        self._source = source
        self._settings = settings
        self._job_name = job_name
        self._started_at = started_at
        self._staging_dir = staging_dir
        self._event_key = event_key
        self._input_path = input_path or source.uri
        """Where the file's bytes are read from when repeated keys need their text."""

    def process(
        self,
        _trigger: object,
        staged_rows: list[tuple[str, int]],
        staged_dead: list[tuple[str, int]],
        rejections: list[str],
    ) -> Iterator[IngestionRecord]:
        """Runs once, after all staging: the arguments hold every staged file."""
        with connected_warehouse(self._settings) as warehouse:
            record = self._load(warehouse, staged_rows, staged_dead, rejections)
        if self._event_key:
            # Before removing staging: a failure here retries the (idempotent) load too.
            settle_claim(self._settings, self._event_key, record)
        # Only after success: a failed load keeps its files for the retried bundle.
        remove_staging(self._staging_dir, expect_files=bool(staged_rows or staged_dead))
        LOG.info(
            "%s: %s, %d rows loaded, %d dead (job %s)",
            record.source_uri,
            record.status,
            record.rows_loaded,
            record.rows_dead,
            record.job_id,
        )
        yield record

    def _load(
        self,
        warehouse: Warehouse,
        staged_rows: list[tuple[str, int]],
        staged_dead: list[tuple[str, int]],
        rejections: list[str],
    ) -> IngestionRecord:
        try:
            warehouse.ensure_tables(self._contract)
        except ContractError as exc:
            # A breaking change to the table: every retry would fail the same way, so the
            # file is rejected now, with the fix in the reason (declare a table_version).
            rejections = [*rejections, str(exc)]
        if rejections:
            record = self._record("rejected", 0, 0, "; ".join(sorted(set(rejections))))
            warehouse.record_ingestion(record)
            return record
        staged = [*staged_rows, *staged_dead]
        if staged and not FileSystems.exists(staged[0][0]):
            # A retried bundle whose earlier attempt committed, then removed the staging
            # (a load a newer generation had superseded committed its log row too).
            earlier = find_ingestion_record(warehouse, self._source, self._job_name)
            if earlier is not None and earlier.status in ("loaded", "superseded"):
                return earlier
        if self._contract.write == "merge":
            staged_rows, staged_dead = self._repeated_keys_to_dead_letters(staged_rows, staged_dead)
        record = self._record(
            "loaded", sum(n for _, n in staged_rows), sum(n for _, n in staged_dead)
        )
        warehouse.load_replacing_source(
            self._contract,
            self._source,
            sorted(path for path, _ in staged_rows),
            sorted(path for path, _ in staged_dead),
            record,
        )
        # What the warehouse logged: a load overtaken by a newer generation is 'superseded'.
        return find_ingestion_record(warehouse, self._source, self._job_name) or record

    def _repeated_keys_to_dead_letters(
        self, staged_rows: list[tuple[str, int]], staged_dead: list[tuple[str, int]]
    ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """Staged files with every record whose primary key an earlier line of the file
        used moved to a dead letter (``sluice.records.keys``); unchanged without repeats."""
        columns = [*self._contract.primary_key, keys.LINE]
        reasons = keys.repeated_keys(
            [_read_parquet(path, columns) for path, _ in staged_rows], self._contract
        )
        if not reasons:
            return staged_rows, staged_dead
        with open_source(
            self._input_path, self._source, self._settings, chunk_bytes=self._settings.chunk_bytes
        ) as raw:
            texts = keys.record_texts(
                open_decompressed(raw),
                self._contract,
                reasons,
                chunk_bytes=self._settings.chunk_bytes,
                max_record_bytes=self._settings.max_record_bytes,
            )
        kept: list[tuple[str, int]] = []
        for path, count in staged_rows:
            rows = _read_parquet(path)
            unique = keys.without_lines(rows, reasons)
            if unique.num_rows == count:
                kept.append((path, count))
            elif unique.num_rows:
                # A fixed name: a retried load step rewrites the same file.
                kept.append((write_parquet(unique, f"{path}.unique.parquet"), unique.num_rows))
        lines = sorted(reasons)
        dead = dead_letter_table(
            self._source,
            self._contract,
            self._started_at,
            lines=lines,
            raw_texts=[texts.get(line, "") for line in lines],
            reasons=[reasons[line] for line in lines],
        )
        path = write_parquet(
            dead, FileSystems.join(self._staging_dir, "dead-repeated-keys.parquet")
        )
        LOG.warning(
            "%s: %d record(s) repeat a primary key; dead-lettered", self._source.uri, len(lines)
        )
        return kept, [*staged_dead, (path, dead.num_rows)]

    def _record(
        self, status: str, loaded: int, dead: int, reason: str | None = None
    ) -> IngestionRecord:
        return IngestionRecord(
            dataset=self._contract.name,
            source_uri=self._source.uri,
            source_generation=self._source.generation,
            status=status,
            rows_in=loaded + dead,
            rows_loaded=loaded,
            rows_dead=dead,
            reason=reason,
            job_id=self._job_name,
            started_at=self._started_at,
            finished_at=datetime.now(UTC),
            enrichment=enrichment_versions(self._contract) if status == "loaded" else None,
        )


class LoadEverythingStagedFn(beam.DoFn):
    """``LoadWarehouseFn`` fed by one side input of ``(kind, payload)`` pairs."""

    def __init__(self, load: LoadWarehouseFn) -> None:
        self._load = load

    def process(self, trigger: object, staged: list[tuple[str, Any]]) -> Iterator[IngestionRecord]:
        """Split what was staged by kind and load it."""
        yield from self._load.process(trigger, *split_staged(staged))


def split_staged(
    staged: Iterable[tuple[str, Any]],
) -> tuple[list[tuple[str, int]], list[tuple[str, int]], list[str]]:
    """``(kind, payload)`` pairs -> (staged rows, staged dead letters, rejection reasons)."""
    by_kind: dict[str, list[Any]] = {ROWS: [], DEAD: [], REJECTED: []}
    for kind, payload in staged:
        by_kind[kind].append(payload)
    return by_kind[ROWS], by_kind[DEAD], by_kind[REJECTED]


def _read_parquet(path: str, columns: list[str] | None = None) -> pa.Table:
    """A staged file (or some of its columns); a missing or broken one is a WarehouseError,
    as the adapters' own check of staged files would report it."""
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            return pq.read_table(stream, columns=columns)
    except (BeamIOError, FileNotFoundError):
        raise WarehouseError(f"staged file {path}: expected a Parquet file, found none") from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise WarehouseError(f"staged file {path}: expected Parquet, {exc}") from None


def find_ingestion_record(
    warehouse: Warehouse, source: SourceRef, job_name: str
) -> IngestionRecord | None:
    """The latest ingestion-log row of this source generation written by the job ``job_name``."""
    return warehouse.latest_ingestion(source, job_name=job_name)


def settle_claim(settings: Settings, event_key: str, record: IngestionRecord) -> None:
    """Move the event's claim to the load's outcome: ``loaded`` or ``rejected`` (with reason).

    Re-marking the same state is allowed, so a retried bundle repeats the write harmlessly.
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


def remove_staging(directory: str, *, expect_files: bool) -> None:
    """Delete a job's staging directory (recursively); a missing one is fine when empty."""
    # GCS deletes a "directory" recursively only with a trailing slash; the local
    # filesystem then deletes just the files inside, and removes the tree without one.
    target = directory.rstrip("/")
    if not is_local_path(target):
        target += "/"
    try:
        FileSystems.delete([target])
    except BeamIOError as exc:
        # The load is committed; leftover staging is litter, not a failed ingestion.
        level = logging.WARNING if expect_files else logging.DEBUG
        LOG.log(level, "could not remove staging %s: %s", directory, exc)


class IngestionRecords(beam.PTransform):
    """The single ingestion record of this file, written after loading the staged files."""

    def __init__(
        self,
        load: LoadWarehouseFn,
        staged_rows: PCollection,
        staged_dead: PCollection,
        rejections: PCollection,
    ) -> None:
        super().__init__()
        self._load = load
        self._staged = (staged_rows, staged_dead, rejections)

    def expand(self, root: PBegin) -> PCollection:
        rows, dead, rejected = self._staged
        staged = (
            rows | "Tag rows" >> beam.Map(tagged, ROWS),
            dead | "Tag dead letters" >> beam.Map(tagged, DEAD),
            rejected | "Tag rejections" >> beam.Map(tagged, REJECTED),
        ) | "Everything staged" >> beam.Flatten()
        return (
            root
            | "Once" >> beam.Create([None])
            | "Load staged files" >> beam.ParDo(LoadEverythingStagedFn(self._load), AsList(staged))
        )
