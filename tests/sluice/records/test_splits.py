"""Split points agree with the record scanner, wherever quoted newlines fall."""

from __future__ import annotations

import csv
import io
import random

import pytest

from sluice.records.csvscan import iter_record_chunks
from sluice.records.formats.csv import FORMAT as CSV
from sluice.records.splits import (
    WHOLE_FILE,
    ByteRange,
    RangeReader,
    SplitIndex,
    SplitPoint,
    SplitRecorder,
    find_split_points,
)
from sluice.schema import SourceRef

SOURCE = SourceRef("gs://landing/incoming/kiva_loans/a.csv", 7)


def nasty_csv(records: int, seed: int) -> bytes:
    """Records whose quoted fields hold newlines, commas, doubled quotes and CRLFs."""
    rng = random.Random(seed)
    pieces = ["a\nb", '"', ",", "x" * rng.randint(0, 40), "\r\n", " ", "é"]
    lines = ["id,text,n"]
    for i in range(records):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        quoted = '"' + text.replace('"', '""') + '"'
        ending = "\r\n" if rng.random() < 0.2 else "\n"
        blank = "\n" if rng.random() < 0.05 else ""
        lines.append(f"{i},{quoted},{rng.randint(0, 9)}{ending}{blank}".rstrip("\n"))
    return ("\n".join(lines) + "\n").encode()


def record_starts(data: bytes) -> dict[int, int]:
    """Every record's start offset -> its line, as the scanner sees the whole file."""
    starts: dict[int, int] = {}
    for chunk in iter_record_chunks(io.BytesIO(data), chunk_bytes=4096, max_record_bytes=10**6):
        for start, line in zip(chunk.starts, chunk.lines, strict=True):
            starts[chunk.byte_offset + int(start)] = int(line)
    return starts


def csv_rows(data: bytes) -> list[list[str]]:
    """The rows Python's csv module reads (empty lines are no rows, as for the scanner)."""
    return [row for row in csv.reader(io.StringIO(data.decode(), newline="")) if row]


@pytest.mark.parametrize("seed", range(6))
def test_find_split_points_cut_where_the_csv_module_sees_a_row_start(seed: int) -> None:
    data = nasty_csv(800, seed)
    whole = csv_rows(data)

    points, size = find_split_points(
        io.BytesIO(data), 3000, chunk_bytes=1024, max_record_bytes=10**6, record_format=CSV
    )

    assert size == len(data)
    assert len(points) >= len(data) // 3000 - 1 > 3
    for point in points:
        tail = csv_rows(data[point.offset :])
        assert tail == whole[len(whole) - len(tail) :], point
        assert point.line == data[: point.offset].count(b"\n") + 1


def test_find_split_points_skips_newlines_inside_quotes() -> None:
    # Every newline from byte 10 to 60 is inside one quoted field.
    data = b'id,text,n\n1,"' + b"line\n" * 10 + b'",2\n3,x,4\n'

    points, _ = find_split_points(
        io.BytesIO(data), 12, chunk_bytes=7, max_record_bytes=10**6, record_format=CSV
    )

    assert [p.offset for p in points] == [data.index(b"3,x")]
    assert points[0].line == data[: points[0].offset].count(b"\n") + 1


def test_find_split_points_of_a_file_under_the_interval_is_none() -> None:
    data = nasty_csv(20, 1)

    assert find_split_points(
        io.BytesIO(data), len(data), chunk_bytes=64, max_record_bytes=10**6, record_format=CSV
    ) == ((), len(data))


def test_split_recorder_takes_a_record_start_every_interval() -> None:
    data = nasty_csv(2000, 3)
    recorder = SplitRecorder(10_000)
    chunks = iter_record_chunks(io.BytesIO(data), chunk_bytes=1500, max_record_bytes=10**6)

    for chunk in chunks:
        recorder.observe(chunk)

    starts = record_starts(data)
    offsets = [p.offset for p in recorder.points]
    assert all(starts[p.offset] == p.line for p in recorder.points)
    assert all(b - a >= 10_000 for a, b in zip([0, *offsets], offsets, strict=False))
    assert len(offsets) >= len(data) // 12_000


def test_split_index_ranges_cover_the_file_end_to_end() -> None:
    index = SplitIndex(SOURCE.uri, SOURCE.generation, 100, (SplitPoint(30, 4), SplitPoint(70, 9)))

    assert index.ranges() == [ByteRange(0, 30, 1), ByteRange(30, 70, 4), ByteRange(70, None, 9)]
    assert index.ranges()[0].at_file_start and not index.ranges()[1].at_file_start


def test_split_index_round_trips_and_knows_its_source() -> None:
    index = SplitIndex(SOURCE.uri, SOURCE.generation, 100, (SplitPoint(30, 4),))

    again = SplitIndex.from_json(index.to_json())

    assert again == index
    assert again.belongs_to(SOURCE)
    assert not again.belongs_to(SourceRef(SOURCE.uri, SOURCE.generation + 1))


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        '{"source_uri": "a", "generation": 1, "size": 10}',
        '{"source_uri": "a", "generation": 1, "size": 10, "points": [[5, 2], [3, 1]]}',
        '{"source_uri": "a", "generation": 1, "size": 10, "points": [[0, 1]]}',
        '{"source_uri": "a", "generation": 1, "size": 10, "points": [[12, 3]]}',
    ],
)
def test_split_index_from_json_refuses_what_is_not_an_index(document: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        SplitIndex.from_json(document)


def test_range_reader_reads_exactly_its_range() -> None:
    stream = io.BytesIO(b"0123456789")

    assert RangeReader(stream, ByteRange(3, 7, 1)).read() == b"3456"
    assert RangeReader(stream, ByteRange(8, None, 1)).read() == b"89"
    assert RangeReader(stream, WHOLE_FILE).read() == b"0123456789"
