"""Vectorised CSV record scanning: where records start and end, with numpy, in bounded memory.

The dialect is RFC 4180: fields separated by ``,``, records by ``\\n`` or ``\\r\\n``, a field
may be quoted with ``"`` and then hold commas, newlines and ``""`` (a literal quote).

How a record is found, without a Python loop per byte: a ``\\n`` ends a record exactly when
the number of ``"`` before it is even (a doubled ``""`` adds two, so it keeps the parity).
Every buffer this module scans starts at a record boundary, so its parity starts even.
Commas outside quotes are found the same way and give each record's field count.

Decisions a reader should know:
- A bare ``\\r`` (not followed by ``\\n``) outside quotes does not end a record; it stays in
  the field as data. ``\\r\\n`` ends a record and ``ends`` excludes both bytes.
- Empty lines (nothing, or only ``\\r``) are not records, but they still count as lines.
- A quote is well formed when an opening quote starts a field (after ``,``, a line break, the
  start of the file or a UTF-8 byte-order mark) and a closing quote is followed by ``,``, the
  end of the record or a second quote (``""``). Records breaking that are flagged, not fixed.
- Outside a quoted field, a quote that does not start a field (``5'10"``, ``Va"lentina``) is
  a literal character, as Python's csv module reads it: it flags its record but opens nothing,
  so it cannot shift the record boundaries after it.
- A ``"`` left open at end of file, or a record longer than ``max_record_bytes``, rejects the
  whole file: after either, no later record boundary can be trusted.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from sluice.errors import FileRejected
from sluice.records.chunks import RecordChunk

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
_MASK_SLICE_BYTES = 1024 * 1024
_QUOTE, _COMMA, _LF, _CR = ord('"'), ord(","), ord("\n"), ord("\r")


def open_decompressed(raw: BinaryIO) -> BinaryIO:
    """The decompressed byte stream of ``raw``: gunzipped when it starts with the gzip magic."""
    peekable = raw if callable(getattr(raw, "peek", None)) else io.BufferedReader(raw)
    head = peekable.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)]
    if len(head) == 1:
        # peek may return a single buffered byte; read ahead and put the bytes back in front.
        head = peekable.read(len(GZIP_MAGIC))
        peekable = io.BufferedReader(_Prefixed(head, peekable))
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=peekable, mode="rb")
    return peekable


class _Prefixed(io.RawIOBase):
    """A raw stream that yields ``prefix`` and then the rest of ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        data = self._prefix[: len(buffer)] or self._stream.read(len(buffer))
        self._prefix = self._prefix[len(data) :] if self._prefix else b""
        buffer[: len(data)] = data
        return len(data)


@dataclass
class CsvChunk(RecordChunk):
    """CSV records located by the vectorised scan, with what the scan saw in each."""

    field_counts: np.ndarray
    """int64 commas outside quotes + 1, per record."""
    bad_quotes: np.ndarray
    """bool, True where the record holds a quote that is not RFC 4180 well formed."""


