"""Parsing: every record becomes one typed row or one dead letter, whatever the chunk size."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sluice.contracts import Column, Contract
from sluice.errors import FileRejected
from sluice.records.csvscan import iter_record_chunks, open_decompressed
from sluice.records.parse import ParsedBatch, iter_parsed_batches, parse_chunk, read_header
from sluice.schema import SourceRef, dead_letter_schema, processed_schema

CHUNK_SIZES = (1, 7, 64, 4096)
SOURCE = SourceRef("gs://landing/incoming/test/file.csv", 1700000000000001)
INGESTED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

TEXT_CONTRACT = Contract(
    name="texts",
    version=3,
    landing_prefix="incoming/texts/",
    columns=(
        Column("id", "integer", nullable=False),
        Column("code", "string"),
        Column("note", "string"),
    ),
)
SAMPLE_TEXTS = (
    b'id,code,note\r\n1,NA,"a, b"\r\n2,,"two\r\nlines"\r\n3,null,"say ""hi"""\r\n\r\n4,x,\r\n'
)
SAMPLE_DIRTY = (
    b"id,code,note\n"
    b"1,a,fine\n"
    b"2,b\n"  # too few fields
    b'3,c,"x"y\n'  # malformed quoting
    b"4,d,caf\xe9\n"  # Latin-1, not UTF-8
    b"five,e,words\n"  # not an integer
    b",f,empty id\n"  # required value missing
    b"6,g,a,b\n"  # too many fields
    b'7,h,"ok,\nstill ok"\n'
)


def parse_all(data: bytes, contract: Contract, chunk_bytes: int) -> list[ParsedBatch]:
    """Every batch of ``data`` parsed with ``contract``."""
    return list(
        iter_parsed_batches(
            io.BytesIO(data),
            contract,
            SOURCE,
            ingested_at=INGESTED_AT,
            chunk_bytes=chunk_bytes,
            max_record_bytes=10_000,
        )
    )


def rows_and_dead(batches: list[ParsedBatch]) -> tuple[list[dict], list[dict]]:
    """All processed rows and all dead letters, as dicts."""
    rows = [row for b in batches for row in b.rows.to_pylist()]
    dead = [row for b in batches for row in b.dead.to_pylist()]
    return rows, dead


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_parsed_batches_keeps_quoted_text_and_na(chunk_bytes: int) -> None:
    rows, dead = rows_and_dead(parse_all(SAMPLE_TEXTS, TEXT_CONTRACT, chunk_bytes))

    assert dead == []
    assert [(r["id"], r["code"], r["note"], r["_source_line"]) for r in rows] == [
        (1, "NA", "a, b", 2),
        (2, None, "two\r\nlines", 3),
        (3, "null", 'say "hi"', 5),
        (4, "x", None, 7),
    ]


def test_iter_parsed_batches_adds_lineage_and_exact_schemas() -> None:
    batches = parse_all(SAMPLE_DIRTY, TEXT_CONTRACT, 4096)

    for batch in batches:
        assert batch.rows.schema == processed_schema(TEXT_CONTRACT)
        assert batch.dead.schema == dead_letter_schema()
    row = batches[0].rows.to_pylist()[0]
    assert row["_source_uri"] == SOURCE.uri
    assert row["_source_generation"] == SOURCE.generation
    assert row["_contract_version"] == 3
    assert row["_ingested_at"] == INGESTED_AT
    letter = batches[0].dead.to_pylist()[0]
    assert (letter["source_uri"], letter["source_generation"]) == (SOURCE.uri, SOURCE.generation)
    assert (letter["contract_version"], letter["ingested_at"]) == (3, INGESTED_AT)


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_parsed_batches_sends_each_bad_record_to_dead_letters(chunk_bytes: int) -> None:
    rows, dead = rows_and_dead(parse_all(SAMPLE_DIRTY, TEXT_CONTRACT, chunk_bytes))

    assert [(r["id"], r["note"], r["_source_line"]) for r in rows] == [
        (1, "fine", 2),
        (7, "ok,\nstill ok", 9),
    ]
    assert [(d["line"], d["raw_text"]) for d in dead] == [
        (3, "2,b"),
        (4, '3,c,"x"y'),
        (5, "4,d,caf\ufffd"),
        (6, "five,e,words"),
        (7, ",f,empty id"),
        (8, "6,g,a,b"),
    ]
    reasons = [d["reason"] for d in dead]
    assert reasons[0] == "expected 3 fields, found 2"
    assert reasons[1].startswith("malformed quoting: field 3:")
    offset = SAMPLE_DIRTY.index(b"\xe9")
    assert reasons[2] == (
        f"invalid UTF-8 at byte {offset} of the file (expected UTF-8 text, found byte 0xe9)"
    )
    assert reasons[3].startswith("column 'id': expected") and "'five'" in reasons[3]
    assert reasons[4].startswith("column 'id': expected")
    assert reasons[5] == "expected 3 fields, found 4"


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_parsed_batches_every_record_in_is_one_row_out(chunk_bytes: int) -> None:
    data_records = sum(1 for _ in iter_record_chunks_records(SAMPLE_DIRTY)) - 1

    batches = parse_all(SAMPLE_DIRTY, TEXT_CONTRACT, chunk_bytes)

    assert sum(b.rows_in for b in batches) == data_records == 8
    assert all(b.rows_in == b.rows.num_rows + b.dead.num_rows for b in batches)


