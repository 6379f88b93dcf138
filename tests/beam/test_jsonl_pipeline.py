"""The pipeline loads JSON lines: a gzipped Cloud Logging export whole, a big plain one in
ranges."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.beam.line_loads import load_dataset

COLUMNS = "timestamp, method, url, status, response_size, client_ip, latency, _source_line"


def entry(status: str, size: str = '"20302"', second: int = 0) -> bytes:
    """One LogEntry as a Cloud Logging sink writes it, the request nested in httpRequest."""
    return (
        b'{"httpRequest":{"requestMethod":"GET","requestUrl":"https://example.org/a?b=1",'
        b'"status":%s,"responseSize":%s,"userAgent":"curl/8.5.0","remoteIp":"203.0.113.7",'
        b'"latency":"0.012s"},"insertId":"i%d","resource":{"type":"http_load_balancer",'
        b'"labels":{"project_id":"demo"}},"severity":"INFO",'
        b'"timestamp":"2024-05-01T12:00:%02d.123456Z"}'
    ) % (status.encode(), size.encode(), second, second)


SAMPLE_EXPORT = b"\n".join(
    [
        entry("200"),  # 1
        entry("304", size="null", second=1),  # 2: no body
        b'["not", "an", "entry"]',  # 3
        entry("404", second=3),  # 4
        b"",  # 5
        entry('"500"', second=5),  # 6: status as a string
        entry("200", second=6)[:-20],  # 7: cut mid-write
    ]
)
DEAD = {
    3: "expected a JSON object, found an array",
    7: "expected a JSON object, found invalid JSON (Unterminated string starting at, "
    "character 304)",
}


def load(
    path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, *, split_bytes: int = 10**9
) -> tuple[list[tuple], list[tuple], tuple[int, int, int]]:
    return load_dataset(
        path, "http_requests", home, monkeypatch, split_bytes=split_bytes, columns=COLUMNS
    )


def test_pipeline_loads_a_gzipped_export_with_nested_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "requests_2024-05-01T12:00:00_S0.json.gz"
    path.write_bytes(gzip.compress(SAMPLE_EXPORT))

    rows, dead, counts = load(path, tmp_path / "home", monkeypatch)

    assert counts == (6, 4, 2)
    assert [(row[3], row[4], row[-1]) for row in rows] == [
        (200, 20302, 1), (304, None, 2), (404, 20302, 4), (500, 20302, 6),
    ]  # fmt: skip
    assert rows[0][1:3] == ("GET", "https://example.org/a?b=1")
    assert (rows[0][5], rows[0][6]) == ("203.0.113.7", "0.012s")
    assert dict(dead) == DEAD


def test_pipeline_loads_an_export_in_ranges_as_it_does_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "requests.json"
    path.write_bytes(b"\n".join(SAMPLE_EXPORT.split(b"\n")[:-1] * 200) + b"\n")

    whole = load(path, tmp_path / "whole", monkeypatch)
    split = load(path, tmp_path / "split", monkeypatch, split_bytes=8 * 1024)

    assert path.stat().st_size > 10 * 8 * 1024
    assert split == whole and whole[2] == (1000, 800, 200)
