"""Data alerts on the real DuckDB adapter: each rule fires when its data is missing, clears
when data arrives; the alerts table keeps opened_at; open alerts are paging ERROR lines."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sluice.contracts import Contract, FreshnessRule
from sluice.cook.alerts import Alert, check_alerts, open_alerts
from sluice.cook.summaries import cook_and_check_alerts
from sluice.logs import LABELS_FIELD, JsonFormatter
from sluice.schema import IngestionRecord
from sluice.settings import Settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.infra.terraform_model import load_infra
from tests.infra.test_monitoring import matches

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def warehouse(settings: Settings, contracts: dict[str, Contract]) -> DuckDBWarehouse:
    """An empty DuckDB warehouse with every shipped contract's tables."""
    warehouse = DuckDBWarehouse(settings)
    for contract in contracts.values():
        warehouse.ensure_tables(contract)
    return warehouse


def only(contracts: dict[str, Contract], name: str, **changes: Any) -> dict[str, Contract]:
    """One shipped contract, with some fields replaced."""
    return {name: dataclasses.replace(contracts[name], **changes)}


_generation = iter(range(1, 1_000_000))


def record_file(
    warehouse: DuckDBWarehouse,
    dataset: str,
    finished_at: datetime,
    rows_loaded: int = 10,
    rows_dead: int = 0,
    status: str = "loaded",
) -> None:
    """One ingestion-log row for a new file of ``dataset``."""
    generation = next(_generation)
    warehouse.record_ingestion(
        IngestionRecord(
            dataset=dataset,
            source_uri=f"gs://landing/incoming/{dataset}/{generation}.csv",
            source_generation=generation,
            status=status,
            rows_in=rows_loaded + rows_dead,
            rows_loaded=rows_loaded,
            rows_dead=rows_dead,
            reason="header" if status == "rejected" else None,
            job_id=f"job-{generation}",
            started_at=finished_at - timedelta(minutes=1),
            finished_at=finished_at,
        )
    )


def rules(alerts: list[Alert]) -> set[tuple[str, str]]:
    """(dataset, rule) of each alert."""
    return {(alert.dataset, alert.rule) for alert in alerts}


def table(warehouse: DuckDBWarehouse) -> dict[tuple[str, str], dict[str, Any]]:
    """The alerts table by (dataset, rule)."""
    rows = warehouse.query("SELECT * FROM {dataset}.alerts")
    return {(row["dataset"], row["rule"]): row for row in rows}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The JSON lines sluice.cook.alerts logs (the formatter the functions use)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sluice.cook.alerts")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def test_check_alerts_never_loaded_datasets_are_missing(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    alerts = check_alerts(warehouse, contracts, NOW)

    assert rules(alerts) == {
        ("access_logs", "max_hours_without_file"),
        ("http_requests", "max_hours_without_file"),
        ("kiva_lenders", "max_hours_without_file"),
        ("kiva_loans", "max_hours_without_file"),
        ("server_logs", "max_hours_without_file"),
        ("server_logs", "min_rows_per_hour"),
    }
    never = [a for a in alerts if a.rule == "max_hours_without_file"]
    assert all(a.observed is None and "no file loaded yet" in a.message for a in never)
    assert {a.alert for a in alerts} == {"missing_data"}


