"""The dashboard shows every value it renders as text, never as markup.

Every text column of every table the dashboard reads (paths and countries from server logs,
sectors and countries from Kiva files, dataset names and landing uris from the pipeline
tables, every field of an alert) holds a distinct ``<script>``/attribute-breaking value; the
page comes from the real ``dashboard`` HTTP function and is read back with an HTML parser.

Proven elsewhere and not repeated: an alert message and a country code holding
``<script>`` are escaped, and the page loads nothing from outside
(tests/sluice/dashboard/test_page.py::test_dashboard_escapes_values_and_shows_open_alerts,
test_dashboard_is_self_contained).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from sluice.settings import REPO_ROOT, load_settings

TYPES = {"text": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "day": "DATE", "ts": "TIMESTAMPTZ"}
SAMPLE = {
    "int": 3,
    "float": 0.25,
    "day": date(2026, 11, 24),
    "ts": datetime(2026, 11, 24, 10, tzinfo=UTC),
}
TABLES = {
    "server_requests_per_hour": "hour:ts requests:int server_errors:int server_error_rate:float",
    "server_peak_hour": "day:day peak_hour:ts requests:int share_of_day:float",
    "server_requests_per_day": "day:day requests:int server_errors:int server_error_rate:float",
    "server_latency_by_path": "path:text requests:int"
    " p50_latency_ms:float p95_latency_ms:float p99_latency_ms:float",
    "server_traffic_by_country": "country_code:text requests:int share_of_requests:float"
    " server_errors:int",
    "kiva_loans_by_month": "month:day loans:int funded_amount:float loan_amount:float",
    "kiva_loans_by_sector": "sector_name:text loans:int funded_amount:float loan_amount:float",
    "kiva_loans_by_country": "country_code:text country_name:text loans:int"
    " funded_amount:float loan_amount:float",
    "pipeline_loads_per_day": "dataset:text day:day files_loaded:int files_rejected:int"
    " rows_in:int rows_loaded:int rows_dead:int dead_letter_rate:float",
    "pipeline_last_load": "dataset:text last_loaded_at:ts last_loaded_uri:text"
    " last_rows_loaded:int files_loaded:int files_rejected:int last_rejected_at:ts",
}
"""Every cooked table the dashboard reads: column:type of each column it selects."""
ALERTS = (
    "dataset:text rule:text alert:text status:text message:text observed:float threshold:float"
    " opened_at:ts checked_at:ts cleared_at:ts"
)


def hostile(column: str) -> str:
    """A value that would run script or add an attribute if it were not escaped."""
    return f"<script>alert('{column}')</script>\"'><img src=x onerror=alert(1)> {column}"


class Page(HTMLParser):
    """Every tag, attribute and piece of text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def create(con: duckdb.DuckDBPyConnection, table: str, spec: str) -> list[str]:
    """``table`` with one row, every text column hostile; the hostile values."""
    columns = dict(column.split(":") for column in spec.split())
    con.execute(
        f"CREATE TABLE {table} ({', '.join(f'{c} {TYPES[t]}' for c, t in columns.items())})"
    )
    row = {c: hostile(c) if t == "text" else SAMPLE[t] for c, t in columns.items()}
    if "status" in row:
        row["status"] = "open"  # an open alert, so the page lists it
    con.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return [value for value in row.values() if isinstance(value, str) and value != "open"]


def test_dashboard_function_shows_hostile_values_in_every_table_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions_framework

    settings = load_settings({"SLUICE_HOME": str(tmp_path)})
    settings.duckdb_file.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.duckdb_file)) as con:
        con.execute(
            f"CREATE SCHEMA {settings.warehouse_dataset};"
            f" CREATE SCHEMA {settings.cooked_warehouse_dataset}"
        )
        values = create(con, f"{settings.warehouse_dataset}.alerts", ALERTS)
        for table, spec in TABLES.items():
            values += create(con, f"{settings.cooked_warehouse_dataset}.{table}", spec)
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path))
    app = functions_framework.create_app(target="dashboard", source=str(REPO_ROOT / "main.py"))

    response = app.test_client().get("/")
    html = response.get_data(as_text=True)
    page = Page(html)

    assert response.status_code == 200 and response.content_type.startswith("text/html")
    assert len(values) == 12  # 4 alert fields, 8 cooked text columns
    assert not {"script", "img"} & set(page.tags)
    assert [name for name, _ in page.attributes if name.startswith("on")] == []
    assert "<script" not in html.lower() and "<img" not in html.lower()
    shown = page.text + [value for _, value in page.attributes]
    assert [value for value in values if not any(value in text for text in shown)] == []
