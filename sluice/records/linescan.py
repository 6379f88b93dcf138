"""Line records: every ``\\n`` ends a record, found with numpy, in bounded memory.

The scanner of the line formats (access logs, JSON lines), and ``LineFormat``, what they
share. Nothing quotes a newline in them, so a record
boundary is simply the byte after a ``\\n``: split points cost nothing, and any stream that
starts after a ``\\n`` starts at a record boundary.

Decisions a reader should know (the same as the CSV scanner's, ``sluice.records.csvscan``):
- ``\\r\\n`` ends a record as ``\\n`` does, and ``ends`` excludes both bytes; a bare ``\\r``
  elsewhere is data.
- Empty lines (nothing, or only ``\\r``) are not records, so they are neither rows nor dead
  letters, but they still count as lines. A line of spaces is a record.
- The last line of a file needs no ``\\n``: a line cut short mid-write is still a record.
- A line longer than ``max_record_bytes`` rejects the file, as in CSV: a limit on what one
  record may cost in memory.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from sluice.contracts import Contract, HeaderMapping
from sluice.errors import FileRejected
from sluice.records.chunks import RecordChunk

_LF, _CR = ord("\n"), ord("\r")


@dataclass
class LineChunk(RecordChunk):
    """Line records of one stretch of a file."""

    parsed: object = field(default=None, init=False, repr=False, compare=False)
    """What a line format has worked out about these very records, kept for its next call
    on the chunk (``select`` makes a new chunk, which starts without it)."""


class LineFormat:
    """What every line format shares: each line is a record, and the contract (never a
    header) names the fields. A format subclasses it and adds its own ``name``, faults and
    fields."""

    name: str
    has_header = False

    def scan(
        self,
        stream: BinaryIO,
        *,
        chunk_bytes: int,
        max_record_bytes: int,
        byte_offset: int = 0,
        first_line: int = 1,
    ) -> Iterator[LineChunk]:
        """Whole-line chunks (``iter_line_chunks``): every newline ends a record."""
        return iter_line_chunks(
            stream,
            chunk_bytes=chunk_bytes,
            max_record_bytes=max_record_bytes,
            byte_offset=byte_offset,
            first_line=first_line,
        )

    def read_header(self, chunk: RecordChunk, contract: Contract) -> HeaderMapping:
        """Never called: the contract names the fields (``has_header`` is False)."""
        raise FileRejected(f"expected no header in a {self.name} file", code="header")

    def header_names(self, record: bytes) -> tuple[str, ...]:
        """A line format has no header: its first line is a record."""
        return ()


def iter_line_chunks(
    stream: BinaryIO,
    *,
    chunk_bytes: int,
    max_record_bytes: int,
    byte_offset: int = 0,
    first_line: int = 1,
) -> Iterator[LineChunk]:
    """Whole-line chunks of about ``chunk_bytes`` each, read from ``stream`` as it goes.

    ``stream`` starts at a record boundary: the file's start, or a split point at
    ``byte_offset`` on physical line ``first_line``. Memory is bounded as in
    ``csvscan.iter_record_chunks``.
    """
    if chunk_bytes < 1 or max_record_bytes < 1:
        raise ValueError(
            f"expected positive chunk_bytes and max_record_bytes, "
            f"found {chunk_bytes} and {max_record_bytes}"
        )
    carry = b""  # the partial line after the last newline
    carry_offset, carry_line, read_size = byte_offset, first_line, chunk_bytes
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
        newlines = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8) == _LF)
        cut = len(buffer) if at_eof else (int(newlines[-1]) + 1 if len(newlines) else 0)
        if cut == 0:
            if len(buffer) > max_record_bytes:
                raise _too_long(carry_line, max_record_bytes)
            carry, read_size = buffer, max(chunk_bytes, len(buffer))
            continue
        chunk = _line_chunk(buffer[:cut], newlines, carry_offset, carry_line, max_record_bytes)
        too_long = not at_eof and len(buffer) - cut > max_record_bytes
        carry = buffer[cut:]
        carry_offset += cut
        carry_line += len(newlines)
        del buffer
        if len(chunk):
            yield chunk
        del chunk
        if at_eof:
            return
        if too_long:
            raise _too_long(carry_line, max_record_bytes)
        read_size = chunk_bytes


def _line_chunk(
    data: bytes, newlines: np.ndarray, byte_offset: int, first_line: int, max_record_bytes: int
) -> LineChunk:
    """The non-empty lines of ``data`` (whole lines; the last may lack its newline)."""
    bytes_ = np.frombuffer(data, dtype=np.uint8)
    segment_ends = newlines.astype(np.int64)
    if not len(segment_ends) or segment_ends[-1] != len(data) - 1:
        segment_ends = np.append(segment_ends, len(data))  # the file's last line, unended
    starts = np.concatenate(([0], segment_ends[:-1] + 1)).astype(np.int64)
    ends = segment_ends.copy()
    ends -= (ends > starts) & (bytes_[np.maximum(ends - 1, 0)] == _CR)
    lines = first_line + np.arange(len(starts), dtype=np.int64)
    nonempty = ends > starts
    starts, ends, lines = starts[nonempty], ends[nonempty], lines[nonempty]
    too_long = np.flatnonzero(ends - starts > max_record_bytes)
    if len(too_long):
        raise _too_long(int(lines[too_long[0]]), max_record_bytes)
    return LineChunk(data=data, starts=starts, ends=ends, lines=lines, byte_offset=byte_offset)


def _too_long(line: int, max_record_bytes: int) -> FileRejected:
    return FileRejected(
        f"line {line}: expected a line of at most {max_record_bytes} bytes, found a longer one",
        code="record_too_long",
        line=line,
    )
