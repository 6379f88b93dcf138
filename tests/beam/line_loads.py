"""What the line formats' pipeline tests share: one file through the pipeline, read back."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from beam.pipeline import run

STARTED_AT = "2026-11-24T10:00:00+00:00"


def load_dataset(
    path: Path,
    dataset: str,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    split_bytes: int = 10**9,
    columns: str = "* EXCLUDE (_ingested_at, _source_uri, _source_generation)",
) -> tuple[list[tuple], list[tuple], tuple[int, int, int]]:
    """Run the pipeline on ``path`` as ``dataset`` into ``home``'s warehouse; its rows
    (``columns``, by default all but ingestion time and source), dead letters (line, reason)
    and counts (in, loaded, dead)."""
    monkeypatch.setenv("SLUICE_HOME", str(home))
    monkeypatch.setenv("SLUICE_SPLIT_BYTES", str(split_bytes))
    monkeypatch.setenv("SLUICE_PIPELINE_WORKERS", "1")
    record = run([f"--input={path}", f"--dataset={dataset}", f"--started_at={STARTED_AT}"])
    assert record is not None and record.status == "loaded", record
    rows_sql = f"SELECT {columns} FROM sluice.{dataset} ORDER BY _source_line"
    dead_sql = f"SELECT line, reason FROM sluice.{dataset}_dead_letter ORDER BY line"
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows, dead = con.execute(rows_sql).fetchall(), con.execute(dead_sql).fetchall()
    return rows, dead, (record.rows_in, record.rows_loaded, record.rows_dead)
