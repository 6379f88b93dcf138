"""What the dashboard draws, read from the ``-- dashboard:`` header of each ``sql/*.sql`` file.

A summary that should appear on the page carries, in its leading comment, a YAML block that
starts at the line ``-- dashboard:`` and runs while lines start with ``--``: one chart (a
mapping) or several (a list). The chart reads the table its file builds; so the page's code
names no dataset and no table, and a new dataset adds its contract, its SQL and these lines.
Fields (sql/README.md shows each in use):

- ``section``, ``position``: the page heading the card sits under, and where (cards sort by
  position; a section appears where its first card does). ``title``, ``name`` (the chart's
  ``data-chart``/``data-table``), ``wide`` (spans the page), ``width`` (SVG units).
- ``kind``: ``columns`` (vertical bars), ``bars`` (a horizontal top-N list), ``line`` (one
  line per ``series``), ``table``, or ``alerts`` (the open alerts; no table of its own).
- ``x`` with ``x_format`` (``hour``, ``day``, ``month``), ``y`` with ``y_format`` (``pct``),
  ``label`` (columns tried in turn for the bar label, else "unknown"), ``back`` (a value
  drawn behind the bar), ``series`` ({name, column}), ``columns`` (table columns, each
  ``column`` or ``{column: heading}``), ``data`` ({attribute: column} written as ``data-*``
  on each mark), ``tooltip`` (``{column}`` or ``{column:pct}`` fields; ``{label}``),
  ``legend`` (texts for the bar and back swatches, or for each series).
- ``order`` (``column [DESC], ...``), ``limit``, ``not_null`` (columns whose NULL rows are
  left out), and ``peaks`` ({table, x, y, note}): the bars whose x is one of that cooked
  table's x are darker, its top row by y (earliest x on a tie) is labelled the peak, and
  ``note`` may use ``{peak_x}`` and ``{peak_y}``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice.cook.summaries import summary_files, table_name
from sluice.errors import ConfigError

KINDS = ("columns", "bars", "line", "table", "alerts")
_NEEDS = {
    "columns": ("x", "y"),
    "bars": ("y",),
    "line": ("x", "series"),
    "table": ("columns",),
    "alerts": (),
}
"""The fields each kind cannot draw without."""
_HEADER = "-- dashboard:"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9-]*$")
_ORDER = re.compile(r"^[a-z][a-z0-9_]*( (ASC|DESC))?$", re.I)
_FIELDS = {
    "section", "position", "title", "name", "wide", "width", "kind", "x", "x_format", "y",
    "y_format", "label", "back", "series", "columns", "data", "tooltip", "legend", "order",
    "limit", "not_null", "peaks",
}  # fmt: skip


@dataclass(frozen=True)
class Peaks:
    """Marks whose x is in ``table``'s ``x`` column are day peaks; the top ``y`` is the peak."""

    table: str
    x: str
    y: str
    note: str = ""

    def sql(self) -> str:
        """The query of the peaks table."""
        return f"SELECT {self.x}, {self.y} FROM {{cooked_dataset}}.{self.table}"


@dataclass(frozen=True)
class ChartSpec:
    """One card of the page, as declared beside the SQL of the cooked table it reads."""

    source: Path
    table: str
    section: str
    position: int
    title: str
    kind: str
    name: str = ""
    wide: bool = False
    width: int | None = None
    x: str = ""
    x_format: str = ""
    y: str = ""
    y_format: str = ""
    label: tuple[str, ...] = ()
    back: str = ""
    series: tuple[tuple[str, str], ...] = ()
    """(name, column) of each line."""
    columns: tuple[tuple[str, str], ...] = ()
    """(column, heading) of each table column."""
    data: dict[str, str] = field(default_factory=dict)
    tooltip: str = ""
    legend: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    limit: int | None = None
    not_null: tuple[str, ...] = ()
    peaks: Peaks | None = None

    def selected(self) -> list[str]:
        """The columns the chart reads, each once, in a stable order."""
        wanted = [self.x, *self.label, self.y, self.back]
        wanted += [column for _, column in self.series] + [c for c, _ in self.columns]
        wanted += list(self.data.values()) + tooltip_fields(self.tooltip)
        return [c for c in dict.fromkeys(wanted) if c and c != "label"]

    def sql(self) -> str:
        """The one query of the cooked table the chart draws."""
        sql = f"SELECT {', '.join(self.selected())} FROM {{cooked_dataset}}.{self.table}"
        if self.not_null:
            sql += " WHERE " + " AND ".join(f"{c} IS NOT NULL" for c in self.not_null)
        if self.order:
            sql += f" ORDER BY {', '.join(self.order)}"
        return sql + (f" LIMIT {self.limit}" if self.limit is not None else "")


