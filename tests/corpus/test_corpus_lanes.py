"""Two lanes, one result: every loadable corpus case gives the same warehouse either way.

Each case lands once and is delivered to ``main.on_upload`` twice, each time into its own
DuckDB warehouse: first with ``SLUICE_FAST_LANE_MAX_BYTES=0`` (the pipeline lane: the
recorded launch run by ``beam.pipeline.run``, as tests/corpus/harness.py does), then, with
the claim forgotten, under a limit above every case (the fast lane: loaded inside the
function, nothing launched). Every row of every table must match, except the columns that
say when and by which job (ingestion time, job id, start and finish). Cases the door
rejects or ignores never reach a lane, so only the ``Loaded`` ones are run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from sluice.ingest.claims import CLAIMS_PREFIX, event_key, read_claim
from sluice.settings import Settings, load_settings
from tests.corpus import harness
from tests.corpus.expect import Case, Loaded
from tests.corpus.test_corpus import ALL_CASES
from tests.sluice.ingest.upload_doubles import install_launcher, land

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]
WHEN_AND_WHO = {"_ingested_at", "ingested_at", "job_id", "started_at", "finished_at"}
"""Columns that differ between two runs of the same file by design."""
ABOVE_EVERY_CASE = str(1024**3)

LOADED = [pytest.param(case, id=case.id) for case in ALL_CASES if isinstance(case.expect, Loaded)]


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


@pytest.mark.parametrize("case", LOADED)
def test_corpus_case_loads_the_same_rows_and_dead_letters_in_both_lanes(
    case: Case,
    gcs: GcsBuckets,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    for variable, value in case.env:
        monkeypatch.setenv(variable, value)
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, case.payload(), case.object_name)
    key = event_key(gcs.landing.name, blob.name, blob.generation)

    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "pipeline-lane"))
    monkeypatch.setenv("SLUICE_FAST_LANE_MAX_BYTES", "0")
    by_pipeline = harness.deliver(blob, capsys)
    pipeline_settings = load_settings()
    for request in launcher.requests:
        harness.run_pipeline(request, pipeline_settings)
    forget_claims(gcs)
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "fast-lane"))
    monkeypatch.setenv("SLUICE_FAST_LANE_MAX_BYTES", ABOVE_EVERY_CASE)
    in_function = harness.deliver(blob, capsys)
    fast_settings = load_settings()

    assert (by_pipeline.status, in_function.status) == (200, 200), in_function.body
    assert launcher.attempts == 1  # the pipeline lane's launch only
    assert [line["outcome"] for line in in_function.outcomes("loaded")] == ["loaded"]
    pipeline_tables = warehouse_contents(pipeline_settings)
    assert warehouse_contents(fast_settings) == pipeline_tables
    assert any(name.endswith("_dead_letter") for name in pipeline_tables)
    assert read_claim(gcs.client, fast_settings, key).state == "loaded"
    assert not [p for p in fast_settings.staging_root.rglob("*") if p.is_file()]
