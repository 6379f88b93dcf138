"""DoFns and composite transforms of the ingestion pipeline.

Every element is an Arrow table (one parsed batch of a few MB of CSV), never one Python
object per row: Beam's cost is per element, so the typing work happens on whole columns
inside ``sluice.records.parse``. Bad rows leave through the ``dead`` output; a file whose header
(or quoting) is rejected leaves through ``rejected`` with its reason.

The elements parsed are byte ranges of one file (``beam.ranges.plan_ranges``): each starts
at a record boundary, so workers parse them at once and still give the rows, lines and dead
letters of a serial parse. A range past the first reads the header from the file's start.
"""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PCollection, TaggedOutput

from beam.ranges import open_source
from sluice.contracts import Contract
from sluice.errors import FileRejected
from sluice.records.csvscan import open_decompressed
from sluice.records.parse import ParsedBatch, iter_parsed_batches, read_file_header
from sluice.records.splits import WHOLE_FILE, ByteRange, RangeReader
from sluice.schema import SourceRef

LOG = logging.getLogger(__name__)
METRICS_NAMESPACE = "sluice"
ROWS, DEAD, REJECTED = "rows", "dead", "rejected"


def skip_credential_lookup_for_emulator() -> None:
    """Make Beam's GCS client connect anonymously at once (for fake-gcs-server).

    Beam's GCS filesystem always asks ``google.auth.default()`` first and retries a failed
    lookup with backoff for 20-30 s; ``--no_auth`` does not reach it. Against an emulator
    credentials are pointless, so this fills Beam's credential cache with "none", which is
    exactly what Beam caches itself after the slow lookup fails.
    """
    from apache_beam.internal.gcp import auth

    cache = auth._Credentials
    with cache._credentials_lock:
        if not cache._credentials_init:
            cache._credentials = None
            cache._credentials_init = True


class ParseCsvFn(beam.DoFn):
    """Parse and type one byte range of a CSV file: row tables out, dead-letter tables aside."""

    def __init__(
        self,
        path: str,
        contract: Contract,
        source: SourceRef,
        *,
        ingested_at: datetime,
        chunk_bytes: int,
        max_record_bytes: int,
    ) -> None:
        self._path = path
        self._contract = contract
        self._source = source
        self._ingested_at = ingested_at
        self._chunk_bytes = chunk_bytes
        self._max_record_bytes = max_record_bytes
        self._rows = Metrics.counter(METRICS_NAMESPACE, "rows_parsed")
        self._dead = Metrics.counter(METRICS_NAMESPACE, "dead_letters")
        self._rejected = Metrics.counter(METRICS_NAMESPACE, "files_rejected")

    def setup(self) -> None:
        """Per worker process: no credential wait when reading from a GCS emulator."""
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            skip_credential_lookup_for_emulator()

    def process(self, byte_range: ByteRange) -> Iterator[pa.Table | TaggedOutput]:
        """Emit each batch's rows (main), dead letters (``dead``) or a rejection (``rejected``)."""
        from google.api_core.exceptions import NotFound

        try:
            with open_source(self._path, self._source, chunk_bytes=self._chunk_bytes) as raw:
                for batch in self._parse(raw, byte_range):
                    if batch.rows.num_rows:
                        self._rows.inc(batch.rows.num_rows)
                        yield batch.rows
                    if batch.dead.num_rows:
                        self._dead.inc(batch.dead.num_rows)
                        yield TaggedOutput(DEAD, batch.dead)
        except NotFound:
            # The pinned generation was replaced or deleted before the pipeline read it.
            exc = FileRejected(
                f"expected generation {self._source.generation} of {self._path}, found it gone "
                "(replaced or deleted before the pipeline read it)",
                code="vanished",
            )
            LOG.warning("%s: file rejected: %s", self._source.uri, exc)
            self._rejected.inc()
            yield TaggedOutput(REJECTED, str(exc))
        except FileRejected as exc:
            # Retrying cannot fix the file: report it once, the load step records it.
            LOG.warning("%s: file rejected: %s", self._source.uri, exc)
            self._rejected.inc()
            yield TaggedOutput(REJECTED, str(exc))

    def _parse(self, raw: BinaryIO, byte_range: ByteRange) -> Iterator[ParsedBatch]:
        """The range's batches; a range past the first takes the header from the file's start."""
        sizes = {"chunk_bytes": self._chunk_bytes, "max_record_bytes": self._max_record_bytes}
        if byte_range == WHOLE_FILE:
            stream, header = open_decompressed(raw), None  # the only range a gzip file has
        else:
            header = None
            if not byte_range.at_file_start:
                header = read_file_header(
                    raw, self._contract, max_record_bytes=self._max_record_bytes
                )
            stream = io.BufferedReader(RangeReader(raw, byte_range), self._chunk_bytes)
        return iter_parsed_batches(
            stream,
            self._contract,
            self._source,
            ingested_at=self._ingested_at,
            header=header,
            byte_offset=byte_range.start,
            first_line=byte_range.first_line,
            **sizes,
        )


class StageParquetFn(beam.DoFn):
    """Write each table to its own Parquet file in the staging directory: (path, rows) out."""

    def __init__(self, directory: str, kind: str) -> None:
        self._directory = directory
        self._kind = kind

    def process(self, table: pa.Table) -> Iterator[tuple[str, int]]:
        """Stage one non-empty table under a unique name."""
        if table.num_rows == 0:
            return
        path = FileSystems.join(self._directory, f"{self._kind}-{uuid.uuid4().hex}.parquet")
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer)
        # One write of the finished file: GCS writers need no seek, and retries are whole.
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            out.write(buffer.getvalue().to_pybytes())
        LOG.debug("staged %d %s to %s", table.num_rows, self._kind, path)
        yield path, table.num_rows


class ParsedBatches(beam.PTransform):
    """Byte ranges of one file -> typed row tables (``rows``), dead letters, rejections."""

    def __init__(
        self,
        path: str,
        contract: Contract,
        source: SourceRef,
        *,
        ingested_at: datetime,
        chunk_bytes: int,
        max_record_bytes: int,
    ) -> None:
        super().__init__()
        self._parse = ParseCsvFn(
            path,
            contract,
            source,
            ingested_at=ingested_at,
            chunk_bytes=chunk_bytes,
            max_record_bytes=max_record_bytes,
        )

    def expand(self, ranges: PCollection) -> beam.pvalue.DoOutputsTuple:
        return ranges | "Parse batches" >> beam.ParDo(self._parse).with_outputs(
            DEAD, REJECTED, main=ROWS
        )


class StagedParquet(beam.PTransform):
    """Arrow tables -> (staged Parquet path, row count), one file per non-empty table."""

    def __init__(self, directory: str, kind: str) -> None:
        super().__init__()
        self._stage = StageParquetFn(directory, kind)

    def expand(self, tables: PCollection) -> PCollection:
        return tables | "Write Parquet" >> beam.ParDo(self._stage)
