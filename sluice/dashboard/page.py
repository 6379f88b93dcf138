"""The dashboard: every cooked table worth looking at, as one self-contained HTML page.

``render_dashboard`` queries the cooked tables (and the alerts table when there is one) and
returns a page with inline CSS and server-drawn SVG (``sluice/dashboard/charts.py``): no script,
no font, no image, no URL, so it reads the same offline, saved to a file or served by the
``dashboard`` function. A table that does not exist yet (nothing cooked, no alerts table)
is shown as an empty state; any other warehouse failure is raised to the caller.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sluice.dashboard.charts import (
    CSS,
    Mark,
    bar_list,
    card,
    column_chart,
    esc,
    legend,
    line_chart,
    shown,
    table,
)
from sluice.errors import WarehouseError
from sluice.settings import Settings
from sluice.warehouse import Warehouse

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
TOP = 15
"""Rows shown in the top-N bar lists (countries, sectors, paths)."""
CLOSED_ALERT_STATUSES = frozenset({"resolved", "closed", "ok", "cleared", "acknowledged"})
"""An alert whose status is none of these counts as open."""
_MISSING_TABLE = ("does not exist", "Not found: Table", "Not found: Dataset")

QUERIES = {
    "hours": "SELECT hour, requests, server_errors, server_error_rate"
    " FROM {cooked_dataset}.server_requests_per_hour ORDER BY hour",
    "peaks": "SELECT day, peak_hour, requests, share_of_day"
    " FROM {cooked_dataset}.server_peak_hour ORDER BY day",
    "days": "SELECT day, requests, server_errors, server_error_rate"
    " FROM {cooked_dataset}.server_requests_per_day ORDER BY day",
    "latency": "SELECT path, requests, p50_latency_ms, p95_latency_ms, p99_latency_ms"
    f" FROM {{cooked_dataset}}.server_latency_by_path ORDER BY requests DESC, path LIMIT {TOP}",
    "web_countries": "SELECT country_code, requests, share_of_requests, server_errors"
    " FROM {cooked_dataset}.server_traffic_by_country"
    f" ORDER BY requests DESC, country_code LIMIT {TOP}",
    "months": "SELECT month, loans, funded_amount, loan_amount"
    " FROM {cooked_dataset}.kiva_loans_by_month WHERE month IS NOT NULL ORDER BY month",
    "sectors": "SELECT sector_name, loans, funded_amount, loan_amount"
    " FROM {cooked_dataset}.kiva_loans_by_sector"
    f" ORDER BY funded_amount DESC, sector_name LIMIT {TOP}",
    "kiva_countries": "SELECT country_code, country_name, loans, funded_amount, loan_amount"
    " FROM {cooked_dataset}.kiva_loans_by_country"
    f" ORDER BY funded_amount DESC, country_code LIMIT {TOP}",
    "loads": "SELECT dataset, day, files_loaded, files_rejected, rows_in, rows_loaded,"
    " rows_dead, dead_letter_rate FROM {cooked_dataset}.pipeline_loads_per_day"
    " ORDER BY day DESC, dataset LIMIT 90",
    "last_load": "SELECT dataset, last_loaded_at, last_loaded_uri, last_rows_loaded,"
    " files_loaded, files_rejected, last_rejected_at"
    " FROM {cooked_dataset}.pipeline_last_load ORDER BY dataset",
    "alerts": "SELECT * FROM {dataset}.alerts",
}


def read_tables(warehouse: Warehouse) -> dict[str, Rows | None]:
    """Every query's rows by name; None where its table does not exist (yet)."""
    found: dict[str, Rows | None] = {}
    for name, sql in QUERIES.items():
        try:
            found[name] = warehouse.query(sql)
        except WarehouseError as exc:
            if not any(marker in str(exc) for marker in _MISSING_TABLE):
                raise
            log.info("dashboard: %s has no table yet (%s)", name, str(exc).splitlines()[0])
            found[name] = None
    return found


def render_dashboard(warehouse: Warehouse, settings: Settings) -> str:
    """The whole dashboard page for the warehouse's cooked tables, as HTML text."""
    tables = read_tables(warehouse)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    sections = (
        ("Server traffic", _server(tables)),
        ("Kiva funding", _kiva(tables)),
        ("Pipeline health", _pipeline(tables)),
    )
    body = "".join(
        f'<section><h2>{esc(title)}</h2><div class="grid">{cards}</div></section>'
        for title, cards in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # An empty data: icon stops the browser asking the server for /favicon.ico.
        '<link rel="icon" href="data:,"><title>Sluice dashboard</title>'
        f"<style>{CSS}</style></head><body><header><h1>Sluice</h1><p>"
        f"{esc(settings.warehouse)} · cooked dataset <code>{esc(settings.cooked_dataset)}</code>"
        f" · rendered {esc(now)}</p></header>{body}</body></html>"
    )


def overall_peak(peaks: Rows) -> dict[str, Any] | None:
    """The busiest hour of all: the top day peak by requests, the earliest on a tie."""
    return min(peaks, key=lambda r: (-r["requests"], r["peak_hour"]), default=None)