def test_max_hours_without_file_fires_when_stale_and_clears_when_a_file_arrives(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    loans = only(contracts, "kiva_loans")
    record_file(warehouse, "kiva_loans", NOW - 25 * HOUR)

    stale = check_alerts(warehouse, loans, NOW)
    record_file(warehouse, "kiva_loans", NOW + HOUR)
    fresh = check_alerts(warehouse, loans, NOW + 2 * HOUR)

    [alert] = stale
    assert (alert.rule, alert.threshold) == ("max_hours_without_file", 24.0)
    assert alert.observed == pytest.approx(25.0)
    assert "25.0 h" in alert.message
    assert fresh == []


def test_unprocessed_files_fire_past_the_threshold_and_clear_once_settled(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    loans = only(contracts, "kiva_loans")
    record_file(warehouse, "kiva_loans", NOW - HOUR)  # fresh data: no other rule breaches

    waiting = check_alerts(warehouse, loans, NOW, unprocessed={"kiva_loans": 3 * 3600.0})
    within = check_alerts(warehouse, loans, NOW, unprocessed={"kiva_loans": 7200.0})
    reopened = check_alerts(warehouse, loans, NOW, unprocessed={"kiva_loans": 7201.0})
    settled = check_alerts(warehouse, loans, NOW + HOUR, unprocessed={})

    [alert] = waiting
    assert (alert.rule, alert.alert, alert.threshold) == (
        "unprocessed_files",
        "unprocessed_files",
        2.0,
    )
    assert alert.observed == pytest.approx(3.0)
    assert "waited 3.0 h without being loaded or rejected" in alert.message
    assert within == [] and [a.rule for a in reopened] == ["unprocessed_files"]
    assert settled == []


def test_max_hours_without_file_at_the_limit_does_not_fire(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    record_file(warehouse, "kiva_loans", NOW - 24 * HOUR)

    assert check_alerts(warehouse, only(contracts, "kiva_loans"), NOW) == []


def test_rejected_and_future_files_do_not_count_as_received(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    record_file(warehouse, "kiva_loans", NOW - HOUR, rows_loaded=0, status="rejected")
    record_file(warehouse, "kiva_loans", NOW + HOUR)  # after the check's `now`

    alerts = check_alerts(warehouse, only(contracts, "kiva_loans"), NOW)

    assert rules(alerts) == {("kiva_loans", "max_hours_without_file")}


def test_min_rows_per_hour_fires_on_a_thin_window_and_clears_when_rows_arrive(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    logs = only(
        contracts,
        "server_logs",
        freshness=FreshnessRule(min_rows_per_hour=100, window_hours=2),
    )
    record_file(warehouse, "server_logs", NOW - 3 * HOUR, rows_loaded=10_000)  # before window
    record_file(warehouse, "server_logs", NOW - HOUR, rows_loaded=150, rows_dead=1)

    thin = check_alerts(warehouse, logs, NOW)
    record_file(warehouse, "server_logs", NOW - HOUR / 2, rows_loaded=100)
    enough = check_alerts(warehouse, logs, NOW)

    [alert] = thin
    assert (alert.rule, alert.alert) == ("min_rows_per_hour", "missing_data")
    assert (alert.observed, alert.threshold) == (75.0, 100.0)  # 150 rows over 2 h
    assert enough == []


def test_dead_letter_rate_fires_only_above_the_threshold(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    loans = only(contracts, "kiva_loans")  # max_rate 0.05 over 24 h
    record_file(warehouse, "kiva_loans", NOW - 30 * HOUR, rows_loaded=0, rows_dead=500)  # old
    record_file(warehouse, "kiva_loans", NOW - 2 * HOUR, rows_loaded=95, rows_dead=5)

    at_threshold = check_alerts(warehouse, loans, NOW)
    record_file(warehouse, "kiva_loans", NOW - HOUR, rows_loaded=99, rows_dead=1)
    below = check_alerts(warehouse, loans, NOW)
    record_file(warehouse, "kiva_loans", NOW - HOUR / 2, rows_loaded=80, rows_dead=20)
    above = check_alerts(warehouse, loans, NOW)

    assert at_threshold == []  # 5 of 100 is exactly 5%
    assert below == []  # 6 of 200
    [alert] = above  # 26 of 300
    assert (alert.rule, alert.alert) == ("dead_letter_rate", "dead_letter_rate")
    assert alert.observed == pytest.approx(26 / 300)
    assert alert.threshold == 0.05
    assert "26 of 300 rows" in alert.message


def test_alerts_table_keeps_opened_at_clears_and_reopens(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    loans = only(contracts, "kiva_loans")

    check_alerts(warehouse, loans, NOW)
    [still] = check_alerts(warehouse, loans, NOW + HOUR)
    still_row = table(warehouse)[("kiva_loans", "max_hours_without_file")]
    record_file(warehouse, "kiva_loans", NOW + 2 * HOUR)
    cleared = check_alerts(warehouse, loans, NOW + 3 * HOUR)
    cleared_row = table(warehouse)[("kiva_loans", "max_hours_without_file")]
    [reopened] = check_alerts(warehouse, loans, NOW + 30 * HOUR)
    reopened_row = table(warehouse)[("kiva_loans", "max_hours_without_file")]

    assert still.opened_at == NOW
    assert (still_row["status"], still_row["opened_at"], still_row["checked_at"]) == (
        "open",
        NOW,
        NOW + HOUR,
    )
    assert cleared == []
    assert (cleared_row["status"], cleared_row["cleared_at"]) == ("cleared", NOW + 3 * HOUR)
    assert reopened.opened_at == NOW + 30 * HOUR
    assert (reopened_row["status"], reopened_row["cleared_at"]) == ("open", None)
    assert len(table(warehouse)) == 1


def test_check_alerts_leaves_other_datasets_alerts_alone(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    check_alerts(warehouse, only(contracts, "kiva_lenders"), NOW)

    check_alerts(warehouse, only(contracts, "kiva_loans"), NOW + HOUR)

    assert table(warehouse)[("kiva_lenders", "max_hours_without_file")]["status"] == "open"


def test_open_alerts_lists_only_open_ones(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract]
) -> None:
    check_alerts(warehouse, contracts, NOW)
    for dataset in ("access_logs", "http_requests", "kiva_loans", "server_logs"):
        record_file(warehouse, dataset, NOW + HOUR / 2)

    check_alerts(warehouse, contracts, NOW + HOUR)
    listed = open_alerts(warehouse)

    assert [(a["dataset"], a["rule"]) for a in listed] == [
        ("kiva_lenders", "max_hours_without_file")
    ]
    assert listed[0]["opened_at"] == NOW


def test_cook_twice_reports_the_same_alerts(warehouse: DuckDBWarehouse, settings: Settings) -> None:
    record_file(warehouse, "kiva_loans", NOW - HOUR, rows_loaded=50, rows_dead=50)
    record_file(warehouse, "server_logs", NOW - 2 * HOUR, rows_loaded=10)

    first = cook_and_check_alerts(warehouse, settings, NOW)
    table_after_first = table(warehouse)
    second = cook_and_check_alerts(warehouse, settings, NOW)

    assert second.alerts == first.alerts
    assert table(warehouse) == table_after_first
    assert rules(first.alerts) == {
        ("access_logs", "max_hours_without_file"),
        ("http_requests", "max_hours_without_file"),
        ("kiva_lenders", "max_hours_without_file"),
        ("kiva_loans", "dead_letter_rate"),
        ("server_logs", "max_hours_without_file"),
        ("server_logs", "min_rows_per_hour"),
    }
    assert {t.table for t in first.tables} == {t.table for t in second.tables}


def test_open_alerts_are_error_lines_the_paging_metric_counts(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract], captured: io.StringIO
) -> None:
    record_file(warehouse, "kiva_loans", NOW - HOUR, rows_loaded=50, rows_dead=50)
    metric = load_infra().resources["google_logging_metric.alerts"]
    log_filter = load_infra().locals["alert_log_filter"]

    alerts = check_alerts(warehouse, contracts, NOW)

    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    entries = [
        {
            "severity": line.pop("severity"),
            "labels": line.pop(LABELS_FIELD, {}),
            "jsonPayload": line,
        }
        for line in lines
    ]
    paging = [e for e in entries if matches(log_filter, e)]
    assert len(paging) == len(entries) == len(alerts)  # one line per open alert
    assert {(e["labels"]["dataset"], e["jsonPayload"]["rule"]) for e in paging} == rules(alerts)
    assert {(e["labels"]["dataset"], e["jsonPayload"]["alert"]) for e in paging} == {
        ("access_logs", "missing_data"),
        ("http_requests", "missing_data"),
        ("kiva_lenders", "missing_data"),
        ("kiva_loans", "dead_letter_rate"),
        ("server_logs", "missing_data"),
    }
    assert set(metric["label_extractors"]) == {"alert", "dataset"}


def test_cleared_alerts_log_below_error(
    warehouse: DuckDBWarehouse, contracts: dict[str, Contract], captured: io.StringIO
) -> None:
    loans = only(contracts, "kiva_loans")
    check_alerts(warehouse, loans, NOW)
    record_file(warehouse, "kiva_loans", NOW + HOUR / 2)
    captured.truncate(0)
    captured.seek(0)

    check_alerts(warehouse, loans, NOW + HOUR)

    [line] = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert line["severity"] == "INFO"
    assert line["cleared"] == "max_hours_without_file"
    assert line[LABELS_FIELD] == {"dataset": "kiva_loans"}