def iter_record_chunks(
    stream: BinaryIO,
    *,
    chunk_bytes: int,
    max_record_bytes: int,
    byte_offset: int = 0,
    first_line: int = 1,
) -> Iterator[CsvChunk]:
    """Whole-record chunks of about ``chunk_bytes`` each, read from ``stream`` as it goes.

    ``stream`` starts at a record boundary: the file's start, or a split point
    (``sluice.records.splits``) at ``byte_offset`` on physical line ``first_line``.

    Memory is bounded whatever the file size: about 3 x ``chunk_bytes`` at peak (the read,
    the chunk copied out of it and the caller's previous chunk, if it still holds it), plus
    the partial record carried over; a record longer than a read is read in doubling
    steps, so at most about 2 x ``max_record_bytes`` more.
    """
    if chunk_bytes < 1 or max_record_bytes < 1:
        raise ValueError(
            f"expected positive chunk_bytes and max_record_bytes, "
            f"found {chunk_bytes} and {max_record_bytes}"
        )
    carry = b""  # the partial record after the last boundary; always starts at a boundary
    carry_offset = byte_offset
    carry_line = first_line
    read_size = chunk_bytes
    while True:
        try:
            block = stream.read(read_size)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise FileRejected(
                f"byte {carry_offset + len(carry)}: expected a complete gzip stream, "
                f"found a damaged or truncated one ({exc})",
                code="gzip",
            ) from None
        at_eof = not block
        buffer = carry + bytes(block) if carry else bytes(block)
        del block
        if not buffer:
            return
        scan = _BufferScan(buffer, at_eof, first_line=carry_line, at_file_start=carry_offset == 0)
        cut = scan.cut
        if cut == 0:
            # No record ends in the buffer yet: read more, growing the read so one long
            # record costs linear, not quadratic, rescanning.
            problem = _partial_record_problem(scan, 0, max_record_bytes)
            if problem:
                raise problem
            carry, read_size = buffer, max(chunk_bytes, len(buffer))
            continue
        chunk = scan.records(carry_offset, max_record_bytes=max_record_bytes)
        too_long = None if at_eof else _partial_record_problem(scan, cut, max_record_bytes)
        carry = buffer[cut:]
        carry_offset += cut
        carry_line += int(np.searchsorted(scan.newlines, cut))
        del scan, buffer  # only the chunk stays alive while the consumer works and we read
        if len(chunk):
            yield chunk
        del chunk
        if at_eof:
            return
        if too_long:
            raise too_long
        read_size = chunk_bytes


class _BufferScan:
    """Positions of quotes, newlines and commas in one buffer that starts at a record boundary."""

    def __init__(
        self, buffer: bytes, at_eof: bool, *, first_line: int, at_file_start: bool
    ) -> None:
        self.buffer = buffer
        at_bom = at_file_start and buffer.startswith(UTF8_BOM)
        self.bom_end = len(UTF8_BOM) if at_bom else -1  # where a quote after a BOM may open
        self.bytes = np.frombuffer(buffer, dtype=np.uint8)
        self.at_eof = at_eof
        self.first_line = first_line
        # One pass finds every byte that matters; quote parity is then a running count over
        # those few positions instead of over every byte.
        data = self.bytes
        special = _special_positions(data)
        kinds = data[special]
        is_quote = kinds == _QUOTE
        stray = _stray_quotes(data, special[is_quote], self.bom_end)
        self.stray_quotes = special[is_quote][stray]
        if len(self.stray_quotes):
            # Literal characters: they take no part in the quote parity below.
            drop = np.flatnonzero(is_quote)[stray]
            special, kinds, is_quote = (np.delete(a, drop) for a in (special, kinds, is_quote))
        quotes_through = np.cumsum(is_quote, dtype=np.int32 if len(kinds) < 2**31 else np.int64)
        outside = (quotes_through & 1) == 0  # for a newline or comma: quotes before it even
        is_newline = kinds == _LF
        self.quotes = special[is_quote]
        self.newlines = special[is_newline]
        self.terminators = special[is_newline & outside]
        self.commas = special[(kinds == _COMMA) & outside]
        if at_eof:
            if len(self.quotes) % 2:
                # In the last record, which runs to the end of the file, name the first
                # malformed quote if any: a stray quote shifts every later pair, so the
                # quote left open at the very end is rarely the culprit.
                last_start = int(self.terminators[-1]) + 1 if len(self.terminators) else 0
                tail = self.quotes[np.searchsorted(self.quotes, last_start) :]
                bom_end = self.bom_end if last_start == 0 else -1
                malformed = _quote_violations(data, tail, len(buffer), True, bom_end)
                opened = malformed[0] if len(malformed) else tail[-1]
                line = self.line_of(int(opened))
                raise FileRejected(
                    f"line {line}: quoted field opened here is never closed "
                    "(expected a closing '\"' before end of file)",
                    code="unterminated_quote",
                    line=line,
                )
            self.cut = len(buffer)
        else:
            self.cut = int(self.terminators[-1]) + 1 if len(self.terminators) else 0

    def line_of(self, position: int) -> int:
        """Physical line number of the byte at ``position``."""
        return self.first_line + int(np.searchsorted(self.newlines, position))

    def records(self, byte_offset: int, *, max_record_bytes: int) -> CsvChunk:
        """The records in ``buffer[:cut]`` as a chunk."""
        segment_ends = self.terminators
        if self.at_eof and (not len(segment_ends) or segment_ends[-1] != self.cut - 1):
            segment_ends = np.append(segment_ends, self.cut)  # last record has no terminator
        segment_starts = np.concatenate(([0], segment_ends[:-1] + 1)).astype(np.int64)
        ends = segment_ends.astype(np.int64)
        ends -= (ends > segment_starts) & (self.bytes[ends - 1] == _CR)
        nonempty = ends > segment_starts
        starts, ends = segment_starts[nonempty], ends[nonempty]
        too_long = np.flatnonzero(ends - starts > max_record_bytes)
        if len(too_long):
            raise _too_long(self.line_of(int(starts[too_long[0]])), max_record_bytes)
        quotes = self.quotes[: np.searchsorted(self.quotes, self.cut)]
        field_counts = np.searchsorted(self.commas, ends) - np.searchsorted(self.commas, starts) + 1
        bad_quotes = np.zeros(len(starts), dtype=np.bool_)
        violations = _quote_violations(self.bytes, quotes, self.cut, self.at_eof, self.bom_end)
        violations = np.concatenate((violations, self.stray_quotes[self.stray_quotes < self.cut]))
        bad_quotes[np.searchsorted(starts, violations, side="right") - 1] = True
        return CsvChunk(
            data=self.buffer[: self.cut],
            starts=starts,
            ends=ends,
            lines=self.first_line + np.searchsorted(self.newlines, starts).astype(np.int64),
            field_counts=field_counts.astype(np.int64),
            bad_quotes=bad_quotes,
            byte_offset=byte_offset,
        )


