"""The CSV format: RFC 4180 records, a header naming the columns, fields split by pyarrow.

``sluice.records.csvscan`` finds the records (a vectorised quote-parity scan: a newline
inside quotes does not end a record); the header is matched to the contract by name, in any
order. A record with a malformed quote or the wrong number of fields cannot be read
(``bad_quotes``, ``field_count``); the rest are split into fields by ``pyarrow.csv`` (one
call per chunk).

The scanner and pyarrow are two parsers, so their agreement is checked, never assumed.
Records pyarrow is known to read differently (a bare ``\\r``, which pyarrow takes for a line
end; a leading byte-order mark, which it drops) are split by ``csvscan.split_record``, which
follows the scanner's own rules. And when pyarrow still returns other than one row per
record it was given, the whole chunk is split that way: rows never drift from their lines.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sluice.contracts import Contract, HeaderMapping, resolve_header
from sluice.errors import FileRejected
from sluice.records.chunks import RecordChunk
from sluice.records.csvscan import (
    UTF8_BOM,
    CsvChunk,
    describe_bad_quotes,
    iter_record_chunks,
    split_record,
)

log = logging.getLogger(__name__)

_CR, _LF = ord("\r"), ord("\n")
BAD_QUOTES, FIELD_COUNT = "bad_quotes", "field_count"


class CsvFormat:
    """Comma-separated values with a header record (``format: csv``, the default)."""

    name = "csv"
    has_header = True
    fault_nouns: Mapping[str, str] = MappingProxyType(
        {FIELD_COUNT: "the wrong number of fields", BAD_QUOTES: "a malformed quote"}
    )

    def scan(
        self,
        stream: BinaryIO,
        *,
        chunk_bytes: int,
        max_record_bytes: int,
        byte_offset: int = 0,
        first_line: int = 1,
    ) -> Iterator[CsvChunk]:
        """Whole-record chunks found by the quote-parity scan (``csvscan``)."""
        return iter_record_chunks(
            stream,
            chunk_bytes=chunk_bytes,
            max_record_bytes=max_record_bytes,
            byte_offset=byte_offset,
            first_line=first_line,
        )

    def read_header(self, chunk: RecordChunk, contract: Contract) -> HeaderMapping:
        """The header record matched to the contract by name."""
        return read_csv_header(_csv(chunk), contract)

    def header_names(self, record: bytes) -> tuple[str, ...]:
        """The header's names as the csv module splits them (the raw line when it cannot)."""
        text = record.decode("utf-8-sig", errors="replace")
        try:
            return tuple(name.strip() for name in next(csv.reader([text])))
        except csv.Error:
            return (text,)

    def faults(self, chunk: RecordChunk, header: HeaderMapping) -> dict[str, np.ndarray]:
        """Records with a malformed quote; records (otherwise sound) of the wrong width."""
        scanned = _csv(chunk)
        # A malformed quote garbles the field count too: such a record counts once.
        wrong_width = (scanned.field_counts != header.field_count) & ~scanned.bad_quotes
        return {
            BAD_QUOTES: np.flatnonzero(scanned.bad_quotes),
            FIELD_COUNT: np.flatnonzero(wrong_width),
        }

    def describe_fault(
        self, chunk: RecordChunk, index: int, code: str, header: HeaderMapping
    ) -> str:
        """``malformed quoting: <where>`` or ``expected N fields, found M``."""
        if code == BAD_QUOTES:
            return f"malformed quoting: {describe_bad_quotes(chunk.record_bytes(index))}"
        found = int(_csv(chunk).field_counts[index])
        return f"expected {header.field_count} fields, found {found}"

    def fields(
        self, chunk: RecordChunk, records: np.ndarray, header: HeaderMapping
    ) -> dict[str, pa.Array]:
        """The records' fields split by pyarrow, or by ``split_record`` where it would differ."""
        return _field_strings(_csv(chunk), records, header)


FORMAT = CsvFormat()


def _csv(chunk: RecordChunk) -> CsvChunk:
    if not isinstance(chunk, CsvChunk):
        raise TypeError(f"expected a chunk from the CSV scanner, found {type(chunk).__name__}")
    return chunk


def read_csv_header(chunk: CsvChunk, contract: Contract) -> HeaderMapping:
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


def _field_strings(
    chunk: CsvChunk, good: np.ndarray, mapping: HeaderMapping
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


def _read_differently_by_pyarrow(chunk: CsvChunk) -> np.ndarray:
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
    chunk: CsvChunk, records: np.ndarray, mapping: HeaderMapping
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
