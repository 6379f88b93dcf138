"""The access_log format: each line of a real-looking log named with its fate, the layouts,
line scanning, split ranges and validation at the door."""

from __future__ import annotations

import dataclasses
import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from sluice.contracts import Column, Contract, load_contract
from sluice.ingest.validation import ValidationReport, validate_stream
from sluice.records.formats import format_for, format_named
from sluice.records.formats.access_log import AccessLogFormat
from sluice.records.linescan import iter_line_chunks
from sluice.records.parse import iter_parsed_batches
from sluice.records.splits import ByteRange, RangeReader, find_split_points
from sluice.schema import SourceRef
from sluice.settings import REPO_ROOT, load_settings
from tests.sluice.records.line_parsing import INGESTED, parse_file, rows_by_line

SOURCE = SourceRef("gs://landing/incoming/access_logs/access.log", 7)
CONTRACT = load_contract(REPO_ROOT / "contracts" / "access_logs.yaml")

# One line per case an access log holds; each one's fate is named in the tests below.
APACHE_DOCS = (
    rb'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
    rb'"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
)
SAMPLE_COMBINED_LOG = b"\n".join(
    [
        APACHE_DOCS,  # 1
        rb'2001:db8::1 - - [24/Nov/2026:10:05:03 +0000] "GET /images/logo.png?v=3 HTTP/1.1" 304 - '
        rb'"https://example.org/shop/" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 '
        rb'Firefox/128.0"',  # 2: IPv6, no body
        rb"198.51.100.23 - - [24/Nov/2026:10:05:04 +0000] "
        rb'"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03" 400 157 "-" "-"',  # 3: TLS to port 80
        rb'198.51.100.24 - - [24/Nov/2026:10:05:05 +0000] "-" 408 0 "-" "-"',  # 4: timed out
        b"",  # 5: empty line
        rb'203.0.113.7 - - [24/Nov/2026:10:05:02 +0100] "GET /caf\xC3\xA9?q=\x22tea\x22 HTTP/2.0" '
        rb'200 5120 "-" "curl/8.5.0"',  # 6: nginx escapes, out of time order
        rb'203.0.113.8 - - [24/Nov/2026:10:05:06 +0000] "CONNECT example.com:443 HTTP/1.1" 405 '
        rb'166 "-" "Go-http-client/1.1"',  # 7
        rb'203.0.113.9 - - [24/Nov/2026:10:05:07 +0000] "GET http://example.com/x?a=1&b= '
        rb'HTTP/1.1" 200 12 "-" "-"',  # 8: absolute-URI target
        rb'192.0.2.10 - - [24/Nov/2026:10:05:08 +0000] "GET /../../etc/passwd" 400 226 '
        rb'"-" "Mozilla/5.0 zgrab/0.x"',  # 9: scanner, no protocol
        rb'66.249.66.1 - - [24/Nov/2026:10:05:09 +0000] "GET /robots.txt HTTP/1.1" 200 68 "-" '
        rb'"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) \"x\""',  # 10
        b"PHP Warning:  Undefined variable $x in /var/www/index.php on line 3",  # 11: garbage
        rb'192.0.2.11 - - [24/Nov/2026:10:05:10 +0000] "GET / HTTP/1.1" 2OO 12 "-" "-"',  # 12
        rb'203.0.113.7 - - [24/Nov/2026:10:05:11 +0000] "GET /a HTTP/1.1" 200 20302 "-" '
        rb'"Mozilla/5.0 (X11; Linux',  # 13: cut mid-write, the last line of the file
    ]
)
ROW_LINES = [1, 2, 3, 4, 6, 7, 8, 9, 10]
DEAD = {
    11: "not a combined log line: expected the user after a space, found ' Undefined variable "
    "$x in /var/www/index'",
    12: "column 'status': expected integer, found '2OO'",
    13: "not a combined log line: expected '\"' closing the user agent, found the end of the line",
}
TLS_AS_LOGGED = r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03"


def parse(
    data: bytes, contract: Contract = CONTRACT, *, chunk_bytes: int = 1 << 16
) -> tuple[pa.Table, pa.Table]:
    return parse_file(data, contract, SOURCE, chunk_bytes=chunk_bytes)


def test_combined_log_gives_each_line_its_fate_with_exact_counts() -> None:
    rows, dead = parse(SAMPLE_COMBINED_LOG)

    assert sorted(rows.column("_source_line").to_pylist()) == ROW_LINES
    assert (
        dict(zip(dead.column("line").to_pylist(), dead.column("reason").to_pylist(), strict=True))
        == DEAD
    )
    # The empty line 5 is no record: 12 records in, each a row or a dead letter.
    assert rows.num_rows + dead.num_rows == 12


