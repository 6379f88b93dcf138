"""bench/burst_bench.py at small scale: the simulated burst keeps the designs' promises.

A burst of 120 files makes two full batches and a partial one that only the flush tick
launches, and more files than the 25-job quota for the old design.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.burst_bench import SCENARIOS, burst, markdown, run
from bench.burst_designs import LanesAndBatches, OneJobPerFile
from bench.burst_model import BIG_FILE_BYTES, DML_QUEUED, DML_RUNNING
from sluice.settings import Settings

FILES = 120
SEED = 3
OLD = OneJobPerFile.label
NEW = LanesAndBatches.label
BIG = next(name for name, size in SCENARIOS.items() if size == BIG_FILE_BYTES)


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """One small run of both designs in both scenarios."""
    return run(files=FILES, seed=SEED)


def test_burst_new_design_loads_every_file_exactly_once(results: dict[str, Any]) -> None:
    # Arrange
    figures = [designs[NEW] for designs in results["scenarios"].values()]

    # Act
    outcomes = [(f["loaded_once"], f["loaded_more"], f["lost"]) for f in figures]

    # Assert
    assert outcomes == [(FILES, 0, 0)] * len(SCENARIOS)


def test_burst_old_design_accounts_for_every_file(results: dict[str, Any]) -> None:
    # Arrange
    figures = [designs[OLD] for designs in results["scenarios"].values()]

    # Act
    accounted = [f["loaded_once"] + f["loaded_more"] + f["lost"] for f in figures]

    # Assert: no file vanishes from the ledger, loaded or lost.
    assert accounted == [FILES] * len(SCENARIOS)
    assert all(f["loaded_more"] == 0 for f in figures)


def test_burst_jobs_never_exceed_the_quota(results: dict[str, Any]) -> None:
    # Arrange
    quota = Settings().dataflow_max_jobs

    # Act
    peaks = {
        (scenario, label): f["peak_jobs"]
        for scenario, designs in results["scenarios"].items()
        for label, f in designs.items()
    }

    # Assert: the old design does reach it (more files than slots), neither passes it.
    assert all(peak <= quota for peak in peaks.values()), peaks
    assert max(peaks.values()) == quota


def test_burst_table_queue_never_exceeds_bigquery_limit(results: dict[str, Any]) -> None:
    # Act
    outstanding = [
        f["peak_dml_outstanding"] for d in results["scenarios"].values() for f in d.values()
    ]

    # Assert
    assert max(outstanding) <= DML_RUNNING + DML_QUEUED


def test_burst_big_files_share_far_fewer_jobs_than_files(results: dict[str, Any]) -> None:
    # Arrange
    designs = results["scenarios"][BIG]

    # Act
    new_jobs, old_jobs = designs[NEW]["jobs_created"], designs[OLD]["jobs_created"]

    # Assert: 120 files in batches of at most 50 need 3 jobs, one more when a batch fills
    # its bytes first or a straggler misses the minute's tick; the old design one per file.
    assert 3 <= new_jobs <= 5
    assert old_jobs == FILES
    assert designs[NEW]["launch_attempts"] == new_jobs


def test_burst_same_seed_gives_the_same_table() -> None:
    # Act
    first, second = run(files=40, seed=SEED), run(files=40, seed=SEED)

    # Assert
    assert markdown(first) == markdown(second)


def test_burst_drops_land_within_the_minute() -> None:
    # Act
    drops = burst(FILES, BIG_FILE_BYTES, SEED)

    # Assert
    assert len({drop.key for drop in drops}) == FILES
    assert all(0 <= drop.at <= 60 for drop in drops)
