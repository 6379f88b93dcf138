"""The line datasets' generator (access logs, JSON lines): the shared traffic model in each
shape, real logs' cases, and each case's fate when the committed sample is ingested."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from local.generate import GeneratedFile, generate, web_traffic
from local.generate.access_logs import CASES as ACCESS_LOG_CASES
from local.generate.http_requests import CASES as HTTP_REQUEST_CASES
from tests.conftest import missing_tool
from tests.local.test_cli import run_cli
from tests.local.test_generate import SAMPLE_RECIPES, SAMPLES, column_values

CLF_TIME = re.compile(r" \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d) ([+-]\d{4})\] ")
CUT = "line cut mid-write (the file's last, without newline)"


def sample_file(name: str, tmp_path: Path) -> tuple[Path, GeneratedFile]:
    """A copy of the committed sample ``name``, and what generating it again reports."""
    [(dataset, rows, dirty)] = [(d, r, f) for n, d, r, f in SAMPLE_RECIPES if n == name]
    result = generate(dataset, rows, tmp_path / "again" / name, seed=7, dirty=dirty)
    return Path(shutil.copy(SAMPLES / name, tmp_path / name)), result


def text_lines(path: Path) -> list[str]:
    """The file's lines without their newlines (the last may have none)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return handle.read().split("\n")


def ingest_and_read(
    capsys: pytest.CaptureFixture[str], path: Path, dataset: str, columns: str
) -> tuple[dict, dict[int, dict], dict[int, str]]:
    """``sluice ingest`` of ``path``; its result, rows by line and dead letters by line."""
    code, out, _ = run_cli(capsys, "ingest", str(path), f"--dataset={dataset}", "--json")
    assert code == 0
    [result] = json.loads(out)
    rows_sql = f"SELECT _source_line AS line, {columns} FROM {{dataset}}.{dataset}"
    dead_sql = f"SELECT line, reason FROM {{dataset}}.{dataset}_dead_letter"
    rows = json.loads(run_cli(capsys, "query", rows_sql, "--json")[1])
    dead = json.loads(run_cli(capsys, "query", dead_sql, "--json")[1])
    return result, {r["line"]: r for r in rows}, {d["line"]: d["reason"] for d in dead}


def lines_of(result: GeneratedFile, reason: str) -> list[int]:
    return [
        line
        for line, why in zip(result.dirty_lines, result.dirty_reasons, strict=True)
        if why == reason
    ]


def test_access_log_sample_lands_each_case_where_it_belongs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path, generated = sample_file("access_logs.log.gz", tmp_path)
    columns = "client_ip, user_name, method, path, query, status, bytes_sent, referrer, "
    columns += "user_agent, request"

    result, rows, dead = ingest_and_read(capsys, path, "access_logs", columns)

    cases = {case.name: lines_of(generated, case.name) for case in ACCESS_LOG_CASES}
    assert (result["rows_in"], result["rows_loaded"], result["rows_dead"]) == (5000, 4995, 5)
    assert all(len(lines) >= 2 for lines in cases.values())  # every case, twice or more
    assert lines_of(generated, CUT) == [5000]
    assert (
        sorted(dead)
        == sorted(generated.dead_lines)
        == sorted(
            cases["error-log line interleaved"]
            + cases["line of another layout (vhost_combined)"]
            + [5000]
        )
    )
    assert dead[5000].startswith("not a combined log line: expected ")
    for line in cases["TLS handshake sent to the HTTP port (400)"]:
        assert (rows[line]["method"], rows[line]["status"]) == (None, 400)
        assert rows[line]["request"].startswith(r"\x16\x03\x01")
    for line in cases["connection closed before a request: '-' (408)"]:
        assert (rows[line]["request"], rows[line]["method"], rows[line]["status"]) == (
            "-",
            None,
            408,
        )
    for line in cases["scanner's request line, not METHOD TARGET PROTOCOL (400)"]:
        assert (rows[line]["method"], rows[line]["path"], rows[line]["status"]) == (None, None, 400)
    for line in cases["'-' for size, user and referrer (a 304)"]:
        row = rows[line]
        assert (row["user_name"], row["bytes_sent"], row["referrer"], row["status"]) == (
            None, None, None, 304,
        )  # fmt: skip
    for line in cases["Apache's \\\" in the referrer and user agent"]:
        assert rows[line]["referrer"] == 'https://forum.example.net/t/best "trail" shoes?page=2'
        assert '"SiteAuditBot"' in rows[line]["user_agent"]
    for line in cases["nginx's \\xHH escapes in the request and user agent"]:
        assert (rows[line]["path"], rows[line]["query"]) == ("/search", 'q="café"')
        assert rows[line]["user_agent"] == 'Mozilla/5.0 ("Scraper"/2.1)'
    for line in cases["IPv6 client"]:
        assert ":" in rows[line]["client_ip"]
    # Only the injected requests of another shape lack a method: every clean line parses.
    no_method = sorted(line for line, row in rows.items() if row["method"] is None)
    assert no_method == sorted(
        cases["TLS handshake sent to the HTTP port (400)"]
        + cases["connection closed before a request: '-' (408)"]
        + cases["scanner's request line, not METHOD TARGET PROTOCOL (400)"]
    )


