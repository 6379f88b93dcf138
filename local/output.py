"""How the command line shows results: readable tables on a terminal, or JSON lines of data."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from sluice.finite_json import finite_json

console = Console()
errors = Console(stderr=True)


def print_json(data: Any) -> None:
    """Write ``data`` as one JSON document on stdout: always valid JSON, so a value with no
    finite number (NaN, Infinity: JSON has neither) is written as null."""
    sys.stdout.write(finite_json(data) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return f"{int(value):,}"  # a wide integer sum (BIGNUMERIC, DuckDB DECIMAL)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def print_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> None:
    """Print rows (dicts with the same keys) as a table; an empty result says so."""
    if not rows:
        console.print(f"[dim]{title + ': ' if title else ''}(no rows)[/dim]")
        return
    table = Table(title=title, title_justify="left", title_style="bold")
    for key, value in rows[0].items():
        numeric = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        table.add_column(key, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    console.print(table)


def print_error(message: str) -> None:
    """The message on stderr after ``sluice: error:``, never wrapped (a pipe or log file gets
    it as written, not cut at 80 columns), no traceback."""
    errors.print(
        f"[bold red]sluice: error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True
    )


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar; the yielded callable takes the number of items done so far."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)