def iter_record_chunks_records(data: bytes) -> list[bytes]:
    """The raw records the scanner finds in ``data``."""
    chunks = iter_record_chunks(io.BytesIO(data), chunk_bytes=4096, max_record_bytes=10_000)
    return [c.record_bytes(i) for c in chunks for i in range(len(c))]


def test_iter_parsed_batches_maps_reordered_header_by_name() -> None:
    data = b'note,id,code\n"hello, you",1,NA\nbye,2,\n'

    rows, dead = rows_and_dead(parse_all(data, TEXT_CONTRACT, 7))

    assert dead == []
    assert [(r["id"], r["code"], r["note"]) for r in rows] == [
        (1, "NA", "hello, you"),
        (2, None, "bye"),
    ]


def test_iter_parsed_batches_header_with_bom_and_crlf() -> None:
    data = b'\xef\xbb\xbf"id",code,note\r\n1,a,b\r\n'

    rows, _ = rows_and_dead(parse_all(data, TEXT_CONTRACT, 3))

    assert [(r["id"], r["code"], r["note"]) for r in rows] == [(1, "a", "b")]


def test_iter_parsed_batches_rejects_bad_header() -> None:
    with pytest.raises(FileRejected, match="expected required column"):
        parse_all(b"id,note\n1,x\n", TEXT_CONTRACT, 64)
    with pytest.raises(FileRejected, match="unknown column"):
        parse_all(b"id,code,note,extra\n1,x,y,z\n", TEXT_CONTRACT, 64)


def test_iter_parsed_batches_rejects_header_with_malformed_quote() -> None:
    with pytest.raises(FileRejected, match=r"^line 1: header has malformed quoting: field 2:"):
        parse_all(b'\xef\xbb\xbf"id",co"d"e,note\n1,a,b\n', TEXT_CONTRACT, 64)


def test_iter_parsed_batches_rejects_empty_file() -> None:
    with pytest.raises(FileRejected, match="found an empty file"):
        parse_all(b"\n\n", TEXT_CONTRACT, 64)


def test_iter_parsed_batches_rejects_unterminated_quote() -> None:
    data = b'id,code,note\n1,a,b\n2,b,"never closed\n3,c,d\n'

    with pytest.raises(FileRejected, match=r"^line 3: quoted field opened here is never closed"):
        parse_all(data, TEXT_CONTRACT, 7)


def test_iter_parsed_batches_header_only_gives_no_rows() -> None:
    assert sum(b.rows_in for b in parse_all(b"id,code,note\r\n", TEXT_CONTRACT, 64)) == 0


