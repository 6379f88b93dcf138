"""The jsonl format: each line of a JSON-lines file named with its fate, column paths, the
bulk read, split ranges and validation at the door."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sluice.contracts import Column, Contract, load_contract
from sluice.ingest.validation import ValidationReport, validate_stream
from sluice.records.formats import format_for, format_named
from sluice.records.formats.jsonl import JsonLinesFormat
from sluice.records.parse import iter_parsed_batches
from sluice.records.splits import ByteRange, RangeReader, find_split_points
from sluice.schema import SourceRef
from sluice.settings import REPO_ROOT, load_settings
from tests.sluice.records.line_parsing import INGESTED, parse_file, rows_by_line

SOURCE = SourceRef("gs://landing/incoming/requests/requests.json", 7)
CONTRACT = Contract(
    name="requests",
    version=1,
    landing_prefix="incoming/requests/",
    format="jsonl",
    columns=(
        Column("timestamp", "timestamp", format="iso8601", nullable=False),
        Column("method", "string", path="httpRequest.requestMethod", required=False),
        Column("status", "integer", path="httpRequest.status", nullable=False),
        Column("size", "integer", path="httpRequest.responseSize", required=False),
        Column("labels", "string", path="resource.labels", required=False),
        Column("note", "string", required=False),
    ),
)
TIME = b'"timestamp":"2024-05-01T12:00:00.123456Z"'
# One line per case a JSON-lines export holds; each one's fate is named in the tests below.
SAMPLE_JSON_LINES = b"\n".join(
    [
        b'{"insertId":"x1",' + TIME + b',"httpRequest":{"requestMethod":"GET","status":200,'
        b'"responseSize":"5120","latency":"0.012s"},'
        b'"resource":{"type":"http_load_balancer","labels":{"zone":"europe-west1-b","n":[1,2]}}}',
        # 1: nested fields; a nested object kept as JSON text
        b"{" + TIME + b',"httpRequest":{"status":"404"},"note":"caf\\u00e9 \\ud83d\\ude00"}',
        # 2: a number as a string (nginx), unicode escapes
        b"{" + TIME + b',"httpRequest":{"status":500},"note":42.5}',  # 3: a number, string column
        b'[{"status":200}]',  # 4: an array
        b'"GET / 200"',  # 5: a bare string
        b"",  # 6: empty line
        b"{" + TIME + b',"httpRequest":{"requestMethod":"GET"}}',  # 7: a required key missing
        b"{" + TIME + b',"httpRequest":{"status":200,"requestMethod":"GE',  # 8: cut mid-write
        b"{" + TIME + b',"httpRequest":{"status":null}}',  # 9: null in a non-nullable column
        b"{" + TIME + b',"httpRequest":{"status":200,"status":201}}',  # 10: a key twice
        b"{" + TIME + b',"httpRequest":{"status":"2OO"},"note":null}',  # 11: not an integer
        b"{" + TIME + b',"httpRequest":"GET /","note":true}',  # 12: not an object on the path
    ]
)
ROW_LINES = [1, 2, 3]
DEAD = {
    4: "expected a JSON object, found an array",
    5: "expected a JSON object, found a string 'GET / 200'",
    7: "expected key 'httpRequest.status', found no 'status' in 'httpRequest'",
    8: "expected a JSON object, found invalid JSON (Unterminated string starting at, character 88)",
    9: "column 'status': expected a value, found empty",
    10: "expected each key once in an object, found 'status' twice",
    11: "column 'status': expected integer, found '2OO'",
    12: "expected an object at 'httpRequest' holding 'status', found a string 'GET /'",
}


def parse(
    data: bytes, contract: Contract = CONTRACT, *, chunk_bytes: int = 1 << 16
) -> tuple[pa.Table, pa.Table]:
    return parse_file(data, contract, SOURCE, chunk_bytes=chunk_bytes)


def test_json_lines_give_each_line_its_fate_with_exact_counts() -> None:
    rows, dead = parse(SAMPLE_JSON_LINES)

    assert rows.column("_source_line").to_pylist() == ROW_LINES
    lines, reasons = dead.column("line").to_pylist(), dead.column("reason").to_pylist()
    assert dict(zip(lines, reasons, strict=True)) == DEAD
    # The empty line 6 is no record: 11 records in, each a row or a dead letter.
    assert rows.num_rows + dead.num_rows == 11
    assert dead.column("raw_text")[0].as_py() == '[{"status":200}]'


def test_json_lines_read_nested_paths_and_keep_objects_as_json_text() -> None:
    row = rows_by_line(parse(SAMPLE_JSON_LINES)[0], CONTRACT)[1]

    assert row == {
        "timestamp": datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        "method": "GET",
        "status": 200,
        "size": 5120,
        "labels": '{"zone":"europe-west1-b","n":[1,2]}',
        "note": None,
    }


def test_json_lines_type_strings_and_write_numbers_as_text() -> None:
    by_line = rows_by_line(parse(SAMPLE_JSON_LINES)[0], CONTRACT)

    assert (by_line[2]["status"], by_line[2]["note"]) == (404, "café 😀")
    assert (by_line[3]["status"], by_line[3]["note"], by_line[3]["method"]) == (500, "42.5", None)


def test_json_lines_parse_the_same_in_tiny_chunks() -> None:
    whole_rows, whole_dead = parse(SAMPLE_JSON_LINES)

    rows, dead = parse(SAMPLE_JSON_LINES, chunk_bytes=64)

    assert rows.drop_columns(["_ingested_at"]).equals(whole_rows.drop_columns(["_ingested_at"]))
    assert dead.column("reason").equals(whole_dead.column("reason"))


def test_json_lines_of_one_shape_are_read_by_arrow_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("read line by line")

    monkeypatch.setattr(JsonLinesFormat, "_read_line_by_line", refuse)
    monkeypatch.setattr(JsonLinesFormat, "_line_texts", refuse)
    contract = Contract(
        name="flat", version=1, landing_prefix="incoming/flat/", format="jsonl",
        columns=(*CONTRACT.columns[:4], Column("note", "string", required=False)),
    )  # fmt: skip
    lines = [b"{" + TIME + b',"httpRequest":{"status":%d},"note":"n"}' % s for s in range(400)]

    rows, dead = parse(b"\n".join(lines) + b"\n", contract, chunk_bytes=4096)

    assert (rows.num_rows, dead.num_rows) == (400, 0)
    assert rows.column("status").to_pylist() == list(range(400))


def test_http_requests_contract_loads_a_google_export_line() -> None:
    contract = load_contract(REPO_ROOT / "contracts" / "http_requests.yaml")
    line = (
        b'{"httpRequest":{"requestMethod":"GET","requestUrl":"https://example.org/shop?q=1",'
        b'"requestSize":"91","status":200,"responseSize":"20302","userAgent":"curl/8.5.0",'
        b'"remoteIp":"2001:db8::1","serverIp":"10.0.0.3","referer":"https://example.org/",'
        b'"latency":"0.012345s","protocol":"HTTP/1.1"},"insertId":"1f2e3d",'
        b'"resource":{"type":"http_load_balancer","labels":{"project_id":"demo"}},'
        b'"timestamp":"2024-05-01T12:00:00.123456789Z","severity":"INFO",'
        b'"logName":"projects/demo/logs/requests","trace":"projects/demo/traces/abc",'
        b'"receiveTimestamp":"2024-05-01T12:00:01.5Z"}\n'
    )

    rows, dead = parse(line, contract)

    assert dead.num_rows == 0
    assert rows.select(contract.column_names).to_pylist() == [
        {
            "timestamp": datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
            "method": "GET", "url": "https://example.org/shop?q=1", "status": 200,
            "response_size": 20302, "client_ip": "2001:db8::1", "user_agent": "curl/8.5.0",
            "referrer": "https://example.org/", "latency": "0.012345s", "protocol": "HTTP/1.1",
            "severity": "INFO", "trace": "projects/demo/traces/abc",
            "resource_type": "http_load_balancer", "insert_id": "1f2e3d",
            "country_code": None, "is_bot": True,  # a documentation address; curl
        }
    ]  # fmt: skip


def test_format_for_reads_the_contract_paths() -> None:
    record_format = format_for(CONTRACT)

    assert isinstance(record_format, JsonLinesFormat)
    assert record_format.paths["status"] == ("httpRequest", "status")
    assert format_for(CONTRACT) is record_format  # what it learns carries over


def test_split_ranges_parse_what_a_serial_parse_does() -> None:
    data = b"\n".join(SAMPLE_JSON_LINES.split(b"\n") * 40)
    serial_rows, serial_dead = parse(data)
    points, size = find_split_points(
        io.BytesIO(data), 700, chunk_bytes=512, max_record_bytes=1 << 20,
        record_format=format_named("jsonl"),
    )  # fmt: skip
    starts = [(0, 1), *((p.offset, p.line) for p in points)]
    ends = [p.offset for p in points] + [size]

    batches = []
    for (start, line), end in zip(starts, ends, strict=True):
        stream = io.BufferedReader(RangeReader(io.BytesIO(data), ByteRange(start, end, line)))
        batches += iter_parsed_batches(
            stream, CONTRACT, SOURCE, ingested_at=INGESTED, chunk_bytes=256,
            max_record_bytes=1 << 20, byte_offset=start, first_line=line,
        )  # fmt: skip

    assert len(points) > 10
    assert pa.concat_tables([b.rows for b in batches]).equals(serial_rows)
    assert pa.concat_tables([b.dead for b in batches]).equals(serial_dead)


# --- validation at the door ------------------------------------------------------------------


def validate(data: bytes) -> ValidationReport:
    return validate_stream(io.BytesIO(data), CONTRACT, load_settings())


def test_validation_accepts_gzipped_json_lines_and_warns_of_odd_lines() -> None:
    report = validate(gzip.compress(SAMPLE_JSON_LINES))

    assert report.accepted and report.compressed and report.records == 11
    assert [w.line for w in report.warnings if w.code == "json"] == [4, 5, 8, 10]
    assert [w.line for w in report.warnings if w.code == "missing_field"] == [7, 12]
    assert [w.line for w in report.warnings if w.code == "types"] == [9, 11]


def test_validation_rejects_a_csv_given_as_json_lines() -> None:
    csv_text = (REPO_ROOT / "data" / "samples" / "server_logs.csv").read_bytes()

    report = validate(csv_text)

    assert not report.accepted
    [problem] = report.problems
    assert problem.code == "json"
    assert problem.message.startswith(
        "expected at most 50% of records with a line that is not a JSON object, found "
    )
    assert "first: line 1: expected a JSON object, found invalid JSON (" in problem.message


def test_validation_rejects_json_lines_without_lines() -> None:
    report = validate(b"\n\n")

    assert [(p.code, p.message) for p in report.problems] == [
        ("empty_file", "expected records, found only whitespace")
    ]


@pytest.mark.parametrize(
    "bad",
    [b'"note":"caf\xe9"', b'"resource":{"labels":{"zone":"caf\xe9"}}'],
    ids=["string", "json-text"],
)
def test_line_that_is_not_utf8_is_a_dead_letter_and_its_neighbours_load(bad: bytes) -> None:
    data = b"\n".join(
        b"{" + TIME + b',"httpRequest":{"status":%d},%s}' % (status, extra)
        for status, extra in [(200, b'"note":"a"'), (201, bad), (202, b'"note":"b"')]
    )

    rows, dead = parse(data)

    assert rows.column("status").to_pylist() == [200, 202]
    [reason] = dead.column("reason").to_pylist()
    assert reason.startswith("invalid UTF-8 at byte ") and reason.endswith("found byte 0xe9)")


def test_lone_surrogate_escape_is_a_dead_letter() -> None:
    data = b"{" + TIME + b',"httpRequest":{"status":200},"note":"\\ud800"}\n'

    rows, dead = parse(data)

    assert rows.num_rows == 0
    assert dead.column("reason").to_pylist() == [
        "expected text at 'note', found a lone surrogate escape (half a UTF-16 pair)"
    ]


@pytest.mark.parametrize(
    "notes",
    [
        [b"1.5", b"2.0", b"1e-7", b"-0.0", b"3"],
        [b"1", b"2", b"100000000000000000000"],
        [b'{"a": 1}', b'[1, "b"]', b"null", b"true"],
    ],
    ids=["floats", "huge-integer", "objects"],
)
def test_arrow_and_python_write_the_same_text(
    notes: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"\n".join(
        b"{" + TIME + b',"httpRequest":{"status":200},"note":%s}' % note for note in notes * 50
    )
    by_arrow = parse(data, chunk_bytes=512)

    monkeypatch.setattr(JsonLinesFormat, "_read_in_bulk", lambda self, chunk: None)
    by_python = parse(data, chunk_bytes=512)

    assert by_arrow[0].column("note").equals(by_python[0].column("note"))
    assert by_arrow[1].num_rows == by_python[1].num_rows == 0
