"""bench/drop_to_query.py at small scale: the real local stack, one upload, one query.

With the shipped settings the file takes the fast lane (loaded inside on_upload).

The phases come from different sources (storage metadata, the function's log, the
ingestion log, the claim, this process's clock; the pipeline lane adds the job's log); they
only add up, each non-negative, when every stamp was matched to the right event of the
right file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.drop_to_query import PHASES, run

ROWS = 2_000
STAMP_RESOLUTION = 0.002
"""The job log's timestamps have millisecond resolution (logging's asctime)."""

pytestmark = [pytest.mark.slow, pytest.mark.emulator]


@pytest.fixture(scope="module")
def drop_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SLUICE_HOME of the run's stack."""
    return tmp_path_factory.mktemp("drop") / "home"


@pytest.fixture(scope="module")
def measured(drop_home: Path) -> dict:
    """One small drop-to-query run on its own stack."""
    return run(rows=ROWS, runs=1, home=drop_home)


def test_drop_to_query_rows_are_queryable(measured: dict) -> None:
    # Arrange
    [drop] = measured["drops"]

    # Act
    counts = (drop["rows_in"], drop["rows_loaded"], drop["rows_queried"])

    # Assert: a clean generated file, every row loaded and answering the query.
    assert counts == (ROWS, ROWS, ROWS)


def test_drop_to_query_phases_are_in_order_and_sum_to_the_total(measured: dict) -> None:
    # Arrange
    [drop] = measured["drops"]

    # Act
    phases = dict(drop["phases"])

    # Assert
    assert list(phases) == [label for label, _, _ in PHASES["fast"]]
    assert all(seconds >= -STAMP_RESOLUTION for seconds in phases.values()), phases
    assert sum(phases.values()) == pytest.approx(drop["total_seconds"], abs=0.01)
    assert 0 < drop["total_seconds"] < 120


def test_drop_to_query_timestamps_agree_with_a_monotonic_clock(measured: dict) -> None:
    # Arrange
    [drop] = measured["drops"]

    # Act: wall-clock stamps from other processes against this process's perf_counter.
    stamped = drop["upload_seconds"] + drop["total_seconds"]

    # Assert
    assert drop["upload_seconds"] > 0
    assert stamped == pytest.approx(drop["wall_seconds"], abs=0.05)


def test_drop_to_query_stops_its_stack(measured: dict, drop_home: Path) -> None:
    # Arrange: the run has ended.

    # Act
    leftover = (drop_home / "stack.json").exists()

    # Assert: `sluice up` stopped cleanly and removed its stack file.
    assert measured["drops"] and not leftover
