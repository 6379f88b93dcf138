"""A file parsed in ranges loads exactly what a serial parse loads: rows, lines, dead letters;
so does ``sluice ingest``, which parses the chunks validation reads on worker threads.

The file is a generated kiva_loans export with dirty rows and multi-line quoted descriptions;
the split interval is small, so split targets fall inside quoted newlines (checked, not
assumed). Each run loads its own DuckDB file; the tables are compared whole.
"""

from __future__ import annotations

import argparse
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest

from beam.options import add_pipeline_arguments, resolve_params
from beam.pipeline import run
from beam.ranges import InputFile, plan_ranges
from local.generate import generate
from local.ingest import ingest_file, local_source
from sluice.contracts import load_contracts
from sluice.ingest.validation import validate_stream
from sluice.records.formats.csv import FORMAT as CSV
from sluice.records.splits import WHOLE_FILE, SplitIndex, find_split_points
from sluice.schema import IngestionRecord
from sluice.settings import load_settings

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

SPLIT_BYTES = 48 * 1024
SCAN = {"chunk_bytes": 64 * 1024, "max_record_bytes": 10**6, "record_format": CSV}
STARTED_AT = "2026-11-24T10:00:00+00:00"
# Lineage of the source aside, so a gs:// copy of the file compares too.
ROWS_SQL = (
    "SELECT * EXCLUDE (_ingested_at, _source_uri, _source_generation)"
    " FROM sluice.kiva_loans ORDER BY _source_line"
)
DEAD_SQL = "SELECT line, raw_text, reason FROM sluice.kiva_loans_dead_letter ORDER BY line"


@dataclass(frozen=True)
class Loaded:
    rows: list[tuple]
    dead: list[tuple]
    log: tuple


@pytest.fixture(scope="module")
def loans_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("split") / "loans.csv"
    generate("kiva_loans", 1500, path, seed=11, dirty=0.03)
    return path


def load(
    path: Path | str,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
    split_bytes: int = SPLIT_BYTES,
    workers: int = 1,
) -> Loaded:
    """Run the pipeline on ``path`` into ``workdir``'s own warehouse; read back the tables."""
    monkeypatch.setenv("SLUICE_HOME", str(workdir))
    monkeypatch.setenv("SLUICE_SPLIT_BYTES", str(split_bytes))
    monkeypatch.setenv("SLUICE_PIPELINE_WORKERS", str(workers))
    record = run([f"--input={path}", "--dataset=kiva_loans", f"--started_at={STARTED_AT}", *extra])
    return read_back(workdir, record)


def read_back(workdir: Path, record: IngestionRecord | None) -> Loaded:
    """The tables ``workdir``'s warehouse holds after the load ``record`` says it did."""
    assert record is not None and record.status == "loaded", record
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        rows, dead = con.execute(ROWS_SQL).fetchall(), con.execute(DEAD_SQL).fetchall()
    return Loaded(rows, dead, (record.rows_in, record.rows_loaded, record.rows_dead))


