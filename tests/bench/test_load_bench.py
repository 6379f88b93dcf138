"""bench/load_bench.py: its checks catch what they claim to, and a small run passes them all.

The small run is the whole benchmark (real local stack: fake-gcs-server, event bridge,
functions-framework, Beam pipelines on the local runner) at 12 files and 50 events, so CI
proves the bench code works; ``make bench``-style figures come from the full run only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.load_bench import InputFile, check_loads, markdown, run_load
from local.jobs import MAX_RUNNING_JOBS
from local.landing import LandedObject
from sluice.contracts import Contract
from sluice.schema import IngestionRecord
from sluice.settings import load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def logged(landed: LandedObject, rows_in: int) -> IngestionRecord:
    """A loaded ingestion-log row for ``landed`` with no dead letters."""
    return IngestionRecord(
        landed.dataset, landed.uri, landed.generation, "loaded", rows_in, rows_in, 0, None,
        "job-1", NOW, NOW,
    )  # fmt: skip


def test_load_bench_checks_name_a_lost_file_a_short_count_and_empty_tables(
    tmp_path: Path, contracts: dict[str, Contract]
) -> None:
    settings = load_settings({"SLUICE_HOME": str(tmp_path)})
    warehouse = DuckDBWarehouse(settings)
    for contract in contracts.values():
        warehouse.ensure_tables(contract)
    inputs = [InputFile(tmp_path / f"{n}.csv", "kiva_lenders", 3, False) for n in "ab"]
    landed = [
        LandedObject("landing", f"incoming/kiva_lenders/{n}.csv", 7, "kiva_lenders") for n in "ab"
    ]
    warehouse.record_ingestion(logged(landed[0], 2))  # one record short; b has no row at all

    problems, sums = check_loads(
        settings, inputs, landed, {landed[0]: "loaded", landed[1]: "failed"}
    )

    assert sums == {"input_rows": 6, "rows_in": 2, "rows_loaded": 2, "rows_dead": 0}
    text = "\n".join(problems)
    assert f"{landed[1].uri}: expected a final claim, found 'failed'" in text
    assert f"{landed[1].uri}: expected 1 ingestion-log row, found 0" in text
    assert "expected rows_in 3" in text and "expected sum(rows_in) 6, found 2" in text
    # kiva_lenders merges on loan_id: its table has one row per key, never none of 2 loaded
    assert "kiva_lenders: expected one row per (loan_id), 1 to 2 rows" in text
    assert len(problems) == 5


@pytest.mark.slow
@pytest.mark.emulator
def test_load_bench_small_run_settles_every_file_and_stands_back_on_duplicates(
    tmp_path: Path,
) -> None:
    # Every file through a pipeline (small ones are otherwise loaded in the function), so
    # the local cap on pipelines at once is what is checked.
    result = run_load(
        tmp_path / "load", files=6, bad=1, events=50, rows=(200, 400),
        environ={"SLUICE_FAST_LANE_MAX_BYTES": "0"},
    )  # fmt: skip

    assert result["problems"] == []
    assert result["rows_in"] == result["input_rows"] > 0
    assert result["rows_in"] == result["rows_loaded"] + result["rows_dead"]
    assert result["rows_dead"] > 0  # the 1% dirty rows became dead letters, not lost rows
    assert 1 <= result["peak_pipelines"] <= MAX_RUNNING_JOBS
    assert result["peak_rss_mb"] > 0
    assert result["event_statuses"] == {200: 50}
    assert result["distinct_keys"] == 6
    assert "| files (bad) | 6 (1) |" in markdown(result)
