"""The same pipeline on Beam's DaskRunner loads what the local runner loads, parsing once.

A generated kiva_loans file with dirty rows and multi-line descriptions, cut into several
ranges (a small ``SLUICE_SPLIT_BYTES``), runs on the local runner and on the DaskRunner
against a ``distributed.LocalCluster`` of two worker processes, each into its own DuckDB
file; the tables and the ingestion records are compared whole. Every parse appends the
range it parsed to a file, from whichever process it runs in: each range is parsed once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pytest

import beam.transforms
from beam.pipeline import run
from beam.ranges import InputFile, plan_ranges
from beam.transforms import ParseCsvFn
from local.generate import generate
from local.ingest import local_source
from sluice.records.splits import ByteRange
from sluice.schema import IngestionRecord
from sluice.settings import load_settings

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
SPLIT_BYTES = 48 * 1024
STARTED_AT = "2026-11-24T10:00:00+00:00"
ROWS_SQL = "SELECT * EXCLUDE (_ingested_at) FROM sluice.kiva_loans ORDER BY _source_line"
DEAD_SQL = "SELECT * EXCLUDE (ingested_at) FROM sluice.kiva_loans_dead_letter ORDER BY line"


class CountingParseCsvFn(ParseCsvFn):
    """``ParseCsvFn`` that appends the start of every range it parses to ``parses_file``."""

    parses_file: str = ""

    def process(self, byte_range: ByteRange) -> Iterator:
        with open(self.parses_file, "a", encoding="utf-8") as out:
            out.write(f"{byte_range.start}\n")
        yield from super().process(byte_range)


@dataclass(frozen=True)
class Loaded:
    rows: list[tuple]
    dead: list[tuple]
    record: IngestionRecord
    parsed_starts: list[int]


@pytest.fixture(scope="module")
def loans_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dask") / "loans.csv"
    generate("kiva_loans", 1500, path, seed=11, dirty=0.03)
    return path


@pytest.fixture(scope="module")
def cluster() -> Iterator:
    """Two worker processes, one thread each: every range crosses a process boundary."""
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as local_cluster:
        yield local_cluster


def load(path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, *runner_args: str) -> Loaded:
    """Run the pipeline on ``path`` into ``workdir``'s own warehouse; read back the tables."""
    workdir.mkdir()
    parses = workdir / "parses.txt"
    parses.touch()

    def counting_parse(*args: object, **kwargs: object) -> CountingParseCsvFn:
        fn = CountingParseCsvFn(*args, **kwargs)
        fn.parses_file = str(parses)  # an instance attribute: pickled with the DoFn
        return fn

    monkeypatch.setattr(beam.transforms, "ParseCsvFn", counting_parse)
    monkeypatch.setenv("SLUICE_HOME", str(workdir))
    monkeypatch.setenv("SLUICE_SPLIT_BYTES", str(SPLIT_BYTES))
    argv = [
        f"--input={path}",
        "--dataset=kiva_loans",
        f"--started_at={STARTED_AT}",
        "--job_name=dask-equivalence",
        *runner_args,
    ]
    record = run(argv)
    assert record is not None
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        rows, dead = con.execute(ROWS_SQL).fetchall(), con.execute(DEAD_SQL).fetchall()
    starts = sorted(int(line) for line in parses.read_text().split())
    return Loaded(rows, dead, replace(record, finished_at=None), starts)


def test_dask_runner_loads_what_the_local_runner_loads(
    loans_file: Path, cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_SPLIT_BYTES", str(SPLIT_BYTES))
    ranges = plan_ranges(InputFile(str(loans_file), local_source(loans_file)), load_settings())

    local = load(loans_file, tmp_path / "local", monkeypatch)
    on_dask = load(
        loans_file,
        tmp_path / "dask",
        monkeypatch,
        f"--runner={DASK_RUNNER}",
        f"--dask_client_address={cluster.scheduler_address}",
    )
    distributed.default_client().close()  # the runner's own client, left open by Beam

    assert len(ranges) >= 10
    assert on_dask.record.status == "loaded" and on_dask.record.rows_dead > 10
    assert on_dask.rows == local.rows and on_dask.dead == local.dead
    assert on_dask.record == local.record
    # Every range parsed exactly once on each runner: no branch or side input re-parsed it.
    assert on_dask.parsed_starts == local.parsed_starts == [r.start for r in ranges]
