"""Record scanning: boundaries, lines, field counts and quote checks, for every chunk size."""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pytest

from sluice.errors import FileRejected
from sluice.records.csvscan import (
    RecordChunk,
    describe_bad_quotes,
    iter_record_chunks,
    open_decompressed,
    split_record,
)

CHUNK_SIZES = (1, 2, 3, 7, 64, 4096)

SAMPLE_QUOTED = (
    b"id,text,n\n"
    b'1,"a, b",2\n'
    b'2,"line one\nline two\nline three",3\n'
    b'3,"say ""hi""",4\n'
    b'4,"",5\n'
    b'5,"""",6\n'
    b"6,plain,7"
)
SAMPLE_CRLF = b'id,text\r\n1,"x\r\ny"\r\n2,z\r\n'
SAMPLE_EMPTY_LINES = b"id,v\n\n1,a\r\n\r\n\n2,b\n\n"
SAMPLE_BAD_QUOTES = b'id,v\n1,ab"c"\n2,"x"y\n3, "z"\n4,"ok ""q"""\n5,"w"\r\n6,"v"\rw\n'


class ShortReads(io.RawIOBase):
    """A raw stream that hands out at most ``step`` bytes per read and logs each read."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self.reads = data, step, []

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        piece = self._data[: min(len(buffer), self._step)]
        self._data = self._data[len(piece) :]
        buffer[: len(piece)] = piece
        self.reads.append(len(buffer))
        return len(piece)

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(self._step if size < 0 else size)
        count = self.readinto(memoryview(buffer))
        return bytes(buffer[:count])


def scan(data: bytes, chunk_bytes: int, max_record_bytes: int = 1000) -> list[tuple]:
    """(line, record bytes, field count, bad quotes, file offset) of every record."""
    found = []
    for chunk in iter_record_chunks(
        io.BytesIO(data), chunk_bytes=chunk_bytes, max_record_bytes=max_record_bytes
    ):
        for i in range(len(chunk)):
            found.append(
                (
                    int(chunk.lines[i]),
                    chunk.record_bytes(i),
                    int(chunk.field_counts[i]),
                    bool(chunk.bad_quotes[i]),
                    chunk.byte_offset + int(chunk.starts[i]),
                )
            )
    return found


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_record_chunks_quoted_newlines_commas_and_escapes(chunk_bytes: int) -> None:
    records = scan(SAMPLE_QUOTED, chunk_bytes)

    assert [r[1] for r in records] == [
        b"id,text,n",
        b'1,"a, b",2',
        b'2,"line one\nline two\nline three",3',
        b'3,"say ""hi""",4',
        b'4,"",5',
        b'5,"""",6',
        b"6,plain,7",
    ]
    assert [r[0] for r in records] == [1, 2, 3, 6, 7, 8, 9]
    assert {r[2] for r in records} == {3}
    assert not any(r[3] for r in records)
    assert [SAMPLE_QUOTED[r[4] : r[4] + len(r[1])] for r in records] == [r[1] for r in records]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_record_chunks_crlf_excluded_from_ends(chunk_bytes: int) -> None:
    records = scan(SAMPLE_CRLF, chunk_bytes)

    assert [(r[0], r[1]) for r in records] == [
        (1, b"id,text"),
        (2, b'1,"x\r\ny"'),
        (4, b"2,z"),
    ]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_record_chunks_empty_lines_are_counted_not_returned(chunk_bytes: int) -> None:
    records = scan(SAMPLE_EMPTY_LINES, chunk_bytes)

    assert [(r[0], r[1]) for r in records] == [(1, b"id,v"), (3, b"1,a"), (6, b"2,b")]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_record_chunks_bare_carriage_return_stays_in_field(chunk_bytes: int) -> None:
    records = scan(b"a,b\rc,d\n1,2\r\r\n", chunk_bytes)

    assert [(r[1], r[2]) for r in records] == [(b"a,b\rc,d", 3), (b"1,2\r", 2)]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_record_chunks_flags_malformed_quotes_only(chunk_bytes: int) -> None:
    records = scan(SAMPLE_BAD_QUOTES, chunk_bytes)

    flagged = {r[1]: r[3] for r in records}
    assert flagged == {
        b"id,v": False,
        b'1,ab"c"': True,
        b'2,"x"y': True,
        b'3, "z"': True,
        b'4,"ok ""q"""': False,
        b'5,"w"': False,
        b'6,"v"\rw': True,
    }


def test_iter_record_chunks_quote_after_byte_order_mark_is_well_formed() -> None:
    records = scan(b'\xef\xbb\xbf"id","v"\n1,2\n', 3)

    assert [(r[1], r[3]) for r in records] == [(b'\xef\xbb\xbf"id","v"', False), (b"1,2", False)]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_record_chunks_last_record_without_newline(chunk_bytes: int) -> None:
    records = scan(b"a,b\n1,2\r", chunk_bytes)

    assert [r[1] for r in records] == [b"a,b", b"1,2"]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_record_chunks_unterminated_quote_rejects_file_naming_line(chunk_bytes: int) -> None:
    data = b'id,v\n1,ok\n2,"never\nclosed\n3,x\n'

    with pytest.raises(
        FileRejected, match=r"^line 3: quoted field opened here is never closed"
    ) as rejected:
        scan(data, chunk_bytes)
    assert (rejected.value.code, rejected.value.line) == ("unterminated_quote", 3)


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_record_chunks_one_stray_quote_flags_only_its_record(chunk_bytes: int) -> None:
    # Read as csv reads it: a quote inside an unquoted field is a character, opening nothing.
    data = b'id,v\n1,ok\n2,ab"c\n3,"x,\ny"\n4,5ft10"\n5,"z"\n'

    records = scan(data, chunk_bytes)

    assert [(r[0], r[1], r[3]) for r in records] == [
        (1, b"id,v", False),
        (2, b"1,ok", False),
        (3, b'2,ab"c', True),
        (4, b'3,"x,\ny"', False),
        (6, b'4,5ft10"', True),
        (7, b'5,"z"', False),
    ]


