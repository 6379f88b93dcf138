"""The workshop-style Beam pipeline, kept as the benchmark's baseline: one element per row.

``ReadFromText(skip_header_lines=1)`` -> ``csv.reader`` on each line -> a dict per row typed
value by value in Python -> ``WriteToParquet``, on the same local runner as Sluice. It is
wrong on purpose where such pipelines are wrong: a quoted field holding a newline splits
its record across lines, so those records are dropped (counted as ``baseline_bad_lines``).
The benchmark counts its rows per second against Sluice's batch-per-element pipeline::

    python bench/per_row_baseline.py data/samples/kiva_loans.csv bench/out/baseline
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.parquetio import WriteToParquet
from apache_beam.metrics import Metrics
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from sluice.contracts import Column, Contract, get_contract, load_contracts
from sluice.schema import ARROW_TYPES
from sluice.settings import REPO_ROOT

LOG = logging.getLogger(__name__)
TRUE_WORDS = {"true", "t", "yes", "1"}


def value_parser(column: Column) -> Callable[[str], object]:
    """A per-value Python converter for one contract column."""
    if column.type == "integer":
        return lambda v: int(v) if v.lstrip("+-").isdigit() else int(float(v))
    if column.type == "float":
        return float
    if column.type == "boolean":
        return lambda v: v.strip().lower() in TRUE_WORDS
    if column.type == "date":
        return date.fromisoformat
    if column.type == "timestamp" and column.format != "iso8601":
        fmt = column.format or ""
        return lambda v: datetime.strptime(v, fmt)
    if column.type == "timestamp":
        return lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))
    return str


class TypeRowFn(beam.DoFn):
    """One CSV line's fields -> one dict, typed by the contract; rows that fail are counted."""

    def __init__(self, header: list[str], contract: Contract) -> None:
        self._header = header
        self._parsers = {c.name: value_parser(c) for c in contract.columns}
        self._bad = Metrics.counter("baseline", "baseline_bad_lines")

    def process(self, fields: list[str]) -> Iterator[dict[str, object]]:
        """Yield the typed row, or nothing when the line does not fit the header."""
        if len(fields) != len(self._header):
            self._bad.inc()
            return
        row: dict[str, object] = {}
        try:
            for name, text in zip(self._header, fields, strict=True):
                parse = self._parsers.get(name)
                if parse is not None:
                    row[name] = parse(text) if text != "" else None
        except ValueError:
            self._bad.inc()
            return
        yield row


def read_header(input_path: Path) -> list[str]:
    """The header's field names (gzip by name, as ReadFromText decides)."""
    if input_path.suffix == ".gz":
        import gzip

        with gzip.open(input_path, "rt", encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle))
    with input_path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


def run_baseline(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    dataset: str = "kiva_loans",
    contracts_dir: Path = REPO_ROOT / "contracts",
) -> int:
    """Run the per-row pipeline on one file; the number of rows it wrote to Parquet."""
    input_path, out_dir = Path(input_path), Path(out_dir)
    contract = get_contract(load_contracts(contracts_dir), dataset)
    header = [name.strip() for name in read_header(input_path)]
    schema = pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.type]) for c in contract.columns if c.name in header]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline = beam.Pipeline(runner=FnApiRunner())
    _ = (
        pipeline
        | "Read lines" >> beam.io.ReadFromText(str(input_path), skip_header_lines=1)
        | "Split fields" >> beam.Map(lambda line: next(csv.reader([line])))
        | "Type row" >> beam.ParDo(TypeRowFn(header, contract))
        | "Write Parquet"
        >> WriteToParquet(str(out_dir / "part"), schema, file_name_suffix=".parquet")
    )
    pipeline.run().wait_until_finish()
    return sum(pq.ParquetFile(path).metadata.num_rows for path in out_dir.glob("part*.parquet"))


def main(argv: list[str] | None = None) -> int:
    """Command line: run the baseline on one file and log its rows per second."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("input")
    parser.add_argument("out_dir")
    parser.add_argument("--dataset", default="kiva_loans")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run_baseline(args.input, args.out_dir, dataset=args.dataset)
    seconds = time.perf_counter() - started
    LOG.info("%d rows in %.1f s: %.0f rows/s", rows, seconds, rows / seconds)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
