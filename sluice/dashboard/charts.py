"""Tiny server-side SVG charts, tables and cards for the dashboard: strings, no JavaScript.

Every mark carries its numbers twice: as ``data-*`` attributes (what a test or a scraper
reads back) and as a ``<title>`` (what a person sees on hover). Every value is HTML-escaped
here, so a label holding ``<script>`` is drawn as text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"  # local fonts only


def esc(value: object) -> str:
    """``value`` as text safe inside HTML content and double-quoted attributes."""
    return html.escape(str(value), quote=True)


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
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return str(value)


def data_attrs(attrs: Mapping[str, Any]) -> str:
    """`` data-k="v"`` pairs, escaped."""
    return "".join(f' data-{esc(name)}="{esc(raw(value))}"' for name, value in attrs.items())


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


def _scale(values: Sequence[float | None]) -> float:
    top = max((v for v in values if v is not None), default=0.0)
    return float(top) if top > 0 else 1.0


def column_chart(
    marks: Sequence[Mark], *, name: str, width: int = 1280, height: int = 220, kind: str = ""
) -> str:
    """Vertical bars, left to right; marks with css ``peak`` get a label above them."""
    pad_left, pad_bottom, pad_top = 56, 24, 28
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    top = _scale([m.value for m in marks])
    step = plot_w / max(len(marks), 1)
    parts = [_svg_open(name, width, height), _y_axis(top, pad_left, pad_top, plot_h, width, kind)]
    for i, mark in enumerate(marks):
        bar_h = plot_h * (mark.value or 0) / top
        x, y = pad_left + i * step, pad_top + plot_h - bar_h
        parts.append(
            f'<rect class="bar {esc(mark.css)}" x="{x:.2f}" y="{y:.2f}" '
            f'width="{max(step * 0.8, 0.5):.2f}" height="{bar_h:.2f}"{data_attrs(mark.attrs)}>'
            f"<title>{esc(mark.title or f'{mark.label}: {shown(mark.value, kind)}')}</title></rect>"
        )
        if "peak" in mark.css.split():
            anchor = "end" if x > width / 2 else "start"
            parts.append(
                f'<text class="peak-label" x="{x:.2f}" y="{max(y - 6, 12):.2f}" '
                f'text-anchor="{anchor}">▼ peak {esc(mark.label)}: {esc(shown(mark.value))}</text>'
            )
    for i in _tick_indexes(len(marks), max(int(plot_w // 110), 1)):
        x = pad_left + i * step
        if x < width - 100:  # a label starting later would run off the chart
            parts.append(
                f'<text class="tick" x="{x:.2f}" y="{height - 6}">{esc(marks[i].label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bar_list(marks: Sequence[Mark], *, name: str, width: int = 620, kind: str = "") -> str:
    """Horizontal bars, one row per mark, label on the left, value on the right."""
    row_h, label_w, value_w = 22, 150, 90
    height = row_h * max(len(marks), 1) + 6
    plot_w = width - label_w - value_w
    top = _scale([max(m.value or 0, m.back or 0) for m in marks])
    parts = [_svg_open(name, width, height)]
    for i, mark in enumerate(marks):
        y = 3 + i * row_h
        if mark.back is not None:
            parts.append(
                f'<rect class="back" x="{label_w}" y="{y + 2}" height="{row_h - 6}" '
                f'width="{plot_w * mark.back / top:.2f}"/>'
            )
        parts.append(
            f'<text class="label" x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
            f"{esc(mark.label[:22])}</text>"
            f'<rect class="bar {esc(mark.css)}" x="{label_w}" y="{y + 2}" height="{row_h - 6}" '
            f'width="{plot_w * (mark.value or 0) / top:.2f}"{data_attrs(mark.attrs)}>'
            f"<title>{esc(mark.title or f'{mark.label}: {shown(mark.value, kind)}')}</title>"
            f'</rect><text class="value" x="{width - 4}" y="{y + 15}" text-anchor="end">'
            f"{esc(shown(mark.value, kind))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[Mark]],
    *,
    name: str,
    width: int = 620,
    height: int = 240,
) -> str:
    """One polyline per series over shared x labels, a circle (with data) at every point."""
    pad_left, pad_bottom, pad_top = 64, 24, 12
    plot_w, plot_h = width - pad_left - 12, height - pad_bottom - pad_top
    top = _scale([m.value for marks in series.values() for m in marks])
    step = plot_w / max(len(labels) - 1, 1)
    parts = [_svg_open(name, width, height), _y_axis(top, pad_left, pad_top, plot_h, width)]
    for n, (series_name, marks) in enumerate(series.items()):
        points = [
            (pad_left + i * step, pad_top + plot_h * (1 - (m.value or 0) / top), m)
            for i, m in enumerate(marks)
        ]
        path = " ".join(f"{x:.2f},{y:.2f}" for x, y, _ in points)
        parts.append(f'<polyline class="line s{n}" points="{path}"/>')
        parts += [
            f'<circle class="dot s{n}" cx="{x:.2f}" cy="{y:.2f}" r="3"{data_attrs(m.attrs)}>'
            f"<title>{esc(m.title or f'{series_name} {m.label}: {shown(m.value)}')}</title>"
            "</circle>"
            for x, y, m in points
        ]
    for i in _tick_indexes(len(labels), max(int(plot_w // 70), 1)):
        x = pad_left + i * step
        parts.append(
            f'<text class="tick" x="{x:.2f}" y="{height - 6}" text-anchor="{_anchor(x, width)}">'
            f"{esc(labels[i])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(name: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" data-chart="{esc(name)}" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{esc(name)}">'
    )


def _y_axis(top: float, left: int, pad_top: int, plot_h: int, width: int, kind: str = "") -> str:
    lines = []
    for fraction in (0.0, 0.5, 1.0):
        y = pad_top + plot_h * (1 - fraction)
        lines.append(
            f'<line class="grid" x1="{left}" x2="{width - 8}" y1="{y:.2f}" y2="{y:.2f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.2f}" text-anchor="end">'
            f"{esc(shown(top * fraction, kind))}</text>"
        )
    return "".join(lines)


def _anchor(x: float, width: int) -> str:
    """Text anchor that keeps a label near either edge inside the chart."""
    return "end" if x > width - 110 else "start" if x < 80 else "middle"


def _tick_indexes(count: int, most: int) -> list[int]:
    if count == 0:
        return []
    every = max(1, -(-count // most))
    return list(range(0, count, every))


def table(rows: Sequence[Mapping[str, Any]], name: str, columns: str) -> str:
    """An HTML table of ``columns`` ("key" or "key:heading", space separated); each row
    carries its raw values as data attributes. Columns ending in ``_rate`` show as %."""
    spec = [(c.split(":")[0], c.split(":")[-1].replace("_", " ")) for c in columns.split()]
    head = "".join(f"<th>{esc(heading)}</th>" for _, heading in spec)
    body = "".join(
        f"<tr{data_attrs({key.replace('_', '-'): row.get(key) for key, _ in spec})}>"
        + "".join(
            f"<td>{esc(shown(row.get(key), 'pct' if key.endswith('_rate') else ''))}</td>"
            for key, _ in spec
        )
        + "</tr>"
        for row in rows
    )
    return f'<table data-table="{esc(name)}"><thead><tr>{head}</tr></thead>{body}</table>'


def card(
    title: str, rows: Sequence[Any] | None, body: str, note: str = "", *, wide: bool = False
) -> str:
    """A titled card holding ``body`` (HTML), or an empty state when ``rows`` is None or
    empty; ``note`` is text shown under the body."""
    if rows is None:
        body, note = '<p class="empty">not cooked yet: run sluice cook</p>', ""
    elif not rows:
        body, note = '<p class="empty">no rows yet</p>', ""
    extra = f'<p class="note">{esc(note)}</p>' if note else ""
    return f'<div class="card{" wide" if wide else ""}"><h3>{esc(title)}</h3>{body}{extra}</div>'


def legend(*keys: tuple[str, str]) -> str:
    """A legend line: (css class of the swatch, text) pairs."""
    items = "".join(f'<span class="k {esc(css)}"></span>{esc(text)} ' for css, text in keys)
    return f'<p class="legend">{items}</p>'


CSS = """
body{margin:0;background:#f4f6f8;color:#1d2733;font-family:system-ui,-apple-system,'Segoe UI',
Roboto,sans-serif;font-size:14px}
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.8}code{font-family:ui-monospace,monospace}
section{padding:8px 24px}h2{font-size:18px;margin:12px 0 8px}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px}
.card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 3px #0002}
.card.wide{grid-column:1/-1}.card h3{margin:0 0 8px;font-size:15px}
.empty{color:#7a8591;font-style:italic}.note,.legend{color:#4a5560;margin:6px 0 0}
svg text{font-size:11px;fill:#4a5560}.bar{fill:#457b9d}.bar.day-peak{fill:#1d3557}
.bar.peak{fill:#e63946}.peak-label{fill:#e63946;font-weight:600;font-size:12px}
.back{fill:#a8dadc}line.grid{stroke:#e3e7eb}
.line{fill:none;stroke-width:2}.line.s0{stroke:#2a9d8f}.line.s1{stroke:#e76f51}
.dot.s0{fill:#2a9d8f}.dot.s1{fill:#e76f51}
.k{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}.k.s0{background:#2a9d8f}
.k.s1{background:#e76f51}.k.back{background:#a8dadc}.k.bar{background:#457b9d}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #e3e7eb}th{color:#4a5560;font-weight:600}
"""
