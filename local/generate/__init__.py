"""The data generator: realistic, nasty, deterministic files of any size.

``generate("kiva_loans", 500_000, Path("loans.csv.gz"), seed=1, dirty=0.01)`` writes the
same bytes for the same (dataset, rows, seed, dirty) on any machine with the pinned numpy:
every random draw comes from a numpy Generator keyed by (seed, stream, block), nothing reads
the clock, and gzip output carries no timestamp or file name. Files stream out block by
block, so memory stays bounded whatever the row count. Dirty rows break the contract in
one way each (see ``local.generate.dirty``); the clean rows are the same whatever ``dirty``
is, and the result lists the physical line where each dirty record starts. The CSV datasets
(``DATASETS``) have a header; the line datasets (``LINE_DATASETS``: access logs and JSON
lines, see ``local.generate.lines``) have none, and their dirty lines are real logs' cases,
some of which the pipeline keeps as rows (``GeneratedFile.dead_lines`` says which do not).
"""

from __future__ import annotations

import csv
import gzip as gzip_module
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from local.generate import access_logs, http_requests, kiva_lenders, kiva_loans, server_logs
from local.generate.dirty import STREAM_DIRTY, DirtyTargets, RowBreaker, Written, dirty_count
from local.generate.lines import LineDataset, write_lines
from sluice.errors import ConfigError

log = logging.getLogger(__name__)

GZIP_LEVEL = 6  # the gzip tool's default: level 9 costs twice the time for ~3% less


@dataclass(frozen=True)
class DatasetGenerator:
    """How one dataset's rows are made."""

    header: tuple[str, ...]
    dirty_targets: DirtyTargets
    iter_row_blocks: Callable[[int, int], Iterator[tuple[int, list[tuple[str, ...]]]]]
    """(rows, seed) -> (requested rows done so far, the block's rows) per block."""


DATASETS: dict[str, DatasetGenerator] = {
    module.DATASET: DatasetGenerator(module.HEADER, module.DIRTY_TARGETS, module.iter_row_blocks)
    for module in (kiva_loans, kiva_lenders, server_logs)
}
LINE_DATASETS: dict[str, LineDataset[Any]] = {
    module.DATASET: module.LINES for module in (access_logs, http_requests)
}


@dataclass(frozen=True)
class GeneratedFile:
    """What ``generate`` wrote."""

    path: Path
    dataset: str
    rows: int
    """Data records written (the header excluded)."""
    bytes: int
    """Size of the file on disk (compressed size when gzipped)."""
    dirty_rows: int
    dirty_lines: tuple[int, ...]
    """1-based physical line where each dirty record starts (a CSV's header is line 1)."""
    dirty_reasons: tuple[str, ...]
    """What was broken in each dirty record, in the order of ``dirty_lines``."""
    dead_lines: tuple[int, ...]
    """The dirty lines the pipeline must dead-letter (all of them in a CSV)."""


def generate(
    dataset: str,
    rows: int,
    out: Path,
    *,
    seed: int = 0,
    gzip: bool = False,
    dirty: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> GeneratedFile:
    """Write ``rows`` rows of ``dataset`` to ``out`` (gzip when asked or named ``.gz``).

    For ``kiva_lenders``, ``rows`` counts loans, as for ``kiva_loans`` with the same seed:
    the file lists those of them that have lenders (about 97.7%). ``progress`` receives the
    number of requested rows done so far after each block.
    """
    if dataset not in DATASETS and dataset not in LINE_DATASETS:
        known = ", ".join(sorted([*DATASETS, *LINE_DATASETS]))
        raise ConfigError(f"expected a dataset among {known}, found {dataset!r}")
    if rows < 0:
        raise ConfigError(f"--rows: expected a count >= 0, found {rows}")
    if seed < 0:
        raise ConfigError(f"--seed: expected an integer >= 0, found {seed}")
    if not 0.0 <= dirty <= 1.0:
        raise ConfigError(f"--dirty: expected a fraction between 0 and 1, found {dirty}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compress = gzip or out.name.endswith(".gz")
    with out.open("wb") as raw:
        if compress:
            # No mtime and no file name in the gzip header, so the bytes depend on the data only.
            with gzip_module.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL
            ) as packed:
                written = _write(dataset, rows, seed, dirty, packed, progress)
        else:
            written = _write(dataset, rows, seed, dirty, raw, progress)
    result = GeneratedFile(out, dataset, written.rows, out.stat().st_size, len(written.lines),
                           tuple(written.lines), tuple(written.reasons),
                           tuple(written.dead_lines))  # fmt: skip
    log.info("generated %s: %d rows, %d dirty, %d bytes", out, result.rows, result.dirty_rows,
             result.bytes)  # fmt: skip
    return result


def _write(
    dataset: str,
    rows: int,
    seed: int,
    dirty: float,
    sink: BinaryIO,
    progress: Callable[[int], None] | None,
) -> Written:
    if dataset in LINE_DATASETS:
        return write_lines(LINE_DATASETS[dataset], rows, seed, dirty, sink, progress)
    return _write_rows(DATASETS[dataset], rows, seed, dirty, sink, progress)


def _write_rows(
    spec: DatasetGenerator,
    rows: int,
    seed: int,
    dirty: float,
    sink: BinaryIO,
    progress: Callable[[int], None] | None,
) -> Written:
    csv_sink = _CsvSink(sink)
    breaker = RowBreaker(spec.header, spec.dirty_targets)
    written = Written(0, [], [], [])
    line = csv_sink.write([spec.header])
    for index, (done, block) in enumerate(spec.iter_row_blocks(rows, seed)):
        # Exact running total: after any block, dirty rows so far = dirty_count(rows so far).
        total = written.rows + len(block)
        wanted = dirty_count(dirty, total) - dirty_count(dirty, written.rows)
        rng = np.random.default_rng([seed, STREAM_DIRTY, index])
        chosen = np.sort(rng.choice(len(block), size=wanted, replace=False)) if wanted else ()
        start = 0
        for position in (int(p) for p in chosen):
            line += csv_sink.write(block[start:position])
            broken, reason = breaker.break_row(block[position], rng)
            written.add(line + 1, reason, dead=True)
            line += csv_sink.write([broken])
            start = position + 1
        line += csv_sink.write(block[start:])
        written.rows = total
        if progress is not None:
            progress(done)
    return written


class _CsvSink:
    """Python's csv writer (minimal quoting, LF line ends) feeding a binary stream."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")

    def write(self, rows: Sequence[Sequence[str]]) -> int:
        """Write ``rows``; return the physical lines they took (quoted fields hold newlines)."""
        if not rows:
            return 0
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerows(rows)
        text = self.buffer.getvalue()
        self.sink.write(text.encode("utf-8"))
        return text.count("\n")
