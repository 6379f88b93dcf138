"""Every summary holds for every contract-valid row: rows at the limits of their types
(``cook_data.build_extremes``) cook without an overflow, a skipped summary or a lost alert,
and leave no Infinity or NaN in any cooked table."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from sluice.contracts import Contract
from sluice.cook.summaries import CookReport, cook_and_check_alerts, summary_files, table_name
from sluice.settings import Settings, load_settings
from sluice.warehouse import Warehouse
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.cook import cook_data
from tests.sluice.cook.cook_data import EXTREME_HOUR, FLOAT64_MAX, INT64_MAX

NOW = cook_data.T0 + timedelta(days=2)


@dataclass
class CookedExtremes:
    warehouse: Warehouse
    settings: Settings
    report: CookReport

    def table(self, name: str) -> list[dict[str, Any]]:
        return self.warehouse.query(f"SELECT * FROM {{cooked_dataset}}.{name}")


@pytest.fixture(scope="module")
def extremes(
    tmp_path_factory: pytest.TempPathFactory, contracts: dict[str, Contract]
) -> Iterator[CookedExtremes]:
    home = tmp_path_factory.mktemp("extremes")
    settings = load_settings({}, home=home)
    warehouse = DuckDBWarehouse(settings)
    cook_data.load(warehouse, contracts, cook_data.build_extremes(), home / "staged")
    report = cook_and_check_alerts(warehouse, settings, NOW)
    yield CookedExtremes(warehouse, settings, report)
    warehouse.close()


def not_finite(value: Any) -> bool:
    if isinstance(value, float | Decimal):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(not_finite(item) for item in value)
    return False


def test_cook_of_extreme_rows_builds_every_summary(extremes: CookedExtremes) -> None:
    report = extremes.report

    assert [str(f) for f in report.failed] == [] and report.skipped == []
    assert [t.table for t in report.tables] == [
        table_name(path) for path in summary_files(extremes.settings.sql_dir)
    ]


def test_cook_of_extreme_rows_leaves_no_infinity_or_nan(extremes: CookedExtremes) -> None:
    bad = {
        (table.table, column): value
        for table in extremes.report.tables
        for row in extremes.table(table.table)
        for column, value in row.items()
        if not_finite(value)
    }

    assert bad == {}


def test_cook_of_extreme_rows_checks_and_records_the_alerts(extremes: CookedExtremes) -> None:
    recorded = extremes.warehouse.query("SELECT dataset, rule, status FROM {dataset}.alerts")

    assert extremes.report.alerts
    opened = {(a.dataset, a.rule) for a in extremes.report.alerts}
    assert opened == {(r["dataset"], r["rule"]) for r in recorded if r["status"] == "open"}


def test_cook_sums_int64_byte_counts_exactly(extremes: CookedExtremes) -> None:
    hours = {r["hour"]: r["bytes_sent"] for r in extremes.table("server_requests_per_hour")}
    days = {r["day"]: r["bytes_sent"] for r in extremes.table("server_requests_per_day")}
    countries = {
        r["country_code"]: r["bytes_sent"] for r in extremes.table("server_traffic_by_country")
    }

    # Exact: no float rounding, no wrap-around, however many int64-max values add up.
    assert hours[EXTREME_HOUR] == days[EXTREME_HOUR.date()] == countries["US"] == 2 * INT64_MAX
    assert days[EXTREME_HOUR.date() + timedelta(days=1)] == -(2**63)


def test_cook_means_of_huge_latencies_are_finite_and_right(extremes: CookedExtremes) -> None:
    hours = {r["hour"]: r for r in extremes.table("server_requests_per_hour")}
    paths = {r["path"]: r for r in extremes.table("server_latency_by_path")}

    assert hours[EXTREME_HOUR]["mean_latency_ms"] == 1e308
    assert paths["/api/loans"]["mean_latency_ms"] == 0.0  # +max and -max: no overflow on the way
    assert paths["/api/loans"]["p99_latency_ms"] == FLOAT64_MAX


def test_cook_float_totals_beyond_float64_are_null_and_ratios_finite(
    extremes: CookedExtremes,
) -> None:
    countries = {r["country_code"]: r for r in extremes.table("kiva_loans_by_country")}

    kenya, peru, unknown = countries["KE"], countries["PE"], countries[None]
    assert (kenya["funded_amount"], kenya["loan_amount"]) == (None, None)  # 2 x 1.8e308
    assert kenya["funding_ratio"] == 1.0
    assert peru["funded_amount"] == 1e308 and peru["funding_ratio"] is None  # 1e308 / 5e-324
    assert unknown["funding_ratio"] is None  # 0 of 0
