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


def test_dependency_order_ignores_ctes_processed_tables_and_quoting() -> None:
    scripts = [
        script(
            "10_totals.sql",
            "totals",
            "* FROM {cooked_dataset}.`daily` JOIN (WITH other AS (SELECT 1 AS n)"
            " SELECT n FROM other) USING (n) JOIN {dataset}.other USING (n)",
        ),
        script("20_other.sql", "other", "1 AS n"),
        script("30_daily.sql", "daily", "1 AS n"),
    ]

    ordered = [table for _, table, _ in dependency_order(scripts)]

    assert ordered == ["other", "daily", "totals"]


def test_dependency_order_is_stable_by_file_name_among_ready_summaries() -> None:
    scripts = [
        script("10_c.sql", "c", "* FROM {cooked_dataset}.a, {cooked_dataset}.b"),
        script("20_b.sql", "b", "* FROM {cooked_dataset}.a"),
        script("30_a.sql", "a", "1 AS n"),
        script("40_d.sql", "d", "* FROM {cooked_dataset}.a"),
    ]

    ordered = [table for _, table, _ in dependency_order(scripts)]

    assert ordered == ["a", "b", "c", "d"]


def test_dependency_order_cycle_error_names_the_files() -> None:
    scripts = [
        script("10_free.sql", "free", "1 AS n"),
        script("20_a.sql", "a", "* FROM {cooked_dataset}.c"),
        script("30_b.sql", "b", "* FROM {cooked_dataset}.a"),
        script("40_c.sql", "c", "* FROM {cooked_dataset}.b, {cooked_dataset}.free"),
    ]

    with pytest.raises(ConfigError) as refused:
        dependency_order(scripts)

    assert "a <- c, b <- a, c <- b" in str(refused.value)
    assert "20_a.sql, 30_b.sql, 40_c.sql" in str(refused.value)
    assert "10_free.sql" not in str(refused.value)


def test_dependency_order_refuses_sql_that_does_not_parse() -> None:
    with pytest.raises(ConfigError, match=r"10_bad\.sql"):
        dependency_order([script("10_bad.sql", "bad", "FROM WHERE (")])