def test_http_requests_sample_lands_each_case_where_it_belongs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path, generated = sample_file("http_requests.jsonl.gz", tmp_path)
    columns = "status, response_size, referrer, user_agent, latency, trace, resource_type"

    result, rows, dead = ingest_and_read(capsys, path, "http_requests", columns)

    expected_reasons = {
        "not a JSON object (an array of one entry)": "expected a JSON object, found an array",
        "required key missing (httpRequest.status: client disconnected)":
            "expected key 'httpRequest.status', found no 'status' in 'httpRequest'",
        "bad value type (httpRequest.status as text)":
            "column 'status': expected integer, found 'OK'",
    }  # fmt: skip
    assert (result["rows_in"], result["rows_loaded"], result["rows_dead"]) == (2000, 1990, 10)
    assert set(expected_reasons) == {case.name for case in HTTP_REQUEST_CASES}
    assert dead == {
        line: expected_reasons[why]
        for line, why in zip(generated.dirty_lines, generated.dirty_reasons, strict=True)
    }
    for column in ("response_size", "referrer", "user_agent", "latency", "trace"):
        assert 0 < sum(row[column] is None for row in rows.values()) < len(rows), column
    kinds = Counter(row["resource_type"] for row in rows.values())
    assert set(kinds) == {"http_load_balancer", "cloud_run_revision"}


def test_access_logs_share_the_server_logs_traffic(tmp_path: Path) -> None:
    logs = generate("server_logs", 3000, tmp_path / "logs.csv", seed=4)
    access = generate("access_logs", 3000, tmp_path / "access.log", seed=4)

    lines = text_lines(access.path)
    statuses = [line.split('" ', 2)[1].split(" ")[0] for line in lines if line]
    ips = [line.split(" ", 1)[0] for line in lines if line]
    assert lines[-1] == "" and len(lines) == 3001  # every line ends with its newline
    assert statuses == column_values(logs.path, "status")
    assert ips == column_values(logs.path, "client_ip")


def test_access_logs_write_local_times_with_their_offsets(tmp_path: Path) -> None:
    result = generate("access_logs", 3000, tmp_path / "access.log", seed=5)

    times = [CLF_TIME.search(line) for line in text_lines(result.path) if line]
    instants = [datetime.strptime(" ".join(m.groups()), "%d/%b/%Y:%H:%M:%S %z") for m in times]
    offsets = Counter(m[2] for m in times)
    assert {"+0000", "+0100", "-0500", "+0530"} <= set(offsets)
    assert offsets["+0000"] < len(times) / 2
    assert instants == sorted(instants)  # in time order, whatever each line's zone


def test_crawlers_take_their_share_from_their_own_networks(tmp_path: Path) -> None:
    result = generate("server_logs", 20_000, tmp_path / "logs.csv", seed=6)

    agents = column_values(result.path, "user_agent")
    ips = column_values(result.path, "client_ip")
    paths = column_values(result.path, "path")
    for agent, share, target, _country, blocks in web_traffic.CRAWLERS:
        if agent in dict(web_traffic.USER_AGENTS):
            continue  # scripts also run from visitors' homes
        mine = [i for i, a in enumerate(agents) if a == agent]
        assert 0.6 * share < len(mine) / len(agents) < 1.5 * share, agent
        assert all(ips[i].rsplit(".", 1)[0] in blocks for i in mine), agent
        assert target != "pages" or any(paths[i] == "/robots.txt" for i in mine), agent


def test_client_addresses_are_in_their_countrys_blocks(tmp_path: Path) -> None:
    try:
        import iptocc
    except ImportError:
        missing_tool("iptocc (PyPI) is not installed")
    result = generate("server_logs", 20_000, tmp_path / "logs.csv", seed=8)

    ips = column_values(result.path, "client_ip")
    countries = column_values(result.path, "country_code")
    located = [(ip, c) for ip, c in zip(ips, countries, strict=True) if c]
    wrong = [(ip, c) for ip, c in located if iptocc.country_code(ip) != c]
    assert len(located) > 0.9 * len(ips) and any(":" in ip for ip, _ in located)
    assert wrong == []


def test_line_datasets_cut_only_the_last_line_and_keep_the_clean_lines(tmp_path: Path) -> None:
    clean = generate("access_logs", 2000, tmp_path / "clean.log", seed=3)
    dirty = generate("access_logs", 2000, tmp_path / "dirty.log", seed=3, dirty=0.01)
    jsonl = generate("http_requests", 500, tmp_path / "requests.jsonl", seed=3, dirty=0.02)

    clean_lines, dirty_lines = text_lines(clean.path), text_lines(dirty.path)
    assert dirty.dirty_rows == 20 and dirty.dirty_lines[-1] == 2000
    assert len(dirty_lines) == 2000 and clean_lines[1999].startswith(dirty_lines[1999])
    assert [line for i, line in enumerate(dirty_lines, 1) if i not in dirty.dirty_lines] == [
        line for i, line in enumerate(clean_lines[:2000], 1) if i not in dirty.dirty_lines
    ]
    assert set(dirty.dead_lines) < set(dirty.dirty_lines)
    assert text_lines(jsonl.path)[-1] == ""  # JSON lines: no cut line
    assert jsonl.dirty_rows == len(jsonl.dead_lines) == 10
