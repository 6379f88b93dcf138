"""A chunk of whole records: the unit every input format hands to parsing and validation.

A format's scanner (``RecordFormat.scan``) cuts a byte stream into chunks that start and
end at record boundaries, and locates each record in the chunk: where it starts and ends and
on which physical line. Formats add their own per-record facts in a subclass (CSV's field
counts and malformed quotes); every numpy array field is indexed by record, so ``select``
keeps them in step whatever the subclass.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np


@dataclass
class RecordChunk:
    """Whole records from one stretch of a file."""

    data: bytes
    """The bytes of the stretch: whole records (with terminators and any empty lines)."""
    starts: np.ndarray
    """int64 offset in ``data`` where each record starts."""
    ends: np.ndarray
    """int64 offset in ``data`` where each record ends, excluding its line terminator."""
    lines: np.ndarray
    """int64 1-based physical line number of each record's first line."""
    byte_offset: int
    """Offset of ``data[0]`` in the decompressed file."""

    def __len__(self) -> int:
        return len(self.starts)

    def record_bytes(self, index: int) -> bytes:
        """The exact bytes of record ``index``, without its line terminator."""
        return self.data[int(self.starts[index]) : int(self.ends[index])]

    def select(self, records: slice | np.ndarray) -> RecordChunk:
        """The same data with only ``records`` of its records indexed."""
        per_record = {
            f.name: getattr(self, f.name)[records]
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        return replace(self, **per_record)

    def drop_first(self) -> RecordChunk:
        """The same data without its first record (the header, for the file's first chunk)."""
        return self.select(slice(1, None))
