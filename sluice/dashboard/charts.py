"""Chart geometry for the dashboard template: numbers in, positions out, no markup.

``sluice/dashboard/dashboard.html.j2`` draws what these return as inline SVG. Every mark
carries its numbers twice: as ``data-*`` attributes (what a test or a scraper reads back,
``raw``) and as a ``<title>`` (what a person sees on hover, ``shown``). Escaping is the
template's job (autoescape), so nothing here builds HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def raw(value: Any) -> str:
    """A value as a data attribute holds it: exact (floats round-trip), ISO dates, '' for NULL."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def shown(value: Any, kind: str = "") -> str:
    """A value as a person reads it: thousands separators, percentages, UTC times."""
    if value is None:
        return "–"
    if kind == "pct":
        return f"{float(value) * 100:.1f}%"
    if kind == "hour" and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:00")
    if kind == "month" and isinstance(value, date):
        return value.strftime("%Y-%m")
    if kind == "day" and isinstance(value, date):
        return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, Decimal):
        # A wide sum (BIGNUMERIC; DECIMAL(38, 5) on DuckDB): whole numbers read as integers.
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return str(value)


@dataclass
class Mark:
    """One bar or point: its label, its value, its data attributes and optional CSS class."""

    label: str
    value: float
    attrs: dict[str, Any] = field(default_factory=dict)
    css: str = ""
    title: str = ""
    back: float | None = None
    """A second, wider value drawn behind the bar (e.g. the amount requested)."""


@dataclass
class Shape:
    """One drawn element: its position and size, its CSS class, data attributes and tooltip."""

    x: float
    y: float
    width: float = 0.0
    height: float = 0.0
    css: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    title: str = ""


@dataclass
class Text:
    """One piece of chart text at (x, y); ``anchor`` empty means the SVG default (start)."""

    x: float
    y: float
    text: str
    anchor: str = ""


@dataclass
class Chart:
    """An SVG chart laid out: what the template's chart macros draw, in drawing order."""

    name: str
    width: int
    height: int
    grid: list[tuple[float, Text]] = field(default_factory=list)
    """Horizontal grid lines: (y, the value label at the axis)."""
    grid_left: float = 0.0
    grid_right: float = 0.0
    backs: list[Shape | None] = field(default_factory=list)
    """Bar lists: the wider bar behind each row (or None)."""
    marks: list[Shape] = field(default_factory=list)
    labels: list[Text] = field(default_factory=list)
    """Bar lists: the label left of each row; columns: the peak labels."""
    values: list[Text] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    """Line charts: (CSS class, "x,y x,y ...") of each series."""
    ticks: list[Text] = field(default_factory=list)


def _scale(values: Sequence[float | None]) -> float:
    top = max((v for v in values if v is not None), default=0.0)
    return float(top) if top > 0 else 1.0


def _attrs(attrs: Mapping[str, Any]) -> dict[str, str]:
    return {f"data-{name}": raw(value) for name, value in attrs.items()}


def _y_axis(chart: Chart, top: float, left: int, pad_top: int, plot_h: int, kind: str) -> None:
    chart.grid_left, chart.grid_right = left, chart.width - 8
    for fraction in (0.0, 0.5, 1.0):
        y = pad_top + plot_h * (1 - fraction)
        chart.grid.append((y, Text(left - 6, y + 4, shown(top * fraction, kind), "end")))


def _tick_indexes(count: int, most: int) -> list[int]:
    if count == 0:
        return []
    every = max(1, -(-count // most))
    return list(range(0, count, every))


def column_chart(
    marks: Sequence[Mark], *, name: str, width: int = 1280, height: int = 220, kind: str = ""
) -> Chart:
    """Vertical bars, left to right; marks with css ``peak`` get a label above them."""
    pad_left, pad_bottom, pad_top = 56, 24, 28
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    top = _scale([m.value for m in marks])
    step = plot_w / max(len(marks), 1)
    chart = Chart(name, width, height)
    _y_axis(chart, top, pad_left, pad_top, plot_h, kind)
    for i, mark in enumerate(marks):
        bar_h = plot_h * (mark.value or 0) / top
        x, y = pad_left + i * step, pad_top + plot_h - bar_h
        title = mark.title or f"{mark.label}: {shown(mark.value, kind)}"
        chart.marks.append(
            Shape(x, y, max(step * 0.8, 0.5), bar_h, mark.css, _attrs(mark.attrs), title)
        )
        if "peak" in mark.css.split():
            anchor = "end" if x > width / 2 else "start"
            text = f"▼ peak {mark.label}: {shown(mark.value)}"
            chart.labels.append(Text(x, max(y - 6, 12), text, anchor))
    for i in _tick_indexes(len(marks), max(int(plot_w // 110), 1)):
        x = pad_left + i * step
        if x < width - 100:  # a label starting later would run off the chart
            chart.ticks.append(Text(x, height - 6, marks[i].label))
    return chart


def bar_list(marks: Sequence[Mark], *, name: str, width: int = 620, kind: str = "") -> Chart:
    """Horizontal bars, one row per mark, label on the left, value on the right."""
    row_h, label_w, value_w = 22, 150, 90
    plot_w = width - label_w - value_w
    top = _scale([max(m.value or 0, m.back or 0) for m in marks])
    chart = Chart(name, width, row_h * max(len(marks), 1) + 6)
    for i, mark in enumerate(marks):
        y = 3 + i * row_h
        back = None if mark.back is None else Shape(label_w, y + 2, plot_w * mark.back / top)
        chart.backs.append(back)
        chart.labels.append(Text(label_w - 6, y + 15, mark.label[:22], "end"))
        title = mark.title or f"{mark.label}: {shown(mark.value, kind)}"
        bar = Shape(label_w, y + 2, plot_w * (mark.value or 0) / top, row_h - 6, mark.css)
        bar.attrs, bar.title = _attrs(mark.attrs), title
        chart.marks.append(bar)
        chart.values.append(Text(width - 4, y + 15, shown(mark.value, kind), "end"))
    return chart


def line_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[Mark]],
    *,
    name: str,
    width: int = 620,
    height: int = 240,
) -> Chart:
    """One polyline per series over shared x labels, a circle (with data) at every point."""
    pad_left, pad_bottom, pad_top = 64, 24, 12
    plot_w, plot_h = width - pad_left - 12, height - pad_bottom - pad_top
    top = _scale([m.value for marks in series.values() for m in marks])
    step = plot_w / max(len(labels) - 1, 1)
    chart = Chart(name, width, height)
    _y_axis(chart, top, pad_left, pad_top, plot_h, "")
    for n, (series_name, marks) in enumerate(series.items()):
        points = [
            (pad_left + i * step, pad_top + plot_h * (1 - (m.value or 0) / top), m)
            for i, m in enumerate(marks)
        ]
        chart.lines.append((f"s{n}", " ".join(f"{x:.2f},{y:.2f}" for x, y, _ in points)))
        for x, y, m in points:
            title = m.title or f"{series_name} {m.label}: {shown(m.value)}"
            chart.marks.append(Shape(x, y, css=f"s{n}", attrs=_attrs(m.attrs), title=title))
    for i in _tick_indexes(len(labels), max(int(plot_w // 70), 1)):
        x = pad_left + i * step
        chart.ticks.append(Text(x, height - 6, labels[i], _anchor(x, width)))
    return chart


def _anchor(x: float, width: int) -> str:
    """Text anchor that keeps a label near either edge inside the chart."""
    return "end" if x > width - 110 else "start" if x < 80 else "middle"
