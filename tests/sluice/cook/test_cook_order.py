"""Cook runs summaries in dependency order, and two cooks at once give one cook's tables."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from sluice.contracts import Contract
from sluice.cook.summaries import cook, dependency_order
from sluice.errors import ConfigError
from sluice.settings import Settings, load_settings
from sluice.warehouse import connected_warehouse
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.cook import cook_data

BUILD = "CREATE OR REPLACE TABLE {cooked_dataset}.%s AS SELECT %s"


def script(name: str, table: str, select: str) -> tuple[Path, str, str]:
    return Path(name), table, BUILD % (table, select)


def test_dependency_order_runs_a_summary_after_the_tables_it_reads() -> None:
    scripts = [
        script("10_totals.sql", "totals", "* FROM {cooked_dataset}.daily"),
        script("20_daily.sql", "daily", "1 AS n"),
        script("30_other.sql", "other", "2 AS n"),
    ]

    ordered = [table for _, table, _ in dependency_order(scripts)]

    assert ordered == ["daily", "totals", "other"]


def test_dependency_order_refuses_a_cycle_and_an_unknown_table() -> None:
    cycle = [
        script("10_a.sql", "a", "* FROM {cooked_dataset}.b"),
        script("20_b.sql", "b", "* FROM {cooked_dataset}.a"),
    ]
    unknown = [script("10_a.sql", "a", "* FROM {cooked_dataset}.missing")]

    with pytest.raises(ConfigError, match="cycle: a <- b, b <- a"):
        dependency_order(cycle)
    with pytest.raises(ConfigError, match=r"reads cooked table\(s\) missing"):
        dependency_order(unknown)


def cooked_tables(settings: Settings, names: list[str]) -> dict[str, list[tuple]]:
    """Each named cooked table's rows, sorted, read with a fresh connection."""
    with connected_warehouse(settings) as warehouse:
        return {
            name: sorted(
                (
                    tuple(row.values())
                    for row in warehouse.query(f"SELECT * FROM {{cooked_dataset}}.{name}")
                ),
                key=repr,  # NULLs sort too
            )
            for name in names
        }


def cook_in_another_process(home: str) -> int:
    settings = load_settings({"SLUICE_HOME": home})
    with connected_warehouse(settings) as warehouse:
        return len(cook(warehouse, settings))


def test_two_cooks_at_once_give_the_tables_of_one(
    settings: Settings, contracts: dict[str, Contract], tmp_path: Path
) -> None:
    cook_data.load(DuckDBWarehouse(settings), contracts, cook_data.build(), tmp_path / "staged")
    with connected_warehouse(settings) as warehouse:
        names = [table.table for table in cook(warehouse, settings)]
    once = cooked_tables(settings, names)

    # Cloud Scheduler is at-least-once: two deliveries may cook at the same time.
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        counts = pool.map(cook_in_another_process, [str(settings.home)] * 2)

    assert counts == [len(names), len(names)]
    assert cooked_tables(settings, names) == once
    assert any(once.values())  # the comparison is over real rows