def _special_positions(data: np.ndarray) -> np.ndarray:
    """Sorted positions of every quote, newline and comma in ``data``."""
    # Slice by slice, so the byte masks stay small whatever the chunk size.
    parts = [np.zeros(0, dtype=np.int64)]
    for low in range(0, len(data), _MASK_SLICE_BYTES):
        part = data[low : low + _MASK_SLICE_BYTES]
        wanted = part == _QUOTE
        wanted |= part == _LF
        wanted |= part == _COMMA
        parts.append(np.flatnonzero(wanted) + low)
    return np.concatenate(parts)


def _stray_quotes(data: np.ndarray, quotes: np.ndarray, bom_end: int) -> np.ndarray:
    """Mask of the quotes that are literal: outside a quoted field, not at a field's start.

    ``data`` starts at a record boundary, outside quotes. When every quote at an even place
    (in parity, an opening one) starts a field, none is stray: one vectorised check, the
    common case. Otherwise the quotes are walked in order, which only files with stray
    quotes pay for.
    """
    opening, closing = quotes[0::2], quotes[1::2]
    if not len(opening) or _opens_field(data, opening, closing, bom_end).all():
        return np.zeros(len(quotes), dtype=np.bool_)
    before = _byte_at(data, quotes - 1).tolist()
    stray = np.zeros(len(quotes), dtype=np.bool_)
    inside, last_closing = False, -2
    for index, (position, previous) in enumerate(zip(quotes.tolist(), before, strict=True)):
        if inside:
            inside, last_closing = False, position  # closes, or is the first of a ""
        elif previous in (_COMMA, _LF) or position in (0, bom_end) or last_closing == position - 1:
            inside = True
        else:
            stray[index] = True
    return stray


