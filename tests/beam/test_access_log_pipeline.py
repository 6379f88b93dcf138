"""The pipeline loads access logs: a gzipped rotated log whole, a big plain one in ranges."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from beam.pipeline import run
from tests.sluice.records.test_access_log import DEAD, ROW_LINES, SAMPLE_COMBINED_LOG

STARTED_AT = "2026-11-24T10:00:00+00:00"
ROWS_SQL = (
    "SELECT * EXCLUDE (_ingested_at, _source_uri, _source_generation)"
    " FROM sluice.access_logs ORDER BY _source_line"
)
DEAD_SQL = "SELECT line, reason FROM sluice.access_logs_dead_letter ORDER BY line"


def load(
    path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, *, split_bytes: int = 10**9
) -> tuple[list[tuple], list[tuple], tuple[int, int, int]]:
    """Run the pipeline on ``path`` into ``home``'s warehouse; the rows, dead letters, counts."""
    monkeypatch.setenv("SLUICE_HOME", str(home))
    monkeypatch.setenv("SLUICE_SPLIT_BYTES", str(split_bytes))
    monkeypatch.setenv("SLUICE_PIPELINE_WORKERS", "1")
    record = run([f"--input={path}", "--dataset=access_logs", f"--started_at={STARTED_AT}"])
    assert record is not None and record.status == "loaded", record
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows, dead = con.execute(ROWS_SQL).fetchall(), con.execute(DEAD_SQL).fetchall()
    return rows, dead, (record.rows_in, record.rows_loaded, record.rows_dead)


def test_pipeline_loads_a_gzipped_rotated_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "access.log.1.gz"
    path.write_bytes(gzip.compress(SAMPLE_COMBINED_LOG))

    rows, dead, counts = load(path, tmp_path / "home", monkeypatch)

    assert counts == (12, len(ROW_LINES), len(DEAD))
    assert [row[-2] for row in rows] == ROW_LINES  # _source_line, then _contract_version
    assert dict(dead) == DEAD


def test_pipeline_loads_a_log_in_ranges_as_it_does_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"\n".join(SAMPLE_COMBINED_LOG.split(b"\n")[:-1] * 300) + b"\n")

    whole = load(path, tmp_path / "whole", monkeypatch)
    split = load(path, tmp_path / "split", monkeypatch, split_bytes=8 * 1024)

    assert path.stat().st_size > 10 * 8 * 1024
    assert split == whole and whole[2] == (3300, 2700, 600)
