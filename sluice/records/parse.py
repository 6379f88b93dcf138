"""Records to typed Arrow tables: one processed row or one dead letter per record.

The contract's format (``sluice.records.formats``) finds the records, says which cannot be
read and splits the rest into raw fields; everything after that is the same for every
format: invalid UTF-8 is caught, fields are typed by ``sluice.records.coerce``, and every
record that fails becomes a dead letter carrying its exact text, its line number and the
reason. Rows and dead letters carry the same lineage (source, generation, line, contract
version, ingestion time).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Contract, HeaderMapping
from sluice.errors import FileRejected
from sluice.records.chunks import RecordChunk
from sluice.records.coerce import coerce_columns
from sluice.records.enrich import enrich_columns
from sluice.records.formats import RecordFormat, contract_header, format_for
from sluice.schema import ARROW_TYPES, SourceRef, dead_letter_schema, processed_schema

log = logging.getLogger(__name__)

HEADER_READ_BYTES = 64 * 1024
"""Bytes read at a time to find the header record."""


@dataclass
class ParsedBatch:
    """The outcome of one chunk of records: typed rows and dead letters."""

    rows: pa.Table
    """Processed rows, with ``processed_schema(contract)``."""
    dead: pa.Table
    """Dead letters, with ``dead_letter_schema()``."""

    @property
    def rows_in(self) -> int:
        """Records that went in: every one is either a row or a dead letter."""
        return self.rows.num_rows + self.dead.num_rows


def iter_parsed_batches(
    stream: BinaryIO,
    contract: Contract,
    source: SourceRef,
    *,
    ingested_at: datetime,
    chunk_bytes: int,
    max_record_bytes: int,
    header: HeaderMapping | None = None,
    byte_offset: int = 0,
    first_line: int = 1,
) -> Iterator[ParsedBatch]:
    """Parse a decompressed stream: header first, then one batch per chunk of records.

    A stream that starts past the header, at a split point (``sluice.records.splits``) at
    ``byte_offset`` on ``first_line``, is parsed with the file's ``header``.
    """
    record_format = format_for(contract)
    mapping = header if record_format.has_header else contract_header(contract)
    chunks = record_format.scan(
        stream,
        chunk_bytes=chunk_bytes,
        max_record_bytes=max_record_bytes,
        byte_offset=byte_offset,
        first_line=first_line,
    )
    for chunk in chunks:
        if mapping is None:
            mapping = record_format.read_header(chunk, contract)
            chunk = chunk.drop_first()
        batch = parse_chunk(
            chunk, mapping, contract, source, ingested_at=ingested_at, record_format=record_format
        )
        del chunk  # not kept alive while the scanner reads the next one
        if batch.rows_in:
            yield batch
    if mapping is None:
        raise _no_header()


def read_file_header(
    stream: BinaryIO, contract: Contract, *, max_record_bytes: int
) -> HeaderMapping:
    """The header mapping of a decompressed stream, reading little past its first record."""
    record_format = format_for(contract)
    if not record_format.has_header:
        return contract_header(contract)
    chunks = record_format.scan(
        stream, chunk_bytes=HEADER_READ_BYTES, max_record_bytes=max_record_bytes
    )
    try:
        for chunk in chunks:
            return record_format.read_header(chunk, contract)
    finally:
        chunks.close()
    raise _no_header()


def _no_header() -> FileRejected:
    return FileRejected(
        "line 1: expected a header record, found an empty file", code="empty_file", line=1
    )


def parse_chunk(
    chunk: RecordChunk,
    mapping: HeaderMapping,
    contract: Contract,
    source: SourceRef,
    *,
    ingested_at: datetime,
    record_format: RecordFormat | None = None,
) -> ParsedBatch:
    """Type one chunk of data records (no header) into processed rows and dead letters."""
    record_format = record_format or format_for(contract)
    problems = unreadable_records(chunk, mapping, record_format)
    usable = np.ones(len(chunk), dtype=np.bool_)
    usable[list(problems)] = False
    good = np.flatnonzero(usable)
    strings = record_format.fields(chunk, good, mapping)
    values = {name: _empty_to_null(array) for name, array in strings.items()}
    coerced = coerce_columns(values, contract, len(good))
    coerced.columns.update(enrich_columns(contract, coerced.columns))
    failed = pc.is_valid(coerced.reasons)
    failed_rows = failed.to_numpy(zero_copy_only=False)
    for index, reason in zip(
        good[failed_rows], coerced.reasons.filter(failed).to_pylist(), strict=True
    ):
        problems[int(index)] = reason
    columns = [
        coerced.columns.get(c.name, pa.nulls(len(good), ARROW_TYPES[c.type]))
        for c in contract.columns
    ]
    columns.append(pa.array(chunk.lines[good], pa.int64()))
    if failed_rows.any():
        fine = pc.invert(failed)
        columns = [column.filter(fine) for column in columns]
    uri, generation, version, ingested = _lineage(source, contract, ingested_at, len(columns[-1]))
    schema = processed_schema(contract)
    arrays = [*columns[:-1], uri, generation, columns[-1], version, ingested]
    rows = pa.Table.from_arrays(arrays, names=schema.names).cast(schema)
    dead = _dead_letters(chunk, problems, contract, source, ingested_at)
    return ParsedBatch(rows=rows, dead=dead)


def read_header(chunk: RecordChunk, contract: Contract) -> HeaderMapping:
    """The header the chunk's first record declares, read by the contract's format."""
    return format_for(contract).read_header(chunk, contract)


def unreadable_records(
    chunk: RecordChunk, mapping: HeaderMapping, record_format: RecordFormat
) -> dict[int, str]:
    """Record index -> reason, for records the format cannot read or that are not UTF-8."""
    problems = {
        int(index): record_format.describe_fault(chunk, int(index), code, mapping)
        for code, indices in record_format.faults(chunk, mapping).items()
        for index in indices
    }
    problems.update(_utf8_problems(chunk, skip=problems))
    return problems


def _utf8_problems(chunk: RecordChunk, skip: dict[int, str]) -> dict[int, str]:
    """Record index -> reason, for records that are not valid UTF-8."""
    if not len(chunk):
        return {}
    # One check of the whole stretch (Arrow's, no decoding) settles the usual case: record
    # boundaries are ASCII bytes, so when the stretch is valid every record in it is.
    first, last = int(chunk.starts[0]), int(chunk.ends[-1])
    stretch = pa.LargeStringArray.from_buffers(
        1, pa.py_buffer(np.array([first, last], dtype=np.int64)), pa.py_buffer(chunk.data)
    )
    try:
        stretch.validate(full=True)
        return {}
    except pa.ArrowInvalid:
        pass
    view, problems = memoryview(chunk.data), {}
    starts, ends = chunk.starts.tolist(), chunk.ends.tolist()
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if index in skip:
            continue
        try:
            str(view[start:end], "utf-8")
        except UnicodeDecodeError as exc:
            at = start + exc.start
            problems[index] = (
                f"invalid UTF-8 at byte {chunk.byte_offset + at} of the file "
                f"(expected UTF-8 text, found byte 0x{chunk.data[at]:02x})"
            )
    return problems


def _empty_to_null(values: pa.Array) -> pa.Array:
    """The same strings with "" as null (an empty field is NULL), sharing the value buffers."""
    if values.offset or values.null_count:
        return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    _, offsets, data = values.buffers()
    lengths = np.diff(np.frombuffer(offsets, dtype=np.int32, count=len(values) + 1))
    validity = pa.py_buffer(np.packbits(lengths != 0, bitorder="little"))
    return pa.StringArray.from_buffers(len(values), offsets, data, validity)


def _dead_letters(
    chunk: RecordChunk,
    problems: dict[int, str],
    contract: Contract,
    source: SourceRef,
    ingested_at: datetime,
) -> pa.Table:
    """One dead letter per record in ``problems``, in file order."""
    order = sorted(problems)
    return dead_letter_table(
        source,
        contract,
        ingested_at,
        lines=chunk.lines[order].tolist() if order else [],
        raw_texts=[chunk.record_bytes(i).decode("utf-8", errors="replace") for i in order],
        reasons=[problems[i] for i in order],
    )


def dead_letter_table(
    source: SourceRef,
    contract: Contract,
    ingested_at: datetime,
    *,
    lines: list[int],
    raw_texts: list[str],
    reasons: list[str],
) -> pa.Table:
    """Dead letters of ``source``: one per line, with its exact text and the reason."""
    uri, generation, version, ingested = _lineage(source, contract, ingested_at, len(lines))
    arrays = [
        uri,
        generation,
        pa.array(lines, pa.int64()),
        pa.array(raw_texts, pa.string()),
        pa.array(reasons, pa.string()),
        version,
        ingested,
    ]
    return pa.Table.from_arrays(arrays, schema=dead_letter_schema())


def _lineage(
    source: SourceRef, contract: Contract, ingested_at: datetime, count: int
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """Source uri, source generation, contract version and ingestion time, ``count`` times."""
    return (
        pa.repeat(pa.scalar(source.uri, pa.string()), count),
        pa.repeat(pa.scalar(source.generation, pa.int64()), count),
        pa.repeat(pa.scalar(contract.version, pa.int64()), count),
        # A naive datetime is taken as UTC.
        pa.repeat(pa.scalar(ingested_at, ARROW_TYPES["timestamp"]), count),
    )
