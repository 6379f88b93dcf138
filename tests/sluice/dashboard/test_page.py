"""The dashboard page: its chart data equal the cooked tables, it is self-contained and safe.

The cooked tables come from tests/sluice/cook/cook_data.py, loaded and cooked on the DuckDB
adapter; every expected number is read from the cooked tables by a query of this file, and
read back from the page's data attributes by an HTML parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sluice.contracts import Contract
from sluice.cook.summaries import cook
from sluice.dashboard.page import render_dashboard
from sluice.schema import ALERT_COLUMNS, ALERTS_TABLE, BIGQUERY_TYPES
from sluice.settings import REPO_ROOT, Settings, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.cook import cook_data

Attrs = dict[str, str]
ALERTS_SCHEMA = ", ".join(f"{name} {BIGQUERY_TYPES[kind]}" for name, kind in ALERT_COLUMNS)
"""The alerts table as the warehouse creates it (every column the page reads)."""


class Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, Attrs]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def marks(self, attr: str, tag: str | None = None) -> list[Attrs]:
        """Attributes of every element carrying ``data-<attr>`` (of ``tag`` if given)."""
        key = f"data-{attr}"
        return [a for t, a in self.tags if key in a and (tag is None or t == tag)]


@pytest.fixture(scope="module")
def cooked(
    tmp_path_factory: pytest.TempPathFactory, contracts: dict[str, Contract]
) -> Iterator[tuple[DuckDBWarehouse, Settings]]:
    home = tmp_path_factory.mktemp("dashboard")
    settings = load_settings({}, home=home)
    warehouse = DuckDBWarehouse(settings)
    cook_data.load(warehouse, contracts, cook_data.build(), home / "staged")
    cook(warehouse, settings)
    yield warehouse, settings


@pytest.fixture(scope="module")
def page(cooked: tuple[DuckDBWarehouse, Settings]) -> Elements:
    return Elements(render_dashboard(*cooked))


def cooked_rows(cooked: tuple[DuckDBWarehouse, Settings], sql: str) -> list[dict]:
    return cooked[0].query(sql)


def test_dashboard_hour_bars_equal_server_requests_per_hour(cooked, page: Elements) -> None:
    expected = {
        r["hour"]: r["requests"]
        for r in cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.server_requests_per_hour")
    }

    bars = page.marks("hour", "rect")

    assert {datetime.fromisoformat(b["data-hour"]): int(b["data-requests"]) for b in bars} == (
        expected
    )
    assert len(bars) == len(expected) > 24


def test_dashboard_marks_the_busiest_hour_as_the_one_peak(cooked, page: Elements) -> None:
    hours = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.server_requests_per_hour")
    busiest = max(r["requests"] for r in hours)
    first_busiest = min(r["hour"] for r in hours if r["requests"] == busiest)

    peaks = page.marks("peak", "rect")

    assert [datetime.fromisoformat(p["data-hour"]) for p in peaks] == [first_busiest]
    assert "peak" in peaks[0]["class"].split()
    assert any(f"peak {first_busiest:%Y-%m-%d %H:00}" in text for text in page.text)


def test_dashboard_error_rate_bars_equal_server_requests_per_day(cooked, page: Elements) -> None:
    rows = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.server_requests_per_day")

    bars = {b["data-day"]: float(b["data-error-rate"]) for b in page.marks("error-rate", "rect")}

    assert bars == {str(r["day"]): r["server_error_rate"] for r in rows}
    assert max(bars.values()) > 0.1  # the 5xx burst of day two is there to be seen


def test_dashboard_latency_rows_equal_server_latency_by_path(cooked, page: Elements) -> None:
    rows = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.server_latency_by_path")
    expected = {
        r["path"]: (r["p50_latency_ms"], r["p95_latency_ms"], r["p99_latency_ms"]) for r in rows
    }

    shown = {
        m["data-path"]: tuple(
            float(m[f"data-p{q}-latency-ms"]) if m[f"data-p{q}-latency-ms"] else None
            for q in (50, 95, 99)
        )
        for m in page.marks("p50-latency-ms", "tr")
    }

    assert shown == expected
    assert shown[cook_data.UNTIMED_PATH] == (None, None, None)


def test_dashboard_country_bars_equal_cooked_traffic_and_kiva_tables(
    cooked, page: Elements
) -> None:
    web = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.server_traffic_by_country")
    kiva = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.kiva_loans_by_country")
    bars = page.marks("country", "rect")

    web_bars = {b["data-country"]: int(b["data-requests"]) for b in bars if "data-requests" in b}
    kiva_bars = {b["data-country"]: float(b["data-funded"]) for b in bars if "data-funded" in b}

    assert web_bars == {r["country_code"] or "": r["requests"] for r in web}
    assert kiva_bars == {r["country_code"] or "": r["funded_amount"] for r in kiva}
    assert "NA" in kiva_bars and "" in kiva_bars  # Namibia and the unrecorded country


def test_dashboard_kiva_month_and_sector_marks_equal_cooked_tables(cooked, page: Elements) -> None:
    months = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.kiva_loans_by_month")
    sectors = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.kiva_loans_by_sector")

    points = {
        (p["data-month"], p["data-series"]): float(p["data-value"])
        for p in page.marks("month", "circle")
    }
    sector_bars = {
        b["data-sector"]: (
            float(b["data-funded"]),
            float(b["data-requested"]),
            int(b["data-loans"]),
        )
        for b in page.marks("sector", "rect")
    }

    assert points == {
        (str(r["month"]), column): r[column]
        for r in months
        for column in ("funded_amount", "loan_amount")
    }
    assert sector_bars == {
        r["sector_name"]: (r["funded_amount"], r["loan_amount"], r["loans"]) for r in sectors
    }


def test_dashboard_pipeline_tables_equal_cooked_health(cooked, page: Elements) -> None:
    loads = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.pipeline_loads_per_day")
    last = cooked_rows(cooked, "SELECT * FROM {cooked_dataset}.pipeline_last_load")

    shown_loads = {
        (m["data-dataset"], m["data-day"]): (int(m["data-rows-dead"]), m["data-dead-letter-rate"])
        for m in page.marks("dead-letter-rate", "tr")
    }
    shown_last = {m["data-dataset"]: m["data-last-loaded-at"] for m in page.marks("last-loaded-at")}

    assert shown_loads == {
        (r["dataset"], str(r["day"])): (
            r["rows_dead"],
            "" if r["dead_letter_rate"] is None else repr(r["dead_letter_rate"]),
        )
        for r in loads
    }
    assert shown_last == {r["dataset"]: r["last_loaded_at"].isoformat() for r in last}
    assert any("no alerts table yet" in text for text in page.text)


def test_dashboard_is_self_contained(page: Elements, cooked) -> None:
    html = render_dashboard(*cooked)

    assert not re.search(r"(https?|ftp|wss?):", html, re.I)
    assert [t for t, _ in page.tags if t in ("script", "img", "iframe", "object", "image")] == []
    loaded = [v for _, a in page.tags for k, v in a.items() if k in ("src", "href", "xlink:href")]
    assert loaded == ["data:,"]  # the empty icon, which spares a /favicon.ico request
    assert "@import" not in html and "url(" not in html


def test_dashboard_escapes_values_and_shows_open_alerts(tmp_path: Path) -> None:
    settings = load_settings({}, home=tmp_path)
    warehouse = DuckDBWarehouse(settings)
    hostile = "<script>alert(1)</script>"
    warehouse.run_script(
        "CREATE SCHEMA IF NOT EXISTS {dataset}; CREATE SCHEMA IF NOT EXISTS {cooked_dataset};"
        f"CREATE TABLE {{dataset}}.{ALERTS_TABLE} ({ALERTS_SCHEMA});"
        f"INSERT INTO {{dataset}}.{ALERTS_TABLE} (dataset, rule, status, message)"
        f" VALUES ('kiva_loans', 'freshness', 'open', '{hostile}'),"
        " ('server_logs', 'dead_letters', 'cleared', 'was bad');"
        "CREATE TABLE {cooked_dataset}.server_traffic_by_country AS SELECT"
        f" '{hostile}' AS country_code, 3 AS requests, 1.0 AS share_of_requests,"
        " 0 AS server_errors"
    )

    html = render_dashboard(warehouse, settings)
    page = Elements(html)

    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # alert, bar, label
    assert [m["data-rule"] for m in page.marks("rule", "tr")] == ["freshness"]
    assert page.marks("country")[0]["data-country"] == hostile
    assert any("Open alerts (1)" in text for text in page.text)


def test_dashboard_of_an_empty_warehouse_shows_empty_states(tmp_path: Path) -> None:
    settings = load_settings({}, home=tmp_path)

    html = render_dashboard(DuckDBWarehouse(settings), settings)

    assert html.count("not cooked yet") >= 9
    assert "no alerts table yet" in html and Elements(html).marks("requests") == []


def test_dashboard_http_function_returns_the_page(cooked, monkeypatch) -> None:
    import functions_framework

    monkeypatch.setenv("SLUICE_HOME", str(cooked[1].home))
    app = functions_framework.create_app(target="dashboard", source=str(REPO_ROOT / "main.py"))

    response = app.test_client().get("/")

    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    assert Elements(response.get_data(as_text=True)).marks("peak", "rect")


def test_dashboard_http_function_bad_setting_is_500_one_line(monkeypatch) -> None:
    import functions_framework

    monkeypatch.setenv("SLUICE_COOKED_WAREHOUSE_DATASET", "no-such;name")
    app = functions_framework.create_app(target="dashboard", source=str(REPO_ROOT / "main.py"))

    response = app.test_client().get("/")

    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "SLUICE_COOKED_WAREHOUSE_DATASET" in body and body.count("\n") == 1