@pytest.fixture(scope="module")
def serial(loans_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    with pytest.MonkeyPatch.context() as monkeypatch:
        home = tmp_path_factory.mktemp("serial")
        return load(loans_file, home, monkeypatch, split_bytes=10**9)


def test_split_targets_fall_inside_quoted_newlines(loans_file: Path) -> None:
    data = loans_file.read_bytes()
    points, _ = find_split_points(io.BytesIO(data), SPLIT_BYTES, **SCAN)

    # The newline a naive splitter would cut at, right after each target.
    naive = [data.index(b"\n", target) + 1 for target in range(SPLIT_BYTES, len(data), SPLIT_BYTES)]

    assert len(points) >= 10
    assert set(naive) - {p.offset for p in points}, "no target fell inside a quoted newline"


def test_serial_run_has_dead_letters_and_multiline_rows(serial: Loaded) -> None:
    rows_in, loaded, dead = serial.log
    assert dead > 10 and loaded > 1000 and rows_in == loaded + dead
    assert any("\n" in str(value) for row in serial.rows for value in row)


def test_ranges_from_the_parity_pass_load_what_a_serial_parse_loads(
    loans_file: Path, serial: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split = load(loans_file, tmp_path, monkeypatch)

    assert split == serial


def test_ranges_from_validation_load_what_a_serial_parse_loads(
    loans_file: Path, serial: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(split_bytes=SPLIT_BYTES, chunk_bytes=16 * 1024)
    with loans_file.open("rb") as raw:
        report = validate_stream(
            raw, load_contracts(settings.contracts_dir)["kiva_loans"], settings
        )
    index = report.split_index(local_source(loans_file))
    assert index is not None and len(index.points) >= 10
    index_path = tmp_path / "split-index.json"
    index_path.write_text(index.to_json())

    split = load(loans_file, tmp_path / "home", monkeypatch, f"--split_index={index_path}")

    assert split == serial


def test_ranges_on_two_worker_threads_load_what_a_serial_parse_loads(
    loans_file: Path, serial: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split = load(loans_file, tmp_path, monkeypatch, workers=2)

    assert split == serial


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_sluice_ingest_on_two_worker_threads_loads_what_a_serial_parse_loads(
    loans_file: Path, serial: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packed: bool
) -> None:
    path = loans_file
    if packed:
        path = tmp_path / "loans.csv.gz"
        path.write_bytes(gzip.compress(loans_file.read_bytes()))
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path))
    monkeypatch.setenv("SLUICE_CHUNK_BYTES", str(16 * 1024))  # many chunks for the workers
    monkeypatch.setenv("SLUICE_PIPELINE_WORKERS", "2")
    settings = load_settings()

    outcome = ingest_file(path, load_contracts(settings.contracts_dir)["kiva_loans"], settings)

    assert read_back(tmp_path, outcome.record) == serial
    assert not list((tmp_path / "staging").rglob("*.parquet"))


def plan(path: Path, *extra: str) -> list:
    args = add_pipeline_arguments(argparse.ArgumentParser()).parse_args(
        [f"--input={path}", "--dataset=kiva_loans", *extra]
    )
    params = resolve_params(args)
    return plan_ranges(InputFile(params.input, params.source, params.split_index), params.settings)


def test_plan_ranges_ignores_an_index_of_another_generation(
    loans_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_SPLIT_BYTES", str(SPLIT_BYTES))
    source = local_source(loans_file)
    stale = SplitIndex(source.uri, source.generation - 1, 10**6, ())
    index_path = tmp_path / "stale.json"
    index_path.write_text(stale.to_json())

    ranges = plan(loans_file, f"--split_index={index_path}")

    expected, _ = find_split_points(loans_file.open("rb"), SPLIT_BYTES, **SCAN)
    assert [r.start for r in ranges[1:]] == [p.offset for p in expected]


def test_plan_ranges_reads_a_gzip_file_as_one_range(
    loans_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_SPLIT_BYTES", str(SPLIT_BYTES))
    packed = tmp_path / "loans.csv.gz"
    packed.write_bytes(gzip.compress(loans_file.read_bytes()))

    assert plan(packed) == [WHOLE_FILE]


def test_ranges_of_a_gcs_object_load_what_a_serial_parse_loads(
    loans_file: Path,
    serial: Loaded,
    gcs: GcsBuckets,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = gcs.landing.blob("incoming/kiva_loans/loans.csv")
    blob.upload_from_filename(str(loans_file))
    uri = f"gs://{gcs.landing.name}/{blob.name}"
    points, size = find_split_points(loans_file.open("rb"), SPLIT_BYTES, **SCAN)
    index = gcs.pipeline.blob("claims/0123.splits.json")
    index.upload_from_string(SplitIndex(uri, blob.generation, size, points).to_json())

    split = load(
        uri,
        tmp_path,
        monkeypatch,
        f"--source_generation={blob.generation}",
        f"--split_index=gs://{gcs.pipeline.name}/{index.name}",
    )

    assert split == serial