def tooltip_fields(template: str) -> list[str]:
    """The column names a tooltip template fills in."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def chart_header(path: Path) -> list[dict[str, Any]]:
    """The ``-- dashboard:`` YAML block of one SQL file as a list of charts (maybe empty)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.rstrip() == _HEADER), None)
    if start is None:
        return []
    block = ["dashboard:"]
    for line in lines[start + 1 :]:
        if not line.startswith("--"):
            break
        block.append(line[3:] if line.startswith("-- ") else line[2:])
    try:
        found = yaml.safe_load("\n".join(block))["dashboard"]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: expected a YAML '-- dashboard:' header, found: {exc}") from exc
    charts = found if isinstance(found, list) else [found]
    if not all(isinstance(chart, dict) for chart in charts):
        raise ConfigError(f"{path}: expected each dashboard chart to be a mapping of fields")
    return charts


def chart_spec(path: Path, table: str, fields: dict[str, Any], built: set[str]) -> ChartSpec:
    """One chart's fields checked and typed; ConfigError naming the file when wrong."""
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise ConfigError(f"{path}: dashboard: unknown field(s) {', '.join(unknown)}")
    missing = [f for f in ("section", "position", "title", "kind") if f not in fields]
    if missing:
        raise ConfigError(f"{path}: dashboard: expected field(s) {', '.join(missing)}")
    if fields["kind"] not in KINDS:
        raise ConfigError(
            f"{path}: dashboard: expected kind one of {', '.join(KINDS)}, found {fields['kind']!r}"
        )
    needed = [f for f in _NEEDS[fields["kind"]] if not fields.get(f)]
    if needed:
        raise ConfigError(
            f"{path}: dashboard: expected field(s) {', '.join(needed)} for kind {fields['kind']}"
        )
    peaks = None
    if "peaks" in fields:
        try:
            peaks = Peaks(**fields["peaks"])
        except TypeError as exc:
            raise ConfigError(
                f"{path}: dashboard: expected peaks {{table, x, y, note}}, found {fields['peaks']}"
            ) from exc
        if peaks.table not in built:
            raise ConfigError(f"{path}: dashboard: peaks read {peaks.table!r}, no file builds it")
    columns = [c if isinstance(c, dict) else {c: c} for c in fields.get("columns", [])]
    label = fields.get("label", [])
    spec = ChartSpec(
        source=path,
        table=table,
        section=str(fields["section"]),
        position=int(fields["position"]),
        title=str(fields["title"]),
        kind=fields["kind"],
        name=str(fields.get("name", table)),
        wide=bool(fields.get("wide", False)),
        width=fields.get("width"),
        x=fields.get("x", ""),
        x_format=fields.get("x_format", ""),
        y=fields.get("y", ""),
        y_format=fields.get("y_format", ""),
        label=tuple([label] if isinstance(label, str) else label),
        back=fields.get("back", ""),
        series=tuple((s["name"], s["column"]) for s in fields.get("series", [])),
        columns=tuple((k, str(v)) for c in columns for k, v in c.items()),
        data=dict(fields.get("data", {})),
        tooltip=str(fields.get("tooltip", "")),
        legend=tuple(fields.get("legend", [])),
        order=tuple(o.strip() for o in str(fields.get("order", "")).split(",") if o.strip()),
        limit=fields.get("limit"),
        not_null=tuple(fields.get("not_null", [])),
        peaks=peaks,
    )
    names = spec.selected() + list(spec.not_null) + ([peaks.x, peaks.y] if peaks else [])
    bad = [n for n in names if not _NAME.match(n)] + [o for o in spec.order if not _ORDER.match(o)]
    bad += [a for a in spec.data if not _ATTRIBUTE.match(a)]
    if bad:
        raise ConfigError(f"{path}: dashboard: expected plain column names, found {bad}")
    return spec


def chart_specs(sql_dir: Path) -> list[ChartSpec]:
    """Every chart declared in ``sql_dir``'s summary files, in page order."""
    paths = summary_files(sql_dir)
    built = {table_name(path) for path in paths}
    specs = [
        chart_spec(path, table_name(path), fields, built)
        for path in paths
        for fields in chart_header(path)
    ]
    return sorted(specs, key=lambda spec: (spec.position, spec.source.name))
