"""Split points: byte offsets where a record starts, so one big file is parsed in parallel.

A split point is a record boundary that the format's own scanner reported (the offset where
a record starts and the physical line it starts on), so parsing the ranges between split
points one by one gives the same records, lines and dead letters as parsing the file in one
go. For CSV that matters: a CSV whose quoted fields hold newlines cannot be cut at an
arbitrary newline, since whether a newline ends a record depends on every quote before it;
the scanner (``sluice.records.csvscan``) decides it by quote parity from a record boundary.

Validation records them for free (the scanner's chunks list every record start:
``SplitRecorder``); the function stores the ``SplitIndex`` beside the event's claim and the
pipeline reads it. A file without one (ingested by hand) gets its points from
``find_split_points``, a scan-only pass of the same scanner. A gzip file is one range: its
decompressed offsets cannot be seeked to.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from sluice.records.chunks import RecordChunk
from sluice.records.formats import RecordFormat
from sluice.schema import SourceRef


@dataclass(frozen=True)
class SplitPoint:
    """A record boundary: the record starting at ``offset`` begins on physical ``line``."""

    offset: int
    line: int


@dataclass(frozen=True)
class ByteRange:
    """The records from ``start`` (on ``first_line``) up to ``end`` (None: end of file)."""

    start: int
    end: int | None
    first_line: int

    @property
    def at_file_start(self) -> bool:
        """Whether the range holds the header (the file's first record)."""
        return self.start == 0


WHOLE_FILE = ByteRange(0, None, 1)


@dataclass(frozen=True)
class SplitIndex:
    """The split points of one source generation, as validation found them."""

    source_uri: str
    generation: int
    size: int
    """Decompressed size in bytes of the file the points belong to."""
    points: tuple[SplitPoint, ...]

    def ranges(self) -> list[ByteRange]:
        """The byte ranges between consecutive points (the first one holds the header)."""
        starts = [WHOLE_FILE, *(ByteRange(p.offset, None, p.line) for p in self.points)]
        ends = [p.offset for p in self.points] + [None]
        return [ByteRange(s.start, end, s.first_line) for s, end in zip(starts, ends, strict=True)]

    def belongs_to(self, source: SourceRef) -> bool:
        """Whether the index was made from exactly this source generation."""
        return self.source_uri == source.uri and self.generation == source.generation

    def to_json(self) -> str:
        """The stored form (beside the claim, or in the job's staging directory)."""
        return json.dumps(
            {
                "source_uri": self.source_uri,
                "generation": self.generation,
                "size": self.size,
                "points": [[p.offset, p.line] for p in self.points],
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SplitIndex:
        """Read the stored form back; ValueError when it is not one."""
        try:
            data = json.loads(text)
            points = tuple(SplitPoint(int(offset), int(line)) for offset, line in data["points"])
            index = cls(str(data["source_uri"]), int(data["generation"]), int(data["size"]), points)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"expected a split index document, found {exc!r}") from None
        offsets = [p.offset for p in points]
        if offsets != sorted(set(offsets)) or (offsets and offsets[0] <= 0):
            raise ValueError(f"expected increasing positive split offsets, found {offsets[:5]}")
        if offsets and offsets[-1] >= index.size:
            raise ValueError(f"expected split offsets below the size {index.size}")
        return index


class SplitRecorder:
    """Collects a split point every ``every_bytes`` from the record chunks of one file."""

    def __init__(self, every_bytes: int) -> None:
        if every_bytes < 1:
            raise ValueError(f"expected a positive split interval, found {every_bytes}")
        self._every = every_bytes
        self._next = every_bytes
        self.points: list[SplitPoint] = []

    def observe(self, chunk: RecordChunk) -> None:
        """Note the first record at or past each ``every_bytes`` mark as a split point."""
        starts = chunk.starts + chunk.byte_offset
        while (at := int(np.searchsorted(starts, self._next))) < len(starts):
            self.points.append(SplitPoint(int(starts[at]), int(chunk.lines[at])))
            self._next = int(starts[at]) + self._every


def find_split_points(
    stream: BinaryIO,
    every_bytes: int,
    *,
    chunk_bytes: int,
    max_record_bytes: int,
    record_format: RecordFormat,
) -> tuple[tuple[SplitPoint, ...], int]:
    """Record boundaries about every ``every_bytes`` of a plain stream, and its size.

    The format's scanner itself finds them (one pass, no parsing), so they are the record
    starts a serial parse sees, whatever the quoting. Raises ``FileRejected`` as the scanner
    does.
    """
    recorder = SplitRecorder(every_bytes)
    size = 0
    for chunk in record_format.scan(
        stream, chunk_bytes=chunk_bytes, max_record_bytes=max_record_bytes
    ):
        recorder.observe(chunk)
        size = chunk.byte_offset + len(chunk.data)
    return tuple(recorder.points), size


class RangeReader(io.RawIOBase):
    """The bytes of ``range`` of a seekable stream: reads stop at the range's end."""

    def __init__(self, stream: BinaryIO, byte_range: ByteRange) -> None:
        super().__init__()
        stream.seek(byte_range.start)
        self._stream = stream
        self._left = None if byte_range.end is None else byte_range.end - byte_range.start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = len(buffer) if self._left is None else min(len(buffer), self._left)
        data = self._stream.read(wanted) if wanted else b""
        buffer[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)
