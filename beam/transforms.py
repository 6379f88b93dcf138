"""DoFns and composite transforms of the ingestion pipeline.

Every element is an Arrow table (one parsed batch of a few MB of CSV), never one Python
object per row: Beam's cost is per element, so the typing work happens on whole columns
inside ``sluice.records.parse``.

The parse emits one PCollection of ``(kind, payload)`` pairs: ``rows`` and ``dead`` tables,
or a ``rejected`` reason for a file whose header (or quoting) is rejected. ``ParsedBatches``
splits it by kind with plain ``FlatMap`` steps, not tagged outputs: Beam's DaskRunner
translates only ParDo, Create, GroupByKey and Flatten, and merges every tagged output of a
ParDo into one (so would ``Partition``, which is built on them).

The elements parsed are byte ranges of one file, planned inside the pipeline
(``ByteRanges``, ``beam.ranges.plan_ranges``): each starts at a record boundary, so workers
parse them at once and still give the rows, lines and dead letters of a serial parse. A
range past the first reads the header from the file's start. Parsing a range and staging a
table are ``sluice.ingest.loading``'s, shared with the in-function fast lane.

DoFns take their configuration in their constructors (they are pickled to workers) and make
clients in ``setup``, never at construction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PBegin, PCollection

from beam.ranges import InputFile, plan_ranges
from sluice.contracts import Contract
from sluice.gcs import storage_client
from sluice.ingest.loading import DEAD, REJECTED, ROWS, parse_range, stage_table
from sluice.records.splits import ByteRange
from sluice.schema import SourceRef
from sluice.settings import Settings

LOG = logging.getLogger(__name__)
METRICS_NAMESPACE = "sluice"


def payloads_of(item: tuple[str, Any], kind: str) -> Iterator[Any]:
    """The payload of a ``(kind, payload)`` pair when it is of ``kind``."""
    if item[0] == kind:
        yield item[1]


def _warm_storage_client(path: str, settings: Settings) -> None:
    # The process-wide client (sluice.gcs caches it): made in setup, not per element.
    if path.startswith("gs://"):
        storage_client(settings)


class PlanRangesFn(beam.DoFn):
    """Plan the byte ranges of one input file (``beam.ranges.plan_ranges``)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ranges = Metrics.counter(METRICS_NAMESPACE, "ranges_planned")

    def process(self, file: InputFile) -> Iterator[ByteRange]:
        """Every range of ``file``, in file order (a ``gs://`` file: read with the process's
        storage client, made at first use)."""
        ranges = plan_ranges(file, self._settings)
        self._ranges.inc(len(ranges))
        yield from ranges


class ParseCsvFn(beam.DoFn):
    """Parse and type one byte range of a CSV file: ``(kind, table or reason)`` pairs out."""

    def __init__(
        self,
        path: str,
        contract: Contract,
        source: SourceRef,
        *,
        settings: Settings,
        ingested_at: datetime,
        chunk_bytes: int,
        max_record_bytes: int,
    ) -> None:
        self._path = path
        self._settings = replace(
            settings, chunk_bytes=chunk_bytes, max_record_bytes=max_record_bytes
        )
        self._contract = contract
        self._source = source
        self._ingested_at = ingested_at
        self._counters = {
            ROWS: Metrics.counter(METRICS_NAMESPACE, "rows_parsed"),
            DEAD: Metrics.counter(METRICS_NAMESPACE, "dead_letters"),
            REJECTED: Metrics.counter(METRICS_NAMESPACE, "files_rejected"),
        }
        self._parsed = Metrics.counter(METRICS_NAMESPACE, "ranges_parsed")

    def setup(self) -> None:
        """Per worker process: the storage client a ``gs://`` source is read with."""
        _warm_storage_client(self._path, self._settings)

    def process(self, byte_range: ByteRange) -> Iterator[tuple[str, pa.Table | str]]:
        """Emit each batch's ``rows`` and ``dead`` tables, or the file's ``rejected`` reason
        (``sluice.ingest.loading.parse_range``, which the fast lane calls too)."""
        self._parsed.inc()
        parsed = parse_range(
            self._path, self._contract, self._source, self._settings, byte_range,
            ingested_at=self._ingested_at,
        )  # fmt: skip
        for kind, payload in parsed:
            self._counters[kind].inc(payload.num_rows if kind != REJECTED else 1)
            yield kind, payload


class StageParquetFn(beam.DoFn):
    """Write each table to its own Parquet file in the staging directory: (path, rows) out."""

    def __init__(self, directory: str, kind: str, settings: Settings) -> None:
        self._directory = directory
        self._kind = kind
        self._settings = settings

    def process(self, table: pa.Table) -> Iterator[tuple[str, int]]:
        """Stage one non-empty table under a unique name (``sluice.ingest.loading``)."""
        staged = stage_table(table, self._directory, self._kind, self._settings)
        if staged is not None:
            yield staged


class ByteRanges(beam.PTransform):
    """One input file -> its byte ranges, planned on a worker (the builder does no I/O)."""

    def __init__(self, file: InputFile, settings: Settings) -> None:
        super().__init__()
        self._file = file
        self._plan = PlanRangesFn(settings)

    def expand(self, root: PBegin) -> PCollection:
        return root | "Input" >> beam.Create([self._file]) | "Plan ranges" >> beam.ParDo(self._plan)


class Parsed(NamedTuple):
    """What ``ParsedBatches`` produces, one PCollection per kind."""

    rows: PCollection
    """Typed row tables."""
    dead: PCollection
    """Dead-letter tables."""
    rejected: PCollection
    """Reasons the file was rejected (none for an accepted file)."""


class ParsedBatches(beam.PTransform):
    """Byte ranges of one file -> typed row tables (``rows``), dead letters, rejections."""

    def __init__(
        self,
        path: str,
        contract: Contract,
        source: SourceRef,
        *,
        settings: Settings,
        ingested_at: datetime,
        chunk_bytes: int,
        max_record_bytes: int,
    ) -> None:
        super().__init__()
        self._parse = ParseCsvFn(
            path,
            contract,
            source,
            settings=settings,
            ingested_at=ingested_at,
            chunk_bytes=chunk_bytes,
            max_record_bytes=max_record_bytes,
        )

    def expand(self, ranges: PCollection) -> Parsed:
        parsed = ranges | "Parse batches" >> beam.ParDo(self._parse)
        return Parsed(
            rows=parsed | "Rows" >> beam.FlatMap(payloads_of, ROWS),
            dead=parsed | "Dead letters" >> beam.FlatMap(payloads_of, DEAD),
            rejected=parsed | "Rejections" >> beam.FlatMap(payloads_of, REJECTED),
        )


class StagedParquet(beam.PTransform):
    """Arrow tables -> (staged Parquet path, row count), one file per non-empty table."""

    def __init__(self, directory: str, kind: str, settings: Settings) -> None:
        super().__init__()
        self._stage = StageParquetFn(directory, kind, settings)

    def expand(self, tables: PCollection) -> PCollection:
        return tables | "Write Parquet" >> beam.ParDo(self._stage)