def test_iter_parsed_batches_reads_gzip_through_open_decompressed() -> None:
    stream = open_decompressed(io.BytesIO(gzip.compress(SAMPLE_TEXTS)))

    batches = list(
        iter_parsed_batches(
            stream,
            TEXT_CONTRACT,
            SOURCE,
            ingested_at=INGESTED_AT,
            chunk_bytes=16,
            max_record_bytes=99,
        )
    )

    assert [r["note"] for b in batches for r in b.rows.to_pylist()][:2] == ["a, b", "two\r\nlines"]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_iter_parsed_batches_bare_carriage_return_and_bom_stay_in_fields(chunk_bytes: int) -> None:
    data = b"id,code,note\n1,a\rb,c\n2,\xef\xbb\xbfx,y\n\xef\xbb\xbf3,z,w\n4,p,q\n"

    rows, dead = rows_and_dead(parse_all(data, TEXT_CONTRACT, chunk_bytes))

    assert [(r["id"], r["code"], r["note"]) for r in rows] == [
        (1, "a\rb", "c"),
        (2, "\ufeffx", "y"),
        (4, "p", "q"),
    ]
    assert [d["raw_text"] for d in dead] == ["\ufeff3,z,w"]  # a BOM in a value is no integer


def test_parse_chunk_parses_any_chunk_on_its_own() -> None:
    chunks = list(
        iter_record_chunks(io.BytesIO(SAMPLE_DIRTY), chunk_bytes=40, max_record_bytes=999)
    )
    mapping = read_header(chunks[0], TEXT_CONTRACT)

    batches = [
        parse_chunk(chunk, mapping, TEXT_CONTRACT, SOURCE, ingested_at=INGESTED_AT)
        for chunk in [chunks[0].drop_first(), *chunks[1:]]
    ]

    expected = parse_all(SAMPLE_DIRTY, TEXT_CONTRACT, 40)
    assert [b.rows.to_pylist() for b in batches] == [b.rows.to_pylist() for b in expected]
    assert [b.dead.to_pylist() for b in batches] == [b.dead.to_pylist() for b in expected]


def test_parse_chunk_of_leading_records_parses_only_those_with_pyarrow(caplog) -> None:
    chunk = next(
        iter_record_chunks(io.BytesIO(SAMPLE_TEXTS), chunk_bytes=4096, max_record_bytes=999)
    )
    mapping = read_header(chunk, TEXT_CONTRACT)
    body = chunk.drop_first()
    leading = dataclasses.replace(
        body,
        starts=body.starts[:2],
        ends=body.ends[:2],
        lines=body.lines[:2],
        field_counts=body.field_counts[:2],
        bad_quotes=body.bad_quotes[:2],
    )

    batch = parse_chunk(leading, mapping, TEXT_CONTRACT, SOURCE, ingested_at=INGESTED_AT)

    full = parse_chunk(body, mapping, TEXT_CONTRACT, SOURCE, ingested_at=INGESTED_AT)
    assert len(body) > 2
    assert batch.rows.to_pylist() == full.rows.to_pylist()[:2]
    assert "disagree" not in caplog.text  # no fall back to the slow per-record split


def test_parse_chunk_without_records_gives_empty_tables() -> None:
    chunk = next(
        iter_record_chunks(io.BytesIO(b"id,code,note\n"), chunk_bytes=64, max_record_bytes=99)
    )
    mapping = read_header(chunk, TEXT_CONTRACT)

    batch = parse_chunk(chunk.drop_first(), mapping, TEXT_CONTRACT, SOURCE, ingested_at=INGESTED_AT)

    assert (batch.rows.num_rows, batch.dead.num_rows) == (0, 0)
    assert batch.rows.schema == processed_schema(TEXT_CONTRACT)


NASTY_PIECES = [
    "",
    " ",
    ",",
    '"',
    '""',
    "\n",
    "\r\n",
    "\r",
    "NA",
    "null",
    "é",
    "Гулмире",
    "\t",
    "a",
    "x y",
]


def random_table(rng: random.Random, columns: int, rows: int) -> list[list[str]]:
    """Rows of values built from pieces that break naive CSV parsing."""
    return [
        ["".join(rng.choices(NASTY_PIECES, k=rng.randint(0, 4))) for _ in range(columns)]
        for _ in range(rows)
    ]


