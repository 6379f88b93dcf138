"""Byte-level checks at the door: the decompressed stream, checked as its bytes flow.

``open_guarded`` opens a landing file as plain or gzip (detected by magic bytes) and wraps
the decompressed bytes in a ``GuardedStream``, which the record scanner then reads. Each read
is checked before the scanner sees it, and a whole-file fault raises ``FileRejected`` with its
code: more than ``max_bytes`` decompressed (``too_large``; reading stops one byte past the
limit, which also defeats gzip bombs), a corrupt or truncated gzip (``gzip``), a UTF-16 or
UTF-32 byte-order mark or bytes that are not strict UTF-8 (``encoding``; a UTF-8 byte-order
mark is fine), a NUL byte (``nul_byte``). Newlines are counted so each fault names its line.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from typing import Any, BinaryIO

from sluice.errors import FileRejected
from sluice.records.csvscan import open_decompressed

# A non-ASCII read is decoded this many bytes at a time, each piece a throwaway str. Small
# pieces (4-16 KB str) are reused in place by malloc; 64 KiB ones (64-256 KB, by the widest
# character) interleaved with the scanner's arrays fragmented the heap, and peak RSS crept
# up with file size (bench/validation_bench.py: 184 MB at 2 GB, 148 MB at this size).
_DECODE_SLICE = 4 * 1024
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


class GuardedStream(io.RawIOBase):
    """The decompressed stream, checked as bytes flow: size, gzip integrity, UTF-8, NUL."""

    def __init__(self, inner: BinaryIO, *, max_bytes: int, compressed: bool) -> None:
        super().__init__()
        self._inner = inner
        self._max_bytes = max_bytes
        self.compressed = compressed
        """Whether ``inner`` is a gzip stream (so its read errors are gzip faults)."""
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._newlines = 0
        self.bytes_read = 0
        """Decompressed bytes read so far."""

    def readable(self) -> bool:
        """Always True: the stream is read-only."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` through ``read``, so every byte is checked."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` checked bytes; raises ``FileRejected`` at the first fault."""
        # Never ask for more than one byte past the limit: a gzip bomb stops right there.
        room = self._max_bytes - self.bytes_read + 1
        size = room if size is None or size < 0 else min(size, room)
        try:
            data = bytes(self._inner.read(size))
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            if not self.compressed:
                raise
            raise FileRejected(
                f"expected a complete gzip stream, found a {_gzip_fault(exc)}", code="gzip"
            ) from None
        if not data:
            self._check_utf8(b"", final=True)
            return data
        if self.bytes_read + len(data) > self._max_bytes:
            self.bytes_read += len(data)
            raise FileRejected(
                f"expected at most {self._max_bytes} bytes (decompressed), "
                f"found more; stopped reading at byte {self.bytes_read}",
                code="too_large",
            )
        if self.bytes_read == 0:
            self._check_bom(data)
        self._check_nul(data)
        self._check_utf8(data, final=False)
        self.bytes_read += len(data)
        self._newlines += data.count(b"\n")
        return data

    def _line_at(self, data: bytes, index: int) -> int:
        return self._newlines + data.count(b"\n", 0, max(index, 0)) + 1

    def _check_bom(self, data: bytes) -> None:
        for bom, name in _BOMS:
            if data.startswith(bom):
                raise FileRejected(
                    f"line 1: expected UTF-8, found a {name} byte-order mark",
                    code="encoding",
                    line=1,
                )

    def _check_nul(self, data: bytes) -> None:
        index = data.find(b"\x00")
        if index < 0:
            return
        offset = self.bytes_read + index
        hint = " (UTF-16 or UTF-32 without a byte-order mark?)" if offset < 4 else ""
        line = self._line_at(data, index)
        raise FileRejected(
            f"line {line}: expected UTF-8 text, found a NUL byte at byte offset {offset}{hint}",
            code="nul_byte",
            line=line,
        )

    def _check_utf8(self, data: bytes, *, final: bool) -> None:
        if data.isascii() and not final and not self._decoder.getstate()[0]:
            return
        view = memoryview(data)
        start = 0
        while True:
            piece = view[start : start + _DECODE_SLICE]
            last = start + _DECODE_SLICE >= len(data)
            try:
                self._decoder.decode(piece, final=final and last)
            except UnicodeDecodeError as exc:
                # exc.object is the decoder's pending bytes followed by the piece.
                at = start + exc.start - (len(exc.object) - len(piece))
                raise self._encoding_fault(exc, data, at) from None
            if last:
                return
            start += _DECODE_SLICE

    def _encoding_fault(self, exc: UnicodeDecodeError, data: bytes, at: int) -> FileRejected:
        line = self._line_at(data, at)
        context = exc.object[max(exc.start - 24, 0) : exc.end + 24]
        shown = context.decode("utf-8", "replace")
        return FileRejected(
            f"line {line}: expected UTF-8, found byte(s) {exc.object[exc.start : exc.end].hex(' ')}"
            f" at byte offset {self.bytes_read + at} ({exc.reason}) in {shown!r}",
            code="encoding",
            line=line,
        )


def open_guarded(raw: BinaryIO, *, max_bytes: int) -> GuardedStream:
    """The decompressed bytes of ``raw`` (plain or gzip), checked as they are read."""
    stream = open_decompressed(raw)
    compressed = isinstance(stream, gzip.GzipFile)
    return GuardedStream(stream, max_bytes=max_bytes, compressed=compressed)


def _gzip_fault(exc: Exception) -> str:
    """What kind of broken gzip ``exc`` reveals."""
    if isinstance(exc, EOFError):
        return "truncated stream (it ends before the gzip end-of-stream marker)"
    return f"corrupt stream ({type(exc).__name__}: {exc})"
