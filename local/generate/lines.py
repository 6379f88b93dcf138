"""Line datasets (access logs, JSON lines): one record a line, no header, and real logs' cases.

A line dataset renders each row as one line. ``--dirty D`` replaces that share of lines with
the cases real files hold, taken in turn so that every case appears once the dirty lines
outnumber the cases: some are still rows for the pipeline (a TLS handshake sent to the HTTP
port), some must be dead letters (a garbage line). When the dataset cuts its last line, the
file's last line is one of the dirty lines: cut mid-write, without its newline, as a log
copied while its server writes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Generic, TypeVar

import numpy as np

from local.generate.dirty import STREAM_DIRTY, Written, dirty_count

Row = TypeVar("Row")
"""What a dataset renders a line from: a tuple of logged fields, a JSON object..."""


@dataclass(frozen=True)
class LineCase(Generic[Row]):
    """One case real files hold: the line it makes of a clean row, and its fate."""

    name: str
    """What the line is, as ``GeneratedFile.dirty_reasons`` lists it."""
    dead: bool
    """Whether the pipeline must dead-letter it (False: it stays a row)."""
    make: Callable[[Row, np.random.Generator], str]


@dataclass(frozen=True)
class LineDataset(Generic[Row]):
    """How one line dataset's lines are made."""

    iter_row_blocks: Callable[[int, int], Iterator[tuple[int, list[Row]]]]
    """(rows, seed) -> (rows done so far, the block's rows) per block."""
    render: Callable[[Row], str]
    """A clean row's line, without its newline."""
    cases: tuple[LineCase[Row], ...]
    cut_last_line: LineCase[Row] | None = None


def cut_mid_write(render: Callable[[Row], str]) -> LineCase[Row]:
    """The case of a line cut short, somewhere past its first third and before its end."""

    def make(row: Row, rng: np.random.Generator) -> str:
        line = render(row)
        return line[: int(rng.integers(len(line) // 3, len(line) - 8))]

    return LineCase("line cut mid-write (the file's last, without newline)", True, make)


def write_lines(
    spec: LineDataset[Any],
    rows: int,
    seed: int,
    dirty: float,
    sink: BinaryIO,
    progress: Callable[[int], None] | None,
) -> Written:
    """Write ``rows`` lines of ``spec`` to ``sink``, ``dirty`` of them replaced by cases."""
    budget = dirty_count(dirty, rows)
    cut_case = spec.cut_last_line if budget else None
    cut = 1 if cut_case is not None else 0
    spread = budget - cut
    written = Written(0, [], [], [])
    for index, (done, block) in enumerate(spec.iter_row_blocks(rows, seed)):
        total = written.rows + len(block)
        last = total == rows
        # Exact running total: after any block, spread cases so far ~ spread * its share.
        wanted = _share(spread, total, rows) - _share(spread, written.rows, rows)
        rng = np.random.default_rng([seed, STREAM_DIRTY, index])
        eligible = len(block) - (cut if last else 0)
        chosen = set(rng.choice(eligible, size=wanted, replace=False).tolist()) if wanted else set()
        lines = []
        for position, row in enumerate(block):
            if position in chosen:
                case = spec.cases[len(written.lines) % len(spec.cases)]
                lines.append(case.make(row, rng))
                written.add(written.rows + position + 1, case.name, case.dead)
            elif cut_case is not None and last and position == len(block) - 1:
                lines.append(cut_case.make(row, rng))
                written.add(total, cut_case.name, True)
            else:
                lines.append(spec.render(row))
        text = "\n".join(lines)
        if not (cut and last):
            text += "\n"
        sink.write(text.encode("utf-8"))
        written.rows = total
        if progress is not None:
            progress(done)
    return written


def _share(count: int, done: int, rows: int) -> int:
    """Of ``count`` dirty lines over ``rows``, how many fall within the first ``done``."""
    return math.floor(count * done / rows + 0.5) if rows else 0