def _server(t: dict[str, Rows | None]) -> str:
    peak = overall_peak(t["peaks"] or [])
    peak_hour = peak["peak_hour"] if peak else None
    day_peaks = {r["peak_hour"] for r in t["peaks"] or []}
    hours = [
        Mark(
            shown(r["hour"], "hour"),
            r["requests"],
            {"hour": r["hour"], "requests": r["requests"], "server-errors": r["server_errors"]}
            | ({"peak": "overall"} if r["hour"] == peak_hour else {}),
            css=("peak " if r["hour"] == peak_hour else "")
            + ("day-peak" if r["hour"] in day_peaks else ""),
        )
        for r in t["hours"] or []
    ]
    days = [
        Mark(
            str(r["day"]),
            r["server_error_rate"] or 0.0,
            {"day": r["day"], "error-rate": r["server_error_rate"], "requests": r["requests"]},
            title=f"{r['day']}: {shown(r['server_error_rate'], 'pct')} 5xx"
            f" ({shown(r['server_errors'])} of {shown(r['requests'])})",
        )
        for r in t["days"] or []
    ]
    countries = [
        Mark(
            r["country_code"] or "unknown",
            r["requests"],
            {"country": r["country_code"], "requests": r["requests"]},
        )
        for r in t["web_countries"] or []
    ]
    peak_note = (
        f"Peak: {shown(peak_hour, 'hour')} UTC, {shown(peak['requests'])} requests."
        " Darker bars: each day's peak hour."
        if peak
        else ""
    )
    latency = table(t["latency"] or [], "latency", LATENCY_COLUMNS)
    return "".join(
        [
            card(
                "Requests per hour (UTC)",
                t["hours"],
                column_chart(hours, name="requests-per-hour"),
                peak_note,
                wide=True,
            ),
            card(
                "5xx error rate per day",
                t["days"],
                column_chart(days, name="error-rate-per-day", width=620, kind="pct"),
            ),
            card(
                "Traffic by country",
                t["web_countries"],
                bar_list(countries, name="traffic-by-country"),
            ),
            card("Latency of the busiest paths (ms)", t["latency"], latency, wide=True),
        ]
    )


def _funding(rows: Rows | None, key: str, column: str, label: Any) -> list[Mark]:
    """Bars of funded amount (requested behind), with ``column``'s value as ``data-<key>``."""
    return [
        Mark(
            label(r),
            r["funded_amount"] or 0.0,
            {
                key: r[column],
                "funded": r["funded_amount"],
                "requested": r["loan_amount"],
                "loans": r["loans"],
            },
            title=f"{label(r)}: funded {shown(r['funded_amount'])} of"
            f" {shown(r['loan_amount'])} requested, {shown(r['loans'])} loans",
            back=r["loan_amount"],
        )
        for r in rows or []
    ]


def _kiva(t: dict[str, Rows | None]) -> str:
    months = t["months"] or []
    labels = [r["month"].strftime("%Y-%m") for r in months]
    series = {
        name: [
            Mark(
                label, r[column] or 0.0, {"month": r["month"], "series": column, "value": r[column]}
            )
            for label, r in zip(labels, months, strict=True)
        ]
        for name, column in (("funded", "funded_amount"), ("requested", "loan_amount"))
    }
    sectors = _funding(
        t["sectors"], "sector", "sector_name", lambda r: r["sector_name"] or "unknown"
    )
    countries = _funding(
        t["kiva_countries"],
        "country",
        "country_code",
        lambda r: r["country_name"] or r["country_code"] or "unknown",
    )
    lines = line_chart(labels, series, name="kiva-by-month", width=1280)
    bars = legend(("bar", "funded"), ("back", "requested (USD)"))
    return "".join(
        [
            card(
                "Funded vs requested by month posted",
                t["months"],
                lines + legend(("s0", "funded"), ("s1", "requested (USD)")),
                wide=True,
            ),
            card("By sector", t["sectors"], bar_list(sectors, name="kiva-by-sector") + bars),
            card(
                "Top countries",
                t["kiva_countries"],
                bar_list(countries, name="kiva-by-country") + bars,
            ),
        ]
    )


def open_alerts(alerts: Rows) -> Rows:
    """Alerts whose status is not a closed one, by dataset and rule."""
    found = [a for a in alerts if str(a.get("status", "")).lower() not in CLOSED_ALERT_STATUSES]
    return sorted(found, key=lambda a: (str(a.get("dataset")), str(a.get("rule"))))


def _pipeline(t: dict[str, Rows | None]) -> str:
    if t["alerts"] is None:
        alerts = (
            '<div class="card"><h3>Open alerts</h3><p class="empty">no alerts table yet</p></div>'
        )
    else:
        rows = open_alerts(t["alerts"])
        first = [c for c in ALERT_COLUMNS if any(c in a for a in rows)]
        columns = " ".join(first + sorted({k for a in rows for k in a} - set(first)))
        alerts = card(
            f"Open alerts ({len(rows)})",
            t["alerts"],
            table(rows, "alerts", columns) if rows else '<p class="empty">no open alerts</p>',
        )
    return "".join(
        [
            alerts,
            card(
                "Last load per dataset",
                t["last_load"],
                table(t["last_load"] or [], "last-load", LAST_LOAD_COLUMNS),
                wide=True,
            ),
            card(
                "Loads per dataset and day",
                t["loads"],
                table(t["loads"] or [], "loads", LOADS_COLUMNS),
                wide=True,
            ),
        ]
    )


ALERT_COLUMNS = ("dataset", "rule", "alert", "status", "message", "observed", "threshold")
"""Alert columns shown first, in this order; any others follow by name."""
LATENCY_COLUMNS = "path requests p50_latency_ms:p50 p95_latency_ms:p95 p99_latency_ms:p99"
LAST_LOAD_COLUMNS = (
    "dataset last_loaded_at:last_loaded last_rows_loaded:rows files_loaded"
    " files_rejected last_rejected_at:last_rejected last_loaded_uri:file"
)
LOADS_COLUMNS = (
    "day dataset files_loaded files_rejected rows_in rows_loaded rows_dead dead_letter_rate"
)