def write_csv(table: list[list[str]], names: list[str], **dialect: object) -> tuple[str, list[int]]:
    """CSV text written by Python's csv module, and the line each data record starts on."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, **dialect)
    writer.writerow(names)
    lines, line = [], 2
    for values in table:
        before = text.tell()
        writer.writerow(values)
        lines.append(line)
        line += text.getvalue()[before:].count("\n")
    return text.getvalue(), lines


def random_case(seed: int) -> tuple[Contract, list[str], list[list[str]]]:
    """A string-only contract and a random table of nasty values for it."""
    rng = random.Random(seed)
    names = [f"c{i}" for i in range(rng.randint(2, 6))]
    contract = Contract("random", 1, "incoming/random/", tuple(Column(n, "string") for n in names))
    return contract, names, random_table(rng, len(names), rng.randint(0, 60))


# Dialects whose output csv.reader reads back exactly (see the bare-\r test below).
ROUND_TRIP_DIALECTS = (
    {"lineterminator": "\r\n"},
    {"lineterminator": "\n", "quoting": csv.QUOTE_ALL},
)


@pytest.mark.parametrize("seed", range(8))
def test_iter_parsed_batches_matches_python_csv_on_random_files(seed: int) -> None:
    contract, names, table = random_case(seed)
    text, lines = write_csv(table, names, **ROUND_TRIP_DIALECTS[seed % 2])
    by_csv_module = list(csv.reader(io.StringIO(text, newline="")))[1:]

    for chunk_bytes in (1, 7, 64, 1 << 20):
        rows, dead = rows_and_dead(parse_all(text.encode("utf-8"), contract, chunk_bytes))

        assert dead == []
        assert [[r[n] or "" for n in names] for r in rows] == by_csv_module == table
        assert all(r[n] != "" for r in rows for n in names)  # empty fields are NULL
        assert [r["_source_line"] for r in rows] == lines


@pytest.mark.parametrize("seed", range(4))
def test_iter_parsed_batches_recovers_unquoted_carriage_returns(seed: int) -> None:
    # With lineterminator "\n", csv.writer leaves a lone "\r" unquoted; csv.reader then
    # splits the record there, while Sluice keeps it as data and returns what was written.
    contract, names, table = random_case(seed)
    # A last value ending in "\r" would end the line "\r\n": a terminator, by design.
    table = [[*values[:-1], values[-1].rstrip("\r")] for values in table]
    text, lines = write_csv(table, names, lineterminator="\n")

    for chunk_bytes in (1, 7, 64, 1 << 20):
        rows, dead = rows_and_dead(parse_all(text.encode("utf-8"), contract, chunk_bytes))

        assert dead == []
        assert [[r[n] or "" for n in names] for r in rows] == table
        assert [r["_source_line"] for r in rows] == lines


def test_iter_parsed_batches_random_dirty_records_each_land_once() -> None:
    rng = random.Random(7)
    contract = Contract(
        "dirty", 1, "incoming/dirty/", (Column("n", "integer"), Column("t", "string"))
    )
    records = []
    for i in range(300):
        kind = rng.choice(["ok", "ok", "ok", "short", "long", "quote", "type", "utf8"])
        records.append(
            {
                "ok": b'%d,"t,%d"' % (i, i),
                "short": b"%d" % i,
                "long": b"%d,a,b" % i,
                "quote": b'%d,a"b"' % i,
                "type": b"x%d,t" % i,
                "utf8": b"%d,\xff" % i,
            }[kind]
        )
    data = b"n,t\n" + b"\n".join(records) + b"\n"

    results = {
        chunk_bytes: rows_and_dead(parse_all(data, contract, chunk_bytes))
        for chunk_bytes in (3, 50, 1000, 1 << 20)
    }

    for rows, dead in results.values():
        assert len(rows) + len(dead) == len(records)
        assert sorted([r["_source_line"] for r in rows] + [d["line"] for d in dead]) == list(
            range(2, len(records) + 2)
        )
        assert all(records[d["line"] - 2].decode("utf-8", "replace") == d["raw_text"] for d in dead)
        assert all(r["t"] == f"t,{r['n']}" for r in rows)
    assert len({repr(result) for result in results.values()}) == 1


def test_iter_parsed_batches_falls_back_when_pyarrow_disagrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sluice.records.formats.csv

    monkeypatch.setattr(
        sluice.records.formats.csv, "_read_with_pyarrow", lambda *args: pa.table({"f0": ["1"]})
    )

    rows, dead = rows_and_dead(parse_all(SAMPLE_TEXTS, TEXT_CONTRACT, 4096))

    assert dead == []
    assert [(r["id"], r["note"]) for r in rows] == [
        (1, "a, b"),
        (2, "two\r\nlines"),
        (3, 'say "hi"'),
        (4, None),
    ]
