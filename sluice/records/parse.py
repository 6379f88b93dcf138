"""CSV records to typed Arrow tables: one processed row or one dead letter per record.

``csvscan`` finds the records; here the well-formed ones are split into fields by
``pyarrow.csv`` (one call per chunk), typed by ``sluice.records.coerce``, and every other record
becomes a dead letter carrying its exact text, its line number and the reason.

The scanner and pyarrow are two parsers, so their agreement is checked, never assumed.
Records pyarrow is known to read differently (a bare ``\\r``, which pyarrow takes for a line
end; a leading byte-order mark, which it drops) are split by ``csvscan.split_record``, which
follows the scanner's own rules. And when pyarrow still returns other than one row per
record it was given, the whole chunk is split that way: rows never drift from their lines.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sluice.contracts import Contract, HeaderMapping, resolve_header
from sluice.errors import FileRejected
from sluice.records.coerce import coerce_columns
from sluice.records.csvscan import (
    UTF8_BOM,
    RecordChunk,
    describe_bad_quotes,
    iter_record_chunks,
    split_record,
)
from sluice.schema import ARROW_TYPES, SourceRef, dead_letter_schema, processed_schema

log = logging.getLogger(__name__)

_CR, _LF = ord("\r"), ord("\n")
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
    """Parse a decompressed CSV stream: header first, then one batch per chunk of records.

    A stream that starts past the header, at a split point (``sluice.records.splits``) at
    ``byte_offset`` on ``first_line``, is parsed with the file's ``header``.
    """
    mapping = header
    chunks = iter_record_chunks(
        stream,
        chunk_bytes=chunk_bytes,
        max_record_bytes=max_record_bytes,
        byte_offset=byte_offset,
        first_line=first_line,
    )
    for chunk in chunks:
        if mapping is None:
            mapping = read_header(chunk, contract)
            chunk = chunk.drop_first()
        batch = parse_chunk(chunk, mapping, contract, source, ingested_at=ingested_at)
        del chunk  # not kept alive while the scanner reads the next one
        if batch.rows_in:
            yield batch
    if mapping is None:
        raise _no_header()


def read_file_header(
    stream: BinaryIO, contract: Contract, *, max_record_bytes: int
) -> HeaderMapping:
    """The header mapping of the decompressed CSV stream, reading little past its first record."""
    chunks = iter_record_chunks(
        stream, chunk_bytes=HEADER_READ_BYTES, max_record_bytes=max_record_bytes
    )
    try:
        for chunk in chunks:
            return read_header(chunk, contract)
    finally:
        chunks.close()
    raise _no_header()


def _no_header() -> FileRejected:
    return FileRejected(
        "line 1: expected a header record, found an empty file", code="empty_file", line=1
    )


def read_header(chunk: RecordChunk, contract: Contract) -> HeaderMapping:
    """Resolve the chunk's first record as the file's header; reject the file when it is bad."""
    line, raw = int(chunk.lines[0]), chunk.record_bytes(0)
    if chunk.bad_quotes[0]:
        reason = describe_bad_quotes(raw.removeprefix(UTF8_BOM))
        raise FileRejected(
            f"line {line}: header has malformed quoting: {reason}", code="header", line=line
        )
    try:
        names = next(csv.reader([raw.decode("utf-8-sig")], strict=True))
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"line {line}: expected a UTF-8 header, found byte 0x{raw[exc.start]:02x} "
            f"at byte {exc.start}",
            code="encoding",
            line=line,
        ) from None
    except csv.Error as exc:
        raise FileRejected(
            f"line {line}: expected a header of comma-separated names ending in \\n or \\r\\n, "
            f"found one the csv module cannot split ({exc})",
            code="header",
            line=line,
        ) from None
    mapping = resolve_header(names, contract)
    if not mapping.ok:
        raise FileRejected("; ".join(mapping.problems), code="header", line=line)
    return mapping


def parse_chunk(
    chunk: RecordChunk,
    mapping: HeaderMapping,
    contract: Contract,
    source: SourceRef,
    *,
    ingested_at: datetime,
) -> ParsedBatch:
    """Type one chunk of data records (no header) into processed rows and dead letters."""
    problems = _structural_problems(chunk, mapping.field_count)
    problems.update(_utf8_problems(chunk, skip=problems))
    usable = np.ones(len(chunk), dtype=np.bool_)
    usable[list(problems)] = False
    good = np.flatnonzero(usable)
    strings = _field_strings(chunk, good, mapping)
    values = {name: _empty_to_null(array) for name, array in strings.items()}
    coerced = coerce_columns(values, contract, len(good))
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


def _structural_problems(chunk: RecordChunk, field_count: int) -> dict[int, str]:
    """Record index -> reason, for records whose quoting or field count is wrong."""
    problems: dict[int, str] = {}
    for index in np.flatnonzero(chunk.bad_quotes):
        reason = describe_bad_quotes(chunk.record_bytes(index))
        problems[int(index)] = f"malformed quoting: {reason}"
    for index in np.flatnonzero((chunk.field_counts != field_count) & ~chunk.bad_quotes):
        found = int(chunk.field_counts[index])
        problems[int(index)] = f"expected {field_count} fields, found {found}"
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


def _field_strings(
    chunk: RecordChunk, good: np.ndarray, mapping: HeaderMapping
) -> dict[str, pa.Array]:
    """Contract column name -> string values of the ``good`` records ("" for empty fields)."""
    differs = _read_differently_by_pyarrow(chunk)[good]
    by_python, by_pyarrow = good[differs], good[~differs]
    table = _read_with_pyarrow(chunk, by_pyarrow, mapping) if len(by_pyarrow) else None
    if len(by_pyarrow) and (table is None or table.num_rows != len(by_pyarrow)):
        log.warning(
            "pyarrow and the scanner disagree on the records at byte %d; "
            "splitting them record by record",
            chunk.byte_offset + int(chunk.starts[0]),
        )
        by_python, by_pyarrow, table = good, good[:0], None
    records = [split_record(chunk.record_bytes(index)) for index in by_python]
    order = np.argsort(np.concatenate((by_pyarrow, by_python)), kind="stable")
    columns = {}
    for name, pos in mapping.positions.items():
        split = pa.array([fields[pos] for fields in records], pa.string())
        if table is None:
            columns[name] = split
            continue
        read = table.column(f"f{pos}")
        read = read.chunk(0) if read.num_chunks == 1 else read.combine_chunks()
        columns[name] = pa.concat_arrays([read, split]).take(order) if records else read
    return columns


def _read_differently_by_pyarrow(chunk: RecordChunk) -> np.ndarray:
    """Per record, whether pyarrow would split it otherwise than the scanner does."""
    differs = np.zeros(len(chunk), dtype=np.bool_)
    data = np.frombuffer(chunk.data, dtype=np.uint8)
    # pyarrow ends a row at a bare \r (not followed by \n), the scanner keeps it as data;
    # inside quotes the two agree, but the byte is too rare to be worth telling apart.
    # Cheap tests first: find() is a memchr, and in a CRLF file every \r usually sits just
    # before a record's terminating \n, where ``ends`` points.
    if chunk.data.find(b"\r") >= 0 and len(chunk):
        is_return = data == _CR
        ends = chunk.ends[chunk.ends < len(data)]
        if np.count_nonzero(is_return[chunk.starts[0] :]) > np.count_nonzero(data[ends] == _CR):
            returns = np.flatnonzero(is_return)
            bare = returns[data[np.minimum(returns + 1, len(data) - 1)] != _LF]
            owner = np.searchsorted(chunk.starts, bare, side="right") - 1
            inside = (owner >= 0) & (bare < chunk.ends[np.maximum(owner, 0)])
            differs[owner[inside]] = True
    # pyarrow drops a byte-order mark at the start of what it reads; in a record it is data.
    if chunk.data.find(UTF8_BOM[:1]) >= 0:
        bom = np.frombuffer(UTF8_BOM, dtype=np.uint8)
        starts = chunk.starts[chunk.ends - chunk.starts >= len(bom)]
        has_bom = np.logical_and.reduce([data[starts + i] == bom[i] for i in range(len(bom))])
        differs[np.searchsorted(chunk.starts, starts[has_bom])] = True
    return differs


def _read_with_pyarrow(
    chunk: RecordChunk, records: np.ndarray, mapping: HeaderMapping
) -> pa.Table | None:
    """The given records parsed by pyarrow.csv, or None when pyarrow refuses them."""
    if len(records) == len(chunk):
        # Exactly the records' span: a chunk cut short (validation's sample) shares its data.
        start, end = int(chunk.starts[0]), int(chunk.ends[-1])
        payload = pa.py_buffer(chunk.data)[start:end]
    else:
        # Join runs of consecutive records; the bytes between records of a run are their
        # own terminators (and empty lines), which pyarrow reads as the scanner does.
        breaks = np.flatnonzero(np.diff(records) != 1)
        firsts = chunk.starts[records[np.concatenate(([0], breaks + 1))]].tolist()
        lasts = chunk.ends[records[np.append(breaks, len(records) - 1)]].tolist()
        runs = [chunk.data[start:end] for start, end in zip(firsts, lasts, strict=True)]
        payload = pa.py_buffer(b"\n".join(runs) + b"\n")
    names = [f"f{i}" for i in range(mapping.field_count)]
    wanted = [f"f{pos}" for pos in mapping.positions.values()]
    try:
        return pacsv.read_csv(
            pa.BufferReader(payload),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=min(payload.size + 1, 2**31 - 1)
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in wanted},
                include_columns=wanted,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,  # _utf8_problems has checked every record given here
            ),
        )
    except pa.ArrowInvalid as exc:
        log.warning("pyarrow could not parse the records: %s", exc)
        return None


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
    raw_texts = [chunk.record_bytes(i).decode("utf-8", errors="replace") for i in order]
    uri, generation, version, ingested = _lineage(source, contract, ingested_at, len(order))
    lines = pa.array(chunk.lines[order] if order else [], pa.int64())
    reasons = pa.array([problems[i] for i in order], pa.string())
    arrays = [uri, generation, lines, pa.array(raw_texts, pa.string()), reasons, version, ingested]
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
