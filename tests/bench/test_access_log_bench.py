"""bench/access_log_bench.py at a tiny size: the same lines counted by every tool, the ratios
worked out, and a DuckDB baseline that reads every field as Sluice does.

GoAccess is optional here, CI included: CI's machine does not install it (the bench prints
"not installed" and carries on), so its column is checked only where it is on PATH.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from bench import access_log_bench, ingest_bench

LINES = 2_000
SAMPLE_LOG = (
    b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 2326'
    b' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"\n'
    b'198.51.100.24 - - [24/Nov/2026:10:05:05 +0000] "-" 408 - "-" "-"\n'
)


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bench's output folder, moved out of the repository for these tests."""
    out = tmp_path_factory.mktemp("bench-out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ingest_bench, "OUT", out)
        yield out


@pytest.fixture(scope="module")
def measured(bench_out: Path) -> dict:
    """One tiny run of the access-log bench: generated file, Sluice, DuckDB, GoAccess."""
    return access_log_bench.run(rows=LINES, seed=3)


@pytest.mark.parametrize("query", list(access_log_bench.DUCKDB_EXTRACTS))
def test_access_log_bench_duckdb_baseline_types_every_field(bench_out: Path, query: str) -> None:
    # Arrange
    log = bench_out / "sample.log"
    log.write_bytes(SAMPLE_LOG)

    # Act
    rows = access_log_bench.bench_duckdb_regex(log, query)

    # Assert: the fields Sluice gives, typed; '-' is NULL, the time is an instant in UTC.
    with duckdb.connect(str(bench_out / "access_logs_regex.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        first, timed_out = con.execute(
            "SELECT client_ip, user_name, timestamp, method, path, query, protocol, status,"
            " bytes_sent, referrer, user_agent FROM access_logs ORDER BY status"
        ).fetchall()
    assert rows == 2
    assert first[:2] == ("127.0.0.1", "frank")
    assert first[2] == datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert first[3:] == (
        "GET", "/apache_pb.gif", "x=1", "HTTP/1.0", 200, 2326,
        "http://www.example.com/start.html", "Mozilla/4.08 [en] (Win98; I ;Nav)",
    )  # fmt: skip
    assert timed_out[3:] == (None, None, None, None, 408, None, None, None)


@pytest.mark.slow
def test_access_log_bench_every_tool_counts_every_line(measured: dict) -> None:
    # Arrange
    record = measured["ingest_record"]

    # Act
    counts = measured["rows"]

    # Assert: a clean generated file, every line a row for Sluice, DuckDB and GoAccess.
    assert (record["rows_in"], record["rows_loaded"], record["rows_dead"]) == (LINES, LINES, 0)
    assert counts["sluice"] == counts["duckdb"] == counts["duckdb_split"] == LINES
    if shutil.which("goaccess"):
        assert counts["goaccess"] == LINES
    assert measured["counts_agree"]


@pytest.mark.slow
def test_access_log_bench_ratios_are_sluice_rows_per_second_over_each_tools(
    measured: dict,
) -> None:
    # Arrange
    per_second = measured["rows_per_s"]

    # Act
    ratios, targets = measured["ratios"], measured["targets"]

    # Assert: computed, never asserted against the targets (a tiny file is all start-up).
    for query in access_log_bench.DUCKDB_EXTRACTS:
        assert ratios[query] == pytest.approx(per_second["sluice"] / per_second[query])
        assert targets[query]["met"] == (ratios[query] >= 0.5)
    if shutil.which("goaccess"):
        assert ratios["goaccess"] == pytest.approx(per_second["sluice"] / per_second["goaccess"])
        assert targets["goaccess"]["met"] == (ratios["goaccess"] >= 2.0)
    else:
        assert "goaccess" not in ratios and targets["goaccess"]["met"] is None


@pytest.mark.slow
def test_access_log_bench_table_names_each_tool_and_the_counts(
    measured: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: the run has ended.

    # Act
    access_log_bench.print_table(measured)

    # Assert
    table = capsys.readouterr().out
    assert all(label in table for label in access_log_bench.TOOLS.values())
    assert f"row counts agree: Sluice's rows_in {LINES:,}" in table
    if not shutil.which("goaccess"):
        assert "| not installed |" in table
