"""Every cooked summary, run on the DuckDB adapter, against plain-Python sums of the same rows.

The module's warehouse runs with the process time zone set to UTC+14, so any summary that
bucketed by the session zone instead of UTC (the DuckDB trap) would put rows on wrong days.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from sluice.contracts import Contract
from sluice.cook.summaries import CookedTable, cook, summary_files, table_name
from sluice.errors import ConfigError, WarehouseError
from sluice.settings import REPO_ROOT, Settings, load_settings
from sluice.warehouse import Warehouse
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.cook import cook_data

Row = dict[str, Any]
_HOUR = timedelta(hours=1)


@dataclass
class Cooked:
    warehouse: Warehouse
    settings: Settings
    data: cook_data.CookData
    report: list[CookedTable]

    def table(self, name: str) -> list[Row]:
        return self.warehouse.query(f"SELECT * FROM {{cooked_dataset}}.{name}")


@pytest.fixture(scope="module")
def cooked(
    tmp_path_factory: pytest.TempPathFactory, contracts: dict[str, Contract]
) -> Iterator[Cooked]:
    home = tmp_path_factory.mktemp("cook")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Pacific/Kiritimati")
        time.tzset()
        settings = load_settings({}, home=home)
        warehouse = DuckDBWarehouse(settings)
        data = cook_data.build()
        cook_data.load(warehouse, contracts, data, home / "staged")
        report = cook(warehouse, settings)
        yield Cooked(warehouse, settings, data, report)
        warehouse.close()
    time.tzset()


def keyed(rows: list[Row], *key: str) -> dict[Any, Row]:
    """Rows by their key column(s); a repeated key is a bug in the summary."""
    out = {r[key[0]] if len(key) == 1 else tuple(r[k] for k in key): r for r in rows}
    assert len(out) == len(rows), f"duplicate {key} in {rows}"
    return out


def assert_matches(actual: dict[Any, Row], expected: dict[Any, Row]) -> None:
    """Same keys, and each expected column equal (floats to 1e-9 relative)."""
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = {column: actual[key][column] for column in want}
        close = {
            c: pytest.approx(v, rel=1e-9) if isinstance(v, float) else v for c, v in want.items()
        }
        assert got == close, key


def ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def grouped(rows: list[Row], key: Callable[[Row], Any]) -> dict[Any, list[Row]]:
    groups: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def amounts(loans: list[Row]) -> Row:
    funded, asked = sum(r["funded_amount"] for r in loans), sum(r["loan_amount"] for r in loans)
    return {
        "loans": len(loans),
        "funded_amount": funded,
        "loan_amount": asked,
        "funding_ratio": ratio(funded, asked),
    }


def test_cook_reports_every_summary_in_file_order(cooked: Cooked) -> None:
    names = [table_name(p) for p in summary_files(cooked.settings.sql_dir)]
    assert [t.table for t in cooked.report] == names
    assert len(names) == 24
    assert all(t.rows == len(cooked.table(t.table)) and t.seconds >= 0 for t in cooked.report)


def test_cook_kiva_loans_by_country(cooked: Cooked) -> None:
    loans = cooked.data.rows("kiva_loans")
    expected = {code: amounts(g) for code, g in grouped(loans, lambda r: r["country_code"]).items()}
    actual = keyed(cooked.table("kiva_loans_by_country"), "country_code")
    assert_matches(actual, expected)
    assert actual["NA"]["country_name"] == "Namibia" and actual[None]["country_name"] is None


def test_cook_kiva_loans_by_sector(cooked: Cooked) -> None:
    loans = cooked.data.rows("kiva_loans")
    expected = {
        s: amounts(g) | {"share_of_loans": len(g) / len(loans)}
        for s, g in grouped(loans, lambda r: r["sector_name"]).items()
    }
    assert_matches(keyed(cooked.table("kiva_loans_by_sector"), "sector_name"), expected)


def test_cook_kiva_loans_by_month_are_utc_dates(cooked: Cooked) -> None:
    loans = cooked.data.rows("kiva_loans")
    months = grouped(loans, lambda r: date(r["posted_time"].year, r["posted_time"].month, 1))
    actual = keyed(cooked.table("kiva_loans_by_month"), "month")
    assert_matches(actual, {m: amounts(g) for m, g in months.items()})
    # DATE_TRUNC(DATE(ts), MONTH) would give DuckDB timestamps (datetime is a date subclass).
    assert all(type(m) is date for m in actual)
    assert actual[date(2017, 2, 1)]["loans"] == len(months[date(2017, 2, 1)])


def test_cook_kiva_time_to_fund(cooked: Cooked) -> None:
    hours: dict[str, list[float]] = defaultdict(list)
    for r in cooked.data.rows("kiva_loans"):
        if r["raised_time"] is not None and r["raised_time"] >= r["posted_time"]:
            hours[r["sector_name"]].append((r["raised_time"] - r["posted_time"]) / _HOUR)
    expected = {
        s: {
            "loans": len(h),
            "median_hours": statistics.median(h),
            "mean_hours": statistics.fmean(h),
            "median_days": statistics.median(h) / 24,
            "mean_days": statistics.fmean(h) / 24,
        }
        for s, h in hours.items()
    }
    actual = keyed(cooked.table("kiva_time_to_fund"), "sector_name")
    assert_matches(actual, expected)
    assert cook_data.NEVER_RAISED_SECTOR not in actual


def test_cook_kiva_gender_mix(cooked: Cooked) -> None:
    loans = cooked.data.rows("kiva_loans")
    counts = Counter(cook_data.GENDER_MIX[r["borrower_genders"]] for r in loans)
    expected = {mix: {"loans": n, "share_of_loans": n / len(loans)} for mix, n in counts.items()}
    assert_matches(keyed(cooked.table("kiva_gender_mix"), "gender_mix"), expected)


def lender_sets(data: cook_data.CookData) -> dict[int, set[str]]:
    """Loan id -> distinct named lenders of its newest lenders row (kiva_lenders merges on
    loan_id: a loan listed again in a later file takes that file's list)."""
    sets: dict[int, set[str]] = defaultdict(set)
    for r in data.latest("kiva_lenders", "loan_id"):
        names = (r["lenders"] or "").split(",")
        sets[r["loan_id"]].update(n.strip() for n in names if n.strip())
    return sets


def test_cook_kiva_lenders_per_loan(cooked: Cooked) -> None:
    buckets = Counter(len(names) for names in lender_sets(cooked.data).values())
    total, running, expected = sum(buckets.values()), 0, {}
    for n in sorted(buckets):
        running += buckets[n]
        expected[n] = {
            "loans": buckets[n],
            "share_of_loans": buckets[n] / total,
            "cumulative_share": running / total,
        }
    actual = keyed(cooked.table("kiva_lenders_per_loan"), "lenders")
    assert_matches(actual, expected)
    assert 0 in actual  # empty lender lists are counted, not dropped


def test_cook_kiva_top_lenders(cooked: Cooked) -> None:
    loans_by_lender = Counter(n for names in lender_sets(cooked.data).values() for n in names)
    assert len(loans_by_lender) > 100  # the cut-off is really exercised
    top = sorted(loans_by_lender.items(), key=lambda item: (-item[1], item[0]))[:100]
    expected = {rank: {"lender": name, "loans": n} for rank, (name, n) in enumerate(top, 1)}
    assert_matches(keyed(cooked.table("kiva_top_lenders"), "lender_rank"), expected)


def test_cook_kiva_loans_without_lenders(cooked: Cooked) -> None:
    sets = lender_sets(cooked.data)
    expected = {
        r["loan_id"]: {
            "reason": "empty lenders" if r["loan_id"] in sets else "no lenders row",
            "status": r["status"],
            "funded_amount": r["funded_amount"],
        }
        for r in cooked.data.rows("kiva_loans")
        if not sets.get(r["loan_id"])
    }
    actual = keyed(cooked.table("kiva_loans_without_lenders"), "loan_id")
    assert_matches(actual, expected)
    assert {r["reason"] for r in actual.values()} == {"empty lenders", "no lenders row"}


def traffic(requests: list[Row]) -> Row:
    sent = [r["bytes_sent"] for r in requests if r["bytes_sent"] is not None]
    errors = sum(500 <= r["status"] < 600 for r in requests)
    return {
        "requests": len(requests),
        "bytes_sent": sum(sent) if sent else None,
        "server_errors": errors,
    }


def test_cook_server_requests_per_hour(cooked: Cooked) -> None:
    hours = grouped(
        cooked.data.rows("server_logs"),
        lambda r: r["timestamp"].replace(minute=0, second=0, microsecond=0),
    )
    expected = {}
    for hour, g in hours.items():
        timed = [r["latency_ms"] for r in g if r["latency_ms"] is not None]
        expected[hour] = traffic(g) | {
            "server_error_rate": traffic(g)["server_errors"] / len(g),
            "mean_latency_ms": statistics.fmean(timed) if timed else None,
        }
    assert_matches(keyed(cooked.table("server_requests_per_hour"), "hour"), expected)


def test_cook_server_requests_per_day(cooked: Cooked) -> None:
    days = grouped(cooked.data.rows("server_logs"), lambda r: r["timestamp"].date())
    expected = {
        d: traffic(g) | {"unique_clients": len({r["client_ip"] for r in g} - {None})}
        for d, g in days.items()
    }
    actual = keyed(cooked.table("server_requests_per_day"), "day")
    assert_matches(actual, expected)
    assert sorted(actual) == [d.date() for d in [*cook_data.DAYS, cook_data.TIE_DAY]]


def test_cook_server_peak_hour_per_day(cooked: Cooked) -> None:
    per_hour = Counter(
        r["timestamp"].replace(minute=0, second=0, microsecond=0)
        for r in cooked.data.rows("server_logs")
    )
    expected = {}
    for day, hours in grouped(list(per_hour), lambda h: h.date()).items():
        peak = min(hours, key=lambda h: (-per_hour[h], h))  # earliest hour wins a tie
        expected[day] = {
            "peak_hour": peak,
            "requests": per_hour[peak],
            "share_of_day": per_hour[peak] / sum(per_hour[h] for h in hours),
        }
    actual = keyed(cooked.table("server_peak_hour"), "day")
    assert_matches(actual, expected)
    assert actual[cook_data.DAYS[1].date()]["peak_hour"].hour == 3  # the 5xx burst
    assert actual[cook_data.TIE_DAY.date()]["peak_hour"].hour == 9  # a tie goes to the earlier


def test_cook_server_error_rate_by_status_class(cooked: Cooked) -> None:
    logs = cooked.data.rows("server_logs")
    per_day = Counter(r["timestamp"].date() for r in logs)
    classes = Counter(
        (r["timestamp"].date(), f"{r['status'] // 100}xx" if 100 <= r["status"] <= 599 else "other")
        for r in logs
    )
    expected = {
        k: {"requests": n, "share_of_requests": n / per_day[k[0]]} for k, n in classes.items()
    }
    actual = keyed(cooked.table("server_error_rate"), "day", "status_class")
    assert_matches(actual, expected)
    assert {k[1] for k in actual} == {"2xx", "3xx", "4xx", "5xx", "other"}


def test_cook_server_latency_by_path(cooked: Cooked) -> None:
    paths = grouped(cooked.data.rows("server_logs"), lambda r: r["path"])
    actual = keyed(cooked.table("server_latency_by_path"), "path")
    assert set(actual) == set(paths)
    for path, g in paths.items():
        timed = sorted(r["latency_ms"] for r in g if r["latency_ms"] is not None)
        row = actual[path]
        assert (row["requests"], row["timed_requests"]) == (len(g), len(timed))
        if not timed:
            assert row["p50_latency_ms"] is None and row["mean_latency_ms"] is None
            continue
        assert row["mean_latency_ms"] == pytest.approx(statistics.fmean(timed))
        # Approximate quantiles: within 2% of the ranks either side of the exact one.
        slack = math.ceil(0.02 * len(timed))
        for pct in (50, 95, 99):
            exact = pct / 100 * (len(timed) - 1)
            low = timed[max(0, math.floor(exact) - slack)]
            high = timed[min(len(timed) - 1, math.ceil(exact) + slack)]
            assert low <= row[f"p{pct}_latency_ms"] <= high, (path, pct)
    assert actual[cook_data.UNTIMED_PATH]["timed_requests"] == 0


def test_cook_server_traffic_by_country(cooked: Cooked) -> None:
    logs = cooked.data.rows("server_logs")
    expected = {
        c: traffic(g)
        | {
            "share_of_requests": len(g) / len(logs),
            "unique_clients": len({r["client_ip"] for r in g} - {None}),
        }
        for c, g in grouped(logs, lambda r: r["country_code"]).items()
    }
    actual = keyed(cooked.table("server_traffic_by_country"), "country_code")
    assert_matches(actual, expected)
    assert "NA" in actual and None in actual


def test_cook_pipeline_loads_per_day(cooked: Cooked) -> None:
    expected = {}
    for key, g in grouped(cooked.data.records, lambda r: (r.dataset, r.finished_at.date())).items():
        rows_in, dead = sum(r.rows_in for r in g), sum(r.rows_dead for r in g)
        expected[key] = {
            "files_loaded": sum(r.status == "loaded" for r in g),
            "files_rejected": sum(r.status == "rejected" for r in g),
            "files_superseded": sum(r.status == "superseded" for r in g),
            "rows_in": rows_in,
            "rows_loaded": sum(r.rows_loaded for r in g),
            "rows_dead": dead,
            "dead_letter_rate": ratio(dead, rows_in),
        }
    actual = keyed(cooked.table("pipeline_loads_per_day"), "dataset", "day")
    assert_matches(actual, expected)
    assert any(r["dead_letter_rate"] is None for r in actual.values())  # a rejects-only day


def test_cook_pipeline_last_load(cooked: Cooked) -> None:
    expected = {}
    for dataset, g in grouped(cooked.data.records, lambda r: r.dataset).items():
        loaded = max(
            (r for r in g if r.status == "loaded"), key=lambda r: (r.finished_at, r.source_uri)
        )
        rejected = [r.finished_at for r in g if r.status == "rejected"]
        expected[dataset] = {
            "last_loaded_at": loaded.finished_at,
            "last_loaded_uri": loaded.source_uri,
            "last_rows_loaded": loaded.rows_loaded,
            "files_loaded": sum(r.status == "loaded" for r in g),
            "files_rejected": len(rejected),
            "files_superseded": sum(r.status == "superseded" for r in g),
            "last_rejected_at": max(rejected) if rejected else None,
        }
    assert_matches(keyed(cooked.table("pipeline_last_load"), "dataset"), expected)


def snapshot(cooked: Cooked) -> dict[str, list[str]]:
    return {t.table: sorted(map(repr, cooked.table(t.table))) for t in cooked.report}


def test_cook_twice_gives_identical_tables(cooked: Cooked) -> None:
    before = snapshot(cooked)
    again = cook(cooked.warehouse, cooked.settings)
    assert [(t.table, t.rows) for t in again] == [(t.table, t.rows) for t in cooked.report]
    assert snapshot(cooked) == before


def test_cook_with_nothing_ingested_builds_empty_tables(settings: Settings) -> None:
    warehouse = DuckDBWarehouse(settings)
    try:
        report = cook(warehouse, settings)
    finally:
        warehouse.close()
    assert len(report) == len(summary_files(settings.sql_dir)) and all(t.rows == 0 for t in report)


def test_summary_files_rejects_a_badly_named_file(tmp_path: Path) -> None:
    (tmp_path / "10_ok.sql").write_text("CREATE OR REPLACE TABLE {cooked_dataset}.ok AS SELECT 1")
    (tmp_path / "summary.sql").write_text("SELECT 1")
    with pytest.raises(ConfigError, match=r"summary\.sql"):
        summary_files(tmp_path)


def test_cook_rejects_a_file_building_another_table(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "10_copy.sql").write_text(
        "CREATE OR REPLACE TABLE {cooked_dataset}.orig AS SELECT 1"
    )
    warehouse = DuckDBWarehouse(settings)
    try:
        with pytest.raises(ConfigError, match=r"10_copy\.sql"):
            cook(warehouse, load_settings({}, home=settings.home, sql_dir=tmp_path))
    finally:
        warehouse.close()


def test_summary_files_are_in_dependency_order() -> None:
    names = [table_name(p) for p in summary_files(REPO_ROOT / "sql")]
    assert names.index("server_requests_per_hour") < names.index("server_peak_hour")


def test_cook_failing_summary_names_its_file(tmp_path: Path, settings: Settings) -> None:
    broken = (
        "CREATE OR REPLACE TABLE {cooked_dataset}.broken AS SELECT nope FROM {dataset}.server_logs"
    )
    (tmp_path / "10_broken.sql").write_text(broken)
    warehouse = DuckDBWarehouse(settings)
    try:
        with pytest.raises(WarehouseError) as failure:
            cook(warehouse, load_settings({}, home=settings.home, sql_dir=tmp_path))
    finally:
        warehouse.close()
    assert "10_broken.sql" in " ".join(failure.value.__notes__)
