"""Drive one corpus case down the deployed path and gather what every part left behind.

The event goes to ``main.on_upload`` through functions-framework's own app (binary-mode
CloudEvent, as Eventarc sends it) against fake-gcs-server. The launcher is the recording
double of tests/sluice/ingest/upload_doubles.py; each launch it records is then run in this
process by ``beam.pipeline.run`` with exactly the parameters ``LocalLauncher`` would pass
(``launch_parameters(..., launcher="local")``), which saves a Beam import and interpreter
start per accepted file (about 0.4 s per run instead of 3 s).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from sluice.contracts import Contract
from sluice.ingest.claims import CLAIMS_PREFIX
from sluice.ingest.launch import LaunchRequest, launch_parameters
from sluice.schema import IngestionRecord
from sluice.settings import Settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.test_main import storage_event, upload_client

if TYPE_CHECKING:
    import pytest
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

GCS_MAX_NAME_BYTES = 1024
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class Delivery:
    """The HTTP answer of ``on_upload`` and the JSON log lines it wrote."""

    status: int
    body: str
    logs: list[dict[str, Any]]

    def outcomes(self, outcome: str) -> list[dict[str, Any]]:
        """The log lines whose ``outcome`` field is ``outcome``."""
        return [line for line in self.logs if line.get("outcome") == outcome]


def deliver(blob: Blob, capsys: pytest.CaptureFixture[str]) -> Delivery:
    """POST the finalize event of ``blob`` to ``main.on_upload``; its answer and logs."""
    capsys.readouterr()  # only this request's lines
    headers, body = storage_event(blob.bucket.name, blob.name, blob.generation)
    response = upload_client().post("/", headers=headers, data=body)
    lines = capsys.readouterr().out.splitlines()
    logs = [json.loads(line) for line in lines if line.startswith("{")]
    return Delivery(response.status_code, response.get_data(as_text=True), logs)


def run_pipeline(request: LaunchRequest, settings: Settings) -> IngestionRecord | None:
    """Run the launched pipeline to the end, in process, as LocalLauncher would start it."""
    from beam.pipeline import run

    params = launch_parameters(request, settings, launcher="local")
    return run([f"--{name}={value}" for name, value in params.items()])


def pipeline_objects(gcs: GcsBuckets) -> list[str]:
    """Names of every object in the test's pipeline bucket."""
    return [blob.name for blob in gcs.client.list_blobs(gcs.pipeline.name)]


def misplaced_names(names: list[str], generation: int | None) -> list[str]:
    """Pipeline-bucket names outside ``claims/<hash>.json`` and ``quarantine/<gen>/<flat>``,
    or longer than Cloud Storage allows."""
    allowed = re.compile(
        rf"{re.escape(CLAIMS_PREFIX)}[0-9a-f]{{40}}\.json|quarantine/{generation}/[^/]+"
    )
    return [
        name
        for name in names
        if not allowed.fullmatch(name) or len(name.encode()) > GCS_MAX_NAME_BYTES
    ]


def log_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every ingestion-log row (none when the warehouse was never created)."""
    if not settings.duckdb_file.exists():
        return []
    return DuckDBWarehouse(settings).query(
        "SELECT status, rows_in, rows_loaded, rows_dead, reason, source_uri, source_generation"
        " FROM {dataset}.ingestion_log"
    )


def dead_letters(settings: Settings, contract: Contract, uri: str) -> dict[int, dict[str, Any]]:
    """This source's dead letters by line."""
    rows = DuckDBWarehouse(settings).query(
        f"SELECT line, reason, raw_text, source_generation FROM {{dataset}}."
        f"{contract.dead_letter_table} WHERE source_uri = @uri",
        {"uri": uri},
    )
    return {row["line"]: row for row in rows}


def loaded_count(settings: Settings, contract: Contract, uri: str) -> int:
    """Processed rows of this source."""
    [row] = DuckDBWarehouse(settings).query(
        f"SELECT COUNT(*) AS n FROM {{dataset}}.{contract.table} WHERE _source_uri = @uri",
        {"uri": uri},
    )
    return int(row["n"])


def loaded_value(settings: Settings, contract: Contract, line: int, expression: str) -> list[Any]:
    """``expression`` (a column, or SQL over columns) of the loaded rows from ``line``."""
    if _IDENTIFIER.fullmatch(expression):
        expression = f"`{expression}`"  # `timestamp` and `status` are keywords
    rows = DuckDBWarehouse(settings).query(
        f"SELECT {expression} AS v FROM {{dataset}}.{contract.table} WHERE _source_line = @line",
        {"line": line},
    )
    return [row["v"] for row in rows]


WHEN_AND_WHO = {"_ingested_at", "ingested_at", "job_id", "started_at", "finished_at"}
"""Columns that differ between two runs of the same file by design."""


def warehouse_contents(settings: Settings) -> dict[str, str]:
    """Every table's rows, sorted, without ``WHEN_AND_WHO``; repr'd so NaN equals NaN."""
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL"
        ).fetchall()
        contents: dict[str, str] = {}
        for schema, table in tables:
            columns = [
                name
                for (name,) in con.execute(
                    "SELECT column_name FROM duckdb_columns()"
                    " WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
                    [schema, table],
                ).fetchall()
                if name not in WHEN_AND_WHO
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            rows: list[Any] = con.execute(
                f'SELECT {select} FROM "{schema}"."{table}" ORDER BY ALL'
            ).fetchall()
            contents[f"{schema}.{table}"] = repr(rows)
    return contents


def forget_claims(gcs: GcsBuckets) -> None:
    """Delete every claim, so the same event is handled afresh by the other lane."""
    for blob in gcs.client.list_blobs(gcs.pipeline.name, prefix=CLAIMS_PREFIX):
        blob.delete()