def test_iter_record_chunks_stray_quotes_agree_with_the_csv_module() -> None:
    text = 'id,v,w\n1,a"b,"c, d"\n2,"e ""f""",g"h"i\n3,j,"k\nl"\n4,m"",n\n'

    records = scan(text.encode(), 5)

    expected = list(csv.reader(io.StringIO(text, newline="")))
    assert [next(csv.reader([r[1].decode()])) for r in records] == expected
    assert [r[2] for r in records] == [len(row) for row in expected]
    assert [r[0] for r in records] == [1, 2, 3, 4, 6]


@pytest.mark.parametrize("chunk_bytes", (1, 7, 64, 4096))
def test_iter_record_chunks_oversized_record_rejects_file_naming_line(chunk_bytes: int) -> None:
    data = b"id,v\n1,short\n2," + b"x" * 200 + b"\n3,short\n"

    with pytest.raises(
        FileRejected, match=r"^line 3: expected a record of at most 100 bytes"
    ) as rejected:
        scan(data, chunk_bytes, max_record_bytes=100)
    assert (rejected.value.code, rejected.value.line) == ("record_too_long", 3)


def test_iter_record_chunks_oversized_open_quote_hints_at_stray_quote() -> None:
    data = b'id,v\n1,"' + b"x\n" * 200

    with pytest.raises(
        FileRejected, match=r"line 2: .*quoted field opened on line 2 is still open"
    ):
        scan(data, 16, max_record_bytes=100)


def test_iter_record_chunks_empty_stream_yields_nothing() -> None:
    assert scan(b"", 7) == []
    assert scan(b"\n\r\n\n", 7) == []


@pytest.mark.parametrize("chunk_bytes", (5, 64, 500))
def test_iter_record_chunks_memory_stays_bounded(chunk_bytes: int) -> None:
    data = b"".join(b'%d,"v\n%d",x\n' % (i, i) for i in range(2000))
    stream = ShortReads(data, step=1 << 20)
    longest = max(len(b'%d,"v\n%d",x\n' % (i, i)) for i in range(2000))

    chunks = list(iter_record_chunks(stream, chunk_bytes=chunk_bytes, max_record_bytes=100))

    assert max(stream.reads) <= max(chunk_bytes, 2 * longest)
    assert max(len(c.data) for c in chunks) <= chunk_bytes + 2 * longest
    assert b"".join(c.data for c in chunks) == data
    assert sum(len(c) for c in chunks) == 2000


def test_iter_record_chunks_short_reads_give_same_records() -> None:
    expected = scan(SAMPLE_QUOTED, 4096)
    stream = ShortReads(SAMPLE_QUOTED, step=3)

    chunks = list(iter_record_chunks(stream, chunk_bytes=64, max_record_bytes=1000))

    found = [(int(c.lines[i]), c.record_bytes(i)) for c in chunks for i in range(len(c))]
    assert found == [(r[0], r[1]) for r in expected]


def test_iter_record_chunks_arrays_have_documented_types() -> None:
    chunk = next(iter_record_chunks(io.BytesIO(SAMPLE_QUOTED), chunk_bytes=64, max_record_bytes=99))

    assert isinstance(chunk, RecordChunk)
    for array in (chunk.starts, chunk.ends, chunk.lines, chunk.field_counts):
        assert array.dtype == np.int64
    assert chunk.bad_quotes.dtype == np.bool_
    assert chunk.data.endswith(b"\n")


def test_open_decompressed_gunzips_by_magic_bytes_not_name() -> None:
    stream = open_decompressed(io.BytesIO(gzip.compress(SAMPLE_CRLF)))

    assert stream.read() == SAMPLE_CRLF


def test_iter_record_chunks_truncated_gzip_rejects_file() -> None:
    gzipped = gzip.compress(SAMPLE_QUOTED * 50)
    stream = open_decompressed(io.BytesIO(gzipped[: len(gzipped) // 2]))

    with pytest.raises(FileRejected, match="expected a complete gzip stream"):
        list(iter_record_chunks(stream, chunk_bytes=64, max_record_bytes=1000))


def test_open_decompressed_plain_stream_is_unchanged() -> None:
    assert open_decompressed(io.BytesIO(SAMPLE_CRLF)).read() == SAMPLE_CRLF


def test_open_decompressed_works_on_one_byte_reads() -> None:
    gzipped = gzip.compress(SAMPLE_QUOTED)

    assert open_decompressed(ShortReads(gzipped, step=1)).read() == SAMPLE_QUOTED
    assert open_decompressed(ShortReads(SAMPLE_QUOTED, step=1)).read() == SAMPLE_QUOTED
    assert open_decompressed(io.BytesIO(b"")).read() == b""
    assert open_decompressed(io.BytesIO(b"x")).read() == b"x"


def test_describe_bad_quotes_names_field_and_problem() -> None:
    assert describe_bad_quotes(b'1,ab"c').startswith("field 2: found '\"' inside an unquoted")
    assert describe_bad_quotes(b'1,"a,b"x,3') == (
        "field 2: expected ',' or end of record after a closing '\"', found 'x'"
    )


def test_split_record_unquotes_and_undoubles() -> None:
    record = b'1,"a, b","say ""hi""",,"",x\ry,"line\nbreak"'

    assert split_record(record) == ["1", "a, b", 'say "hi"', "", "", "x\ry", "line\nbreak"]