def test_combined_log_apache_docs_line_is_typed_with_utc_time() -> None:
    row = rows_by_line(parse(SAMPLE_COMBINED_LOG)[0], CONTRACT)[1]

    assert row == {
        "client_ip": "127.0.0.1",
        "user_name": "frank",
        "timestamp": datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC),
        "method": "GET",
        "path": "/apache_pb.gif",
        "query": None,
        "protocol": "HTTP/1.0",
        "status": 200,
        "bytes_sent": 2326,
        "referrer": "http://www.example.com/start.html",
        "user_agent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
        "request": "GET /apache_pb.gif HTTP/1.0",
        "country_code": None,  # a loopback address is no country's
        "is_bot": True,  # Netscape 4: ua-parser's rules know no such browser
        "browser": None,
    }


def test_combined_log_dashes_are_null_and_ipv6_clients_are_kept() -> None:
    row = rows_by_line(parse(SAMPLE_COMBINED_LOG)[0], CONTRACT)[2]

    assert row["client_ip"] == "2001:db8::1" and row["user_name"] is None
    assert (row["status"], row["bytes_sent"]) == (304, None)
    assert (row["path"], row["query"]) == ("/images/logo.png", "v=3")


@pytest.mark.parametrize(
    ("line", "request_line", "status", "size"),
    [(3, TLS_AS_LOGGED, 400, 157), (4, "-", 408, 0), (9, "GET /../../etc/passwd", 400, 226)],
)
def test_combined_log_request_of_another_shape_keeps_its_row(
    line: int, request_line: str, status: int, size: int
) -> None:
    row = rows_by_line(parse(SAMPLE_COMBINED_LOG)[0], CONTRACT)[line]

    assert [row[part] for part in ("method", "path", "query", "protocol")] == [None] * 4
    assert (row["request"], row["status"], row["bytes_sent"]) == (request_line, status, size)
    assert row["referrer"] is None


def test_combined_log_escapes_are_read() -> None:
    by_line = rows_by_line(parse(SAMPLE_COMBINED_LOG)[0], CONTRACT)

    nginx = by_line[6]
    assert (nginx["path"], nginx["query"], nginx["protocol"]) == ("/café", 'q="tea"', "HTTP/2.0")
    assert nginx["timestamp"] == datetime(2026, 11, 24, 9, 5, 2, tzinfo=UTC)
    assert by_line[10]["user_agent"].endswith('+http://www.google.com/bot.html) "x"')


def test_combined_log_request_targets_split_at_the_first_question_mark() -> None:
    by_line = rows_by_line(parse(SAMPLE_COMBINED_LOG)[0], CONTRACT)

    assert (by_line[7]["method"], by_line[7]["path"]) == ("CONNECT", "example.com:443")
    assert (by_line[8]["path"], by_line[8]["query"]) == ("http://example.com/x", "a=1&b=")


def test_combined_log_parses_the_same_in_tiny_chunks() -> None:
    whole_rows, whole_dead = parse(SAMPLE_COMBINED_LOG)

    rows, dead = parse(SAMPLE_COMBINED_LOG, chunk_bytes=64)

    assert rows.drop_columns(["_ingested_at"]).equals(whole_rows.drop_columns(["_ingested_at"]))
    assert dead.column("reason").equals(whole_dead.column("reason"))


def layout_contract(layout: str, *columns: Column) -> Contract:
    return dataclasses.replace(CONTRACT, name=layout, layout=layout, columns=columns)


def test_common_layout_reads_a_line_without_referrer_and_agent() -> None:
    contract = layout_contract(
        "common", Column("client_ip", "string"), Column("ident", "string"),
        Column("path", "string"), Column("bytes_sent", "integer"),
    )  # fmt: skip
    line = b'10.1.2.3 - - [24/Nov/2026:10:05:03 +0000] "POST /login HTTP/1.1" 302 -\n'

    rows, dead = parse(line, contract)

    assert dead.num_rows == 0
    assert rows.select(["client_ip", "ident", "path", "bytes_sent"]).to_pylist() == [
        {"client_ip": "10.1.2.3", "ident": None, "path": "/login", "bytes_sent": None}
    ]