def _opens_field(
    data: np.ndarray, opening: np.ndarray, closing: np.ndarray, bom_end: int
) -> np.ndarray:
    """Per opening quote: whether it starts a field or continues a doubled ``""``."""
    before = _byte_at(data, opening - 1)
    starts_field = (before == _COMMA) | (before == _LF) | (opening == 0) | (opening == bom_end)
    # The second quote of a doubled "" inside a quoted field reads as an opening quote.
    previous_quote = np.concatenate(([-2], closing))[: len(opening)]
    return starts_field | (previous_quote == opening - 1)


def _quote_violations(
    data: np.ndarray, quotes: np.ndarray, cut: int, at_eof: bool, bom_end: int
) -> np.ndarray:
    """Positions of quotes that break RFC 4180 in ``data[:cut]`` (parity even at 0)."""
    opening, closing = quotes[0::2], quotes[1::2]
    opening_ok = _opens_field(data, opening, closing, bom_end)
    after = _byte_at(data, closing + 1)
    end_of_data = (closing + 1 >= cut) & at_eof
    crlf = (after == _CR) & ((_byte_at(data, closing + 2) == _LF) | ((closing + 2 >= cut) & at_eof))
    next_quote = np.append(opening[1:], -1)[: len(closing)]
    closing_ok = (
        (after == _COMMA) | (after == _LF) | end_of_data | crlf | (next_quote == closing + 1)
    )
    return np.sort(np.concatenate((opening[~opening_ok], closing[~closing_ok])))


def _byte_at(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``data[positions]`` as int16, with -1 where a position falls outside ``data``."""
    values = data.take(positions, mode="clip").astype(np.int16)
    values[(positions < 0) | (positions >= len(data))] = -1
    return values


def describe_bad_quotes(record: bytes) -> str:
    """Why a record's quoting is malformed, naming the field, for a dead-letter reason."""
    data = np.frombuffer(record, dtype=np.uint8)
    quotes = np.flatnonzero(data == _QUOTE)
    violations = _quote_violations(data, quotes, len(data), True, -1)
    if not len(violations):
        return "no malformed quote found"
    position = int(violations[0])
    commas = np.flatnonzero(data[:position] == _COMMA)
    field = int(np.count_nonzero((np.searchsorted(quotes, commas) & 1) == 0)) + 1
    index = int(np.searchsorted(quotes, position))
    if index % 2 == 0:
        return (
            f"field {field}: found '\"' inside an unquoted field "
            "(expected quotes only around a whole field, with '\"\"' for a literal quote)"
        )
    found = record[position + 1 : position + 5].decode("utf-8", errors="replace")[:1]
    return f"field {field}: expected ',' or end of record after a closing '\"', found {found!r}"


def split_record(record: bytes) -> list[str]:
    """The field values of one well-formed record (no bad quotes), by this module's rules."""
    fields: list[str] = []
    pending: str | None = None
    for part in record.decode("utf-8").split(","):
        piece = part if pending is None else f"{pending},{part}"
        if piece.startswith('"') and piece.count('"') % 2:
            pending = piece  # a quoted field holding a comma continues in the next part
            continue
        pending = None
        fields.append(piece[1:-1].replace('""', '"') if piece.startswith('"') else piece)
    if pending is not None:
        raise ValueError(f"expected a well-formed record, found an open quote in {record!r}")
    return fields


def _partial_record_problem(
    scan: _BufferScan, cut: int, max_record_bytes: int
) -> FileRejected | None:
    """Why the record still being read after ``cut`` is rejected, if it is already too long."""
    if len(scan.buffer) - cut <= max_record_bytes:
        return None
    open_quotes = scan.quotes[np.searchsorted(scan.quotes, cut) :]
    note = ""
    if len(open_quotes) % 2:
        opened = scan.line_of(int(open_quotes[-1]))
        note = f"; a quoted field opened on line {opened} is still open (a stray '\"'?)"
    return _too_long(scan.line_of(cut), max_record_bytes, note)


def _too_long(line: int, max_record_bytes: int, note: str = "") -> FileRejected:
    message = (
        f"line {line}: expected a record of at most {max_record_bytes} bytes, found a longer one"
    )
    return FileRejected(message + note, code="record_too_long", line=line)
