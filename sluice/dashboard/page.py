"""The dashboard: every cooked table worth looking at, as one self-contained HTML page.

``render_dashboard`` reads the charts declared in the ``-- dashboard:`` headers of the
summary SQL files (``sluice.dashboard.specs``), runs one query per chart, lays the charts out
(``sluice.dashboard.charts``) and renders ``dashboard.html.j2`` (Jinja2, autoescape on, so
every value is escaped). The page has inline CSS and server-drawn SVG: no script, no font, no
image, no URL, so it reads the same offline, saved to a file or served by the ``dashboard``
function. A table that does not exist yet (``MissingTable``: nothing cooked) is shown as an
empty state; any other warehouse failure is raised to the caller.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jinja2

from sluice.dashboard.charts import Chart, Mark, bar_list, column_chart, line_chart, raw, shown
from sluice.dashboard.specs import ChartSpec, chart_specs
from sluice.errors import MissingTable
from sluice.settings import Settings
from sluice.warehouse import Warehouse

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
TEMPLATE = "dashboard.html.j2"


@dataclass
class Card:
    """One card of the page: a chart, a table, or an empty state (``empty`` says why)."""

    spec: ChartSpec
    title: str
    empty: str = ""
    chart: Chart | None = None
    rows: Rows | None = None
    columns: tuple[tuple[str, str], ...] = ()
    note: str = ""


class _Tooltip(string.Formatter):
    """``{column}`` as ``shown`` writes it; ``{column:pct}`` as a percentage."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return shown(value, format_spec)


def read_rows(warehouse: Warehouse, sql: str, what: str) -> Rows | None:
    """The rows of one query; None when its table does not exist (yet)."""
    try:
        return warehouse.query(sql)
    except MissingTable as exc:
        log.info("dashboard: %s has no table yet (%s)", what, str(exc).splitlines()[0])
        return None


def label_of(spec: ChartSpec, row: dict[str, Any]) -> str:
    """A bar's label: the first of the spec's label columns that has a value."""
    for column in spec.label or (spec.x,):
        if row.get(column) is not None:
            return shown(row[column], spec.x_format if column == spec.x else "")
    return "unknown"


def marks_of(spec: ChartSpec, rows: Rows) -> list[Mark]:
    """One mark per row: value ``y`` (NULL drawn as 0), ``data`` attributes, tooltip."""
    marks = []
    for row in rows:
        label = label_of(spec, row)
        title = _Tooltip().format(spec.tooltip, **row, label=label) if spec.tooltip else ""
        back = row[spec.back] if spec.back else None
        marks.append(Mark(label, row[spec.y] or 0.0, _data(spec, row), title=title, back=back))
    return marks


def line_marks(spec: ChartSpec, rows: Rows) -> tuple[list[str], dict[str, list[Mark]]]:
    """The x labels, and one point per row for each series (``data-series``, ``data-value``)."""
    labels = [shown(r[spec.x], spec.x_format) for r in rows]
    series = {
        name: [
            Mark(label, r[column] or 0.0, _data(spec, r) | {"series": column, "value": r[column]})
            for label, r in zip(labels, rows, strict=True)
        ]
        for name, column in spec.series
    }
    return labels, series


def mark_peaks(spec: ChartSpec, marks: list[Mark], rows: Rows, peaks: Rows) -> str:
    """Darken the marks the peaks table names, label its top one; the note under the chart."""
    assert spec.peaks is not None
    x, y = spec.peaks.x, spec.peaks.y
    top = min(peaks, key=lambda r: (-r[y], r[x]), default=None)
    named = {r[x] for r in peaks}
    for mark, row in zip(marks, rows, strict=True):
        is_top = top is not None and row[spec.x] == top[x]
        mark.css = ("peak " if is_top else "") + ("day-peak" if row[spec.x] in named else "")
        if is_top:
            mark.attrs["peak"] = "overall"
    if top is None or not spec.peaks.note:
        return ""
    return spec.peaks.note.format(peak_x=shown(top[x], spec.x_format), peak_y=shown(top[y]))


def chart_card(warehouse: Warehouse, spec: ChartSpec) -> Card:
    """The card of one declared chart, its numbers read from its cooked table."""
    card = Card(spec, spec.title)
    rows = read_rows(warehouse, spec.sql(), spec.table)
    if rows is None:
        card.empty = "not cooked yet: run sluice cook"
        return card
    if not rows:
        card.empty = "no rows yet"
        return card
    width = {"width": spec.width} if spec.width else {}
    if spec.kind == "table":
        card.rows, card.columns = rows, spec.columns
    elif spec.kind == "line":
        labels, series = line_marks(spec, rows)
        card.chart = line_chart(labels, series, name=spec.name, **width)
    else:
        marks = marks_of(spec, rows)
        if spec.peaks is not None:
            peaks = read_rows(warehouse, spec.peaks.sql(), spec.peaks.table) or []
            card.note = mark_peaks(spec, marks, rows, peaks)
        draw = column_chart if spec.kind == "columns" else bar_list
        card.chart = draw(marks, name=spec.name, kind=spec.y_format, **width)
    return card


def _data(spec: ChartSpec, row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[column] for name, column in spec.data.items()}


def alerts_card(warehouse: Warehouse, spec: ChartSpec) -> Card:
    """The open alerts (``warehouse.open_alerts``: none before the first check)."""
    alerts = warehouse.open_alerts()
    card = Card(spec, f"{spec.title} ({len(alerts)})")
    if not alerts:
        card.empty = "no open alerts, or no alerts table yet: no check has run"
        return card
    card.rows = alerts
    card.columns = tuple((column, column) for column in dict.fromkeys(k for a in alerts for k in a))
    return card


def render_dashboard(warehouse: Warehouse, settings: Settings) -> str:
    """The whole dashboard page for the warehouse's cooked tables, as HTML text."""
    sections: dict[str, list[Card]] = {}
    for spec in chart_specs(settings.sql_dir):
        card = (
            alerts_card(warehouse, spec) if spec.kind == "alerts" else chart_card(warehouse, spec)
        )
        sections.setdefault(spec.section, []).append(card)
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            sections=sections,
            warehouse=settings.warehouse,
            cooked_dataset=settings.cooked_warehouse_dataset,
            now=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    )


def _environment() -> jinja2.Environment:
    """The template environment: this package's templates, autoescaped, strict, with filters."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("sluice.dashboard", ""),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters |= {"raw": raw, "shown": shown, "px": lambda v: f"{v:.2f}"}
    return environment