def test_vhost_combined_layout_reads_the_host_and_port_first() -> None:
    contract = layout_contract(
        "vhost_combined", Column("virtual_host", "string"), Column("server_port", "integer"),
        Column("client_ip", "string"), Column("user_agent", "string"),
    )  # fmt: skip
    line = (
        b'www.example.com:443 203.0.113.7 - - [24/Nov/2026:10:05:03 +0000] "GET / HTTP/1.1" '
        b'200 5213 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"\n'
    )

    rows, _ = parse(line, contract)

    assert rows.select(["virtual_host", "server_port", "client_ip", "user_agent"]).to_pylist() == [
        {
            "virtual_host": "www.example.com",
            "server_port": 443,
            "client_ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        }
    ]


def test_combined_request_time_layout_reads_nginx_request_time() -> None:
    contract = layout_contract(
        "combined_request_time", Column("status", "integer"), Column("request_time", "float")
    )
    line = (
        b'203.0.113.7 - - [24/Nov/2026:10:05:03 +0000] "GET /api/items?page=2 HTTP/1.1" 200 '
        b'913 "https://example.org/" "okhttp/4.12.0" 0.042\n'
    )

    rows, _ = parse(line + line.replace(b" 0.042", b" -"), contract)

    assert rows.select(["status", "request_time"]).to_pylist() == [
        {"status": 200, "request_time": 0.042},
        {"status": 200, "request_time": None},
    ]


def test_combined_layout_names_a_trailing_field_it_does_not_have() -> None:
    line = b'203.0.113.7 - - [24/Nov/2026:10:05:03 +0000] "GET / HTTP/1.1" 200 913 "-" "-" 0.042'

    _, dead = parse(line)

    assert dead.column("reason").to_pylist() == [
        "not a combined log line: expected the end of the line after '\"' closing the user "
        "agent, found ' 0.042'"
    ]


def test_format_for_configures_the_contract_layout() -> None:
    common = dataclasses.replace(CONTRACT, layout="common")

    assert isinstance(format_for(common), AccessLogFormat)
    assert format_for(common).layout == "common"
    assert format_for(CONTRACT).layout == "combined"
    assert format_named("access_log").name == "access_log"


def test_line_scan_counts_empty_lines_and_strips_crlf() -> None:
    data = b"a\r\n\r\n\nb\nc"

    chunks = list(iter_line_chunks(io.BytesIO(data), chunk_bytes=1 << 10, max_record_bytes=99))

    records = [chunk.record_bytes(i) for chunk in chunks for i in range(len(chunk))]
    assert records == [b"a", b"b", b"c"]
    assert [line for chunk in chunks for line in chunk.lines.tolist()] == [1, 4, 5]


def test_split_ranges_parse_what_a_serial_parse_does() -> None:
    data = b"\n".join(
        SAMPLE_COMBINED_LOG.split(b"\n")[:-1] * 40  # without the cut last line
    )
    serial_rows, serial_dead = parse(data)
    points, size = find_split_points(
        io.BytesIO(data), 700, chunk_bytes=512, max_record_bytes=1 << 20,
        record_format=format_named("access_log"),
    )  # fmt: skip
    starts = [(0, 1), *((p.offset, p.line) for p in points)]
    ends = [p.offset for p in points] + [size]

    parts = []
    for (start, line), end in zip(starts, ends, strict=True):
        stream = io.BufferedReader(RangeReader(io.BytesIO(data), ByteRange(start, end, line)))
        parts.append(
            list(
                iter_parsed_batches(
                    stream, CONTRACT, SOURCE, ingested_at=INGESTED, chunk_bytes=256,
                    max_record_bytes=1 << 20, byte_offset=start, first_line=line,
                )
            )
        )  # fmt: skip

    batches = [batch for part in parts for batch in part]
    assert len(points) > 10
    assert pa.concat_tables([b.rows for b in batches]).equals(serial_rows)
    assert pa.concat_tables([b.dead for b in batches]).equals(serial_dead)


# --- validation at the door ------------------------------------------------------------------


def validate(data: bytes) -> ValidationReport:
    return validate_stream(io.BytesIO(data), CONTRACT, load_settings())


def test_validation_accepts_a_gzipped_log_and_warns_of_its_odd_lines() -> None:
    report = validate(gzip.compress(SAMPLE_COMBINED_LOG))

    assert report.accepted and report.compressed and report.records == 12
    assert [w.line for w in report.warnings if w.code == "layout"] == [11, 13]
    assert [w.line for w in report.warnings if w.code == "types"] == [12]


def test_validation_rejects_a_csv_given_as_an_access_log() -> None:
    csv_text = (REPO_ROOT / "data" / "samples" / "server_logs.csv").read_bytes()

    report = validate(csv_text)

    assert not report.accepted
    [problem] = report.problems
    assert problem.code == "layout"
    assert problem.message.startswith(
        "expected at most 50% of records with a shape other than the combined layout, found "
    )
    assert "first: line 1: not a combined log line: expected " in problem.message


@pytest.mark.parametrize(("data", "found"), [(b"", "0 bytes"), (b"\n\r\n", "only whitespace")])
def test_validation_rejects_a_log_without_lines(data: bytes, found: str) -> None:
    report = validate(data)

    assert [(p.code, p.message) for p in report.problems] == [
        ("empty_file", f"expected records, found {found}")
    ]


def test_validation_records_split_points_of_a_plain_log(tmp_path: Path) -> None:
    data = b"\n".join([APACHE_DOCS] * 400) + b"\n"
    settings = load_settings(split_bytes=4096, chunk_bytes=1024)

    report = validate_stream(io.BytesIO(data), CONTRACT, settings)

    assert report.accepted and report.records == 400
    assert all(data[p.offset - 1 : p.offset] == b"\n" for p in report.split_points)
    assert len(report.split_points) == len(data) // 4096


def test_line_that_is_not_utf8_is_a_dead_letter_and_its_neighbours_load() -> None:
    raw = APACHE_DOCS.replace(b"frank", b"fr\xe4nk")  # Latin-1, as an old server logged it

    rows, dead = parse(b"\n".join([APACHE_DOCS, raw, APACHE_DOCS]))

    assert rows.column("_source_line").to_pylist() == [1, 3]
    assert dead.column("line").to_pylist() == [2]
    assert dead.column("reason")[0].as_py().startswith("invalid UTF-8 at byte ")


# --- layouts in the server's own syntax --------------------------------------------------------

NGINX_CONTRACT = """\
name: proxy_logs
version: 1
format: access_log
layout:
  nginx: |
    log_format upstream_timing '$remote_addr - $remote_user [$time_local] "$request" '
                               '$status $body_bytes_sent "$http_referer" '
                               '"$http_user_agent" rt=$request_time urt=$upstream_response_time';
columns:
  - {name: client_ip, type: string}
  - {name: timestamp, type: timestamp, format: "%d/%b/%Y:%H:%M:%S %z"}
  - {name: path, type: string}
  - {name: status, type: integer}
  - {name: request_time, type: float}
  - {name: upstream_response_time, type: string}
"""
NGINX_HEAD = rb'203.0.113.7 - - [24/Nov/2026:10:05:03 +0000] "GET /api/items?page=2 HTTP/1.1" '
SAMPLE_NGINX_LOG = b"\n".join(
    [
        NGINX_HEAD + rb'200 913 "https://example.org/" "okhttp/4.12.0" rt=0.042 urt=0.040',  # 1
        NGINX_HEAD + rb'502 157 "-" "curl/8.5.0" rt=3.004 urt=3.001, 0.002',  # 2: two upstreams
        NGINX_HEAD + rb'200 68 "-" "curl/8.5.0" rt=0.000 urt=-',  # 3: no upstream
        NGINX_HEAD + rb'200 68 "-" "curl/8.5.0"',  # 4: another server's combined line
        NGINX_HEAD + rb'200 68 "-" "curl/8.5.0" 0.042 0.040',  # 5: without the rt= label
        NGINX_HEAD + rb'200 68 "-" "curl/8.5.0" rt=fast urt=0.040',  # 6
    ]
)
NGINX_DEAD = {
    4: "not a custom nginx log line: expected a space after '\"' closing the user agent, "
    "found the end of the line",
    5: "not a custom nginx log line: expected 'rt=' before the request time after a space, "
    "found '0.042 0.040'",
    6: "column 'request_time': expected float, found 'fast'",
}
APACHE_CONTRACT = """\
name: proxied_logs
version: 1
format: access_log
layout:
  apache: 'LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\" %D \\"%{X-Forwarded-For}i\\"" proxied'
columns:
  - {name: client_ip, type: string}
  - {name: method, type: string}
  - {name: status, type: integer}
  - {name: request_time_us, type: integer}
  - {name: x_forwarded_for, type: string}
"""  # noqa: E501 (the directive pasted as it stands in apache2.conf)
APACHE_HEAD = (
    rb'10.0.0.5 - - [24/Nov/2026:10:05:03 +0000] "GET / HTTP/1.1" 200 5213 "-" "Mozilla/5.0"'
)
SAMPLE_APACHE_LOG = b"\n".join(
    [
        APACHE_HEAD + rb' 1532 "198.51.100.7, 10.0.0.1"',  # 1: behind two proxies
        APACHE_HEAD + rb' 87 "-"',  # 2: no proxy
        APACHE_HEAD,  # 3: a combined line, without the time and the proxies
        APACHE_HEAD + rb" 87 198.51.100.7",  # 4: an unquoted header
    ]
)
APACHE_DEAD = {
    3: "not a custom apache log line: expected a space after '\"' closing the user agent, "
    "found the end of the line",
    4: "not a custom apache log line: expected '\"' opening %{X-Forwarded-For}i after a space, "
    "found '198.51.100.7'",
}


def reasons_by_line(dead: pa.Table) -> dict[int, str]:
    return dict(
        zip(dead.column("line").to_pylist(), dead.column("reason").to_pylist(), strict=True)
    )


def custom_contract(tmp_path: Path, text: str) -> Contract:
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    return load_contract(path)


def test_nginx_log_format_reads_request_and_upstream_times(tmp_path: Path) -> None:
    contract = custom_contract(tmp_path, NGINX_CONTRACT)

    rows, dead = parse(SAMPLE_NGINX_LOG, contract)

    assert rows_by_line(rows, contract) == {
        1: {
            "client_ip": "203.0.113.7", "timestamp": datetime(2026, 11, 24, 10, 5, 3, tzinfo=UTC),
            "path": "/api/items", "status": 200, "request_time": 0.042,
            "upstream_response_time": "0.040",
        },
        2: {
            "client_ip": "203.0.113.7", "timestamp": datetime(2026, 11, 24, 10, 5, 3, tzinfo=UTC),
            "path": "/api/items", "status": 502, "request_time": 3.004,
            "upstream_response_time": "3.001, 0.002",
        },
        3: {
            "client_ip": "203.0.113.7", "timestamp": datetime(2026, 11, 24, 10, 5, 3, tzinfo=UTC),
            "path": "/api/items", "status": 200, "request_time": 0.0,
            "upstream_response_time": None,
        },
    }  # fmt: skip
    assert reasons_by_line(dead) == NGINX_DEAD


def test_apache_log_format_reads_microseconds_and_forwarded_for(tmp_path: Path) -> None:
    contract = custom_contract(tmp_path, APACHE_CONTRACT)

    rows, dead = parse(SAMPLE_APACHE_LOG, contract)

    assert rows.select(contract.column_names).to_pylist() == [
        {
            "client_ip": "10.0.0.5", "method": "GET", "status": 200, "request_time_us": 1532,
            "x_forwarded_for": "198.51.100.7, 10.0.0.1",
        },
        {
            "client_ip": "10.0.0.5", "method": "GET", "status": 200, "request_time_us": 87,
            "x_forwarded_for": None,
        },
    ]  # fmt: skip
    assert reasons_by_line(dead) == APACHE_DEAD


def test_nginx_iso8601_time_without_a_request_line(tmp_path: Path) -> None:
    text = (
        "name: x\nversion: 1\nformat: access_log\n"
        "layout: {nginx: '$time_iso8601 $remote_addr $request_method $uri $status'}\n"
        "columns:\n  - {name: timestamp, type: timestamp, format: iso8601}\n"
        "  - {name: request_method, type: string}\n  - {name: uri, type: string}\n"
    )
    contract = custom_contract(tmp_path, text)

    rows, dead = parse(b"2026-11-24T11:05:03+01:00 203.0.113.7 GET /health 200\n", contract)

    assert dead.num_rows == 0
    assert rows.select(contract.column_names).to_pylist() == [
        {
            "timestamp": datetime(2026, 11, 24, 10, 5, 3, tzinfo=UTC),
            "request_method": "GET",
            "uri": "/health",
        }
    ]


def test_apache_time_in_pieces_is_one_timestamp(tmp_path: Path) -> None:
    text = (
        "name: x\nversion: 1\nformat: access_log\n"
        "layout: {apache: '%{%d/%b/%Y %T}t.%{msec_frac}t %{%z}t %a %>s'}\n"  # Apache's example
        "columns:\n  - {name: timestamp, type: timestamp, format: '%d/%b/%Y %H:%M:%S.%f %z'}\n"
        "  - {name: status, type: integer}\n"
    )
    contract = custom_contract(tmp_path, text)
    lines = b"24/Nov/2026 10:05:03.250 +0100 203.0.113.7 404\n24/Nov/2026 203.0.113.7 404\n"

    rows, dead = parse(lines, contract)

    assert rows.select(contract.column_names).to_pylist() == [
        {"timestamp": datetime(2026, 11, 24, 9, 5, 3, 250000, tzinfo=UTC), "status": 404}
    ]
    assert reasons_by_line(dead) == {
        2: "not a custom apache log line: expected the time at the start of the line, "
        "found '24/Nov/2026 203.0.113.7 404'"
    }
