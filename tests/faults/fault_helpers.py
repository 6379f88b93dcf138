"""Helpers for the fault tests: sample files, staged files, in-process runs, claims, reads.

Everything here drives the real code: ``run_in_process`` hands the launcher's own parameters
(``launch_parameters``) to ``beam.pipeline.run``, and ``stage`` writes staged Parquet with the
pipeline's own parser and staging DoFn, so a test can break a staged file before the load.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from beam.pipeline import parse_arguments, run
from beam.transforms import StageParquetFn
from sluice.contracts import Contract
from sluice.ingest.claims import Claim, event_key, read_claim
from sluice.ingest.launch import LaunchRequest, launch_parameters
from sluice.records.parse import iter_parsed_batches
from sluice.schema import IngestionRecord, SourceRef
from sluice.settings import Settings, load_settings
from sluice.warehouse import connected_warehouse

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

DATASET = "kiva_lenders"
NAME = "incoming/kiva_lenders/faults.csv"
URI = f"gs://landing/{NAME}"
TABLES = {"rows": DATASET, "dead": f"{DATASET}_dead_letter", "log": "ingestion_log"}
Staged = list[tuple[str, int]]


def lenders_csv(ids: range, *, bad: int = 0) -> bytes:
    """A kiva_lenders file: one row per loan id, then ``bad`` rows whose loan_id is no integer."""
    rows = [f'{i},"lender_{i}a, lender_{i}b"' for i in ids]
    rows += [f"x{i},nobody" for i in range(bad)]
    return ("loan_id,lenders\n" + "\n".join(rows) + "\n").encode()


def local_request(uri: str, generation: int, path: Path) -> LaunchRequest:
    """The launch request for generation ``generation`` of ``uri``, read from a local copy."""
    request = LaunchRequest.for_object(DATASET, SourceRef(uri, generation))
    return replace(request, input_uri=str(path))


def job_name(blob: Blob) -> str:
    """The pipeline job name on_upload derives for ``blob``'s generation."""
    source = SourceRef(f"gs://{blob.bucket.name}/{blob.name}", blob.generation)
    return LaunchRequest.for_object(DATASET, source).job_name


def claim_of(gcs: GcsBuckets, blob: Blob) -> Claim | None:
    """The stored claim of ``blob``'s finalize event."""
    key = event_key(blob.bucket.name, blob.name, blob.generation)
    return read_claim(gcs.client, load_settings(), key)


def pipeline_argv(request: LaunchRequest, settings: Settings) -> list[str]:
    """The command line the local launcher gives ``python -m beam.pipeline``."""
    params = launch_parameters(request, settings, launcher="local")
    return [f"--{name}={value}" for name, value in params.items()]


def run_in_process(request: LaunchRequest, settings: Settings) -> IngestionRecord:
    """Run the real pipeline here, on exactly the launcher's parameters; its log record."""
    record = run(pipeline_argv(request, settings))
    assert record is not None
    return record


def staging_dir(request: LaunchRequest, settings: Settings) -> Path:
    """The staging directory the pipeline run of ``request`` uses."""
    params, _ = parse_arguments(pipeline_argv(request, settings))
    return Path(params.staging_dir)


def stage(contract: Contract, request: LaunchRequest, settings: Settings) -> tuple[Staged, Staged]:
    """Parse and stage the request's file as the pipeline does, in small batches (several files
    per kind): (rows files, dead-letter files), each as ``(path, rows)``."""
    directory = str(staging_dir(request, settings))
    rows: Staged = []
    dead: Staged = []
    with Path(request.input_uri).open("rb") as raw:
        batches = iter_parsed_batches(
            raw, contract, request.source, ingested_at=request.started_at,
            chunk_bytes=256, max_record_bytes=4096,
        )  # fmt: skip
        for batch in batches:
            rows += StageParquetFn(directory, "rows", settings).process(batch.rows)
            dead += StageParquetFn(directory, "dead", settings).process(batch.dead)
    return rows, dead


def corrupt(path: str) -> None:
    """Overwrite every data page of a Parquet file; its footer (the schema) stays readable."""
    data = bytearray(Path(path).read_bytes())
    footer_start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    data[4:footer_start] = b"\xff" * (footer_start - 4)
    Path(path).write_bytes(bytes(data))


def duckdb_state(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the processed, dead-letter and log tables, sorted; read only."""
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        return {
            kind: sorted(con.execute(f"SELECT * FROM sluice.{table}").fetchall(), key=repr)
            for kind, table in TABLES.items()
        }


def warehouse_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one BigQuery-dialect query on the configured warehouse, as tuples."""
    with connected_warehouse(settings) as warehouse:
        return [tuple(row.values()) for row in warehouse.query(sql)]


def loaded_ids(settings: Settings) -> list[tuple[int, int]]:
    """(loan_id, source generation) of every processed row."""
    return warehouse_rows(
        settings, f"SELECT loan_id, _source_generation FROM {{dataset}}.{DATASET} ORDER BY 1"
    )


def log_rows(settings: Settings) -> list[tuple[Any, ...]]:
    """(generation, status, rows_loaded, rows_dead, reason) of every ingestion-log row."""
    return warehouse_rows(
        settings,
        "SELECT source_generation, status, rows_loaded, rows_dead, reason"
        " FROM {dataset}.ingestion_log ORDER BY source_generation, status",
    )
