"""The whole pipeline on Beam's local runner with the DuckDB warehouse, over tmp_path."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest
from apache_beam.options.pipeline_options import GoogleCloudOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from google.cloud import storage

from beam.pipeline import build_pipeline, parse_arguments, run
from sluice.ingest.claims import claim_event, event_key, read_claim
from sluice.schema import IngestionRecord
from sluice.settings import load_settings
from tests.beam.conftest import SAMPLE_BAD_HEADER, SAMPLE_LOANS

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

SAMPLE_RECORDS = list(csv.DictReader(io.StringIO(SAMPLE_LOANS)))


@dataclass(frozen=True)
class Ingested:
    """Two runs of the pipeline over the same sample file, and where they wrote."""

    path: Path
    first: IngestionRecord
    second: IngestionRecord
    duckdb_file: Path
    staging_root: Path


def query(duckdb_file: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def pipeline_argv(path: Path, contracts_dir: Path, *extra: str) -> list[str]:
    return [f"--input={path}", "--dataset=tiny_loans", f"--contracts_dir={contracts_dir}", *extra]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, tiny_contracts_dir: Path) -> Iterator:
    """One shared pair of runs (the local runner's start-up is paid once per module)."""
    root = tmp_path_factory.mktemp("pipeline")
    path = root / "landing" / "loans.csv"
    path.parent.mkdir()
    path.write_text(SAMPLE_LOANS, encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:
        for key in [k for k in os.environ if k.startswith("SLUICE_")]:
            env.delenv(key)
        env.setenv("SLUICE_HOME", str(root / "home"))
        first = run(pipeline_argv(path, tiny_contracts_dir))
        second = run(pipeline_argv(path, tiny_contracts_dir))
        settings = load_settings()
        yield Ingested(path, first, second, settings.duckdb_file, settings.staging_root)


def test_run_accounts_for_every_record(ingested: Ingested) -> None:
    record = ingested.first
    good = [r for r in SAMPLE_RECORDS if r["loan_id"] in {"1", "2", "5", "6"}]

    assert record.status == "loaded"
    assert record.rows_in == len(SAMPLE_RECORDS) == record.rows_loaded + record.rows_dead
    assert record.rows_loaded == len(good)
    assert record.source_uri == str(ingested.path.resolve())
    assert record.source_generation == ingested.path.stat().st_mtime_ns // 1000


def test_run_tables_match_the_ingestion_log(ingested: Ingested) -> None:
    db = ingested.duckdb_file

    [(rows,)] = query(db, "SELECT count(*) FROM sluice.tiny_loans")
    [(dead,)] = query(db, "SELECT count(*) FROM sluice.tiny_loans_dead_letter")
    log = query(
        db, "SELECT status, rows_in, rows_loaded, rows_dead, job_id FROM sluice.ingestion_log"
    )

    second = ingested.second
    assert log == [("loaded", rows + dead, rows, dead, second.job_id)]
    assert (rows, dead) == (second.rows_loaded, second.rows_dead)


def test_run_keeps_descriptions_with_newlines(ingested: Ingested) -> None:
    expected = {int(r["loan_id"]): r["description"] or None for r in SAMPLE_RECORDS}

    loaded = query(ingested.duckdb_file, "SELECT loan_id, description FROM sluice.tiny_loans")

    assert loaded and all(expected[loan_id] == text for loan_id, text in loaded)
    assert any("\n" in (text or "") for _, text in loaded)


def test_run_twice_leaves_one_copy(ingested: Ingested) -> None:
    per_id = query(
        ingested.duckdb_file, "SELECT loan_id, count(*) FROM sluice.tiny_loans GROUP BY 1"
    )

    assert {count for _, count in per_id} == {1}
    assert len(per_id) == ingested.second.rows_loaded == ingested.first.rows_loaded
    assert ingested.second.job_id == ingested.first.job_id


def test_run_removes_its_staging_directory(ingested: Ingested) -> None:
    job_dir = ingested.staging_root / "tiny_loans" / ingested.second.job_id

    assert ingested.staging_root.is_absolute()
    assert not job_dir.exists()


def test_run_loads_gzip_input(tmp_path: Path, tiny_contracts_dir: Path, write_sample) -> None:
    path = write_sample(SAMPLE_LOANS, "loans.csv.gz", compress=True)

    record = run(pipeline_argv(path, tiny_contracts_dir))

    assert (record.status, record.rows_in) == ("loaded", len(SAMPLE_RECORDS))
    [(rows,)] = query(load_settings().duckdb_file, "SELECT count(*) FROM sluice.tiny_loans")
    assert rows == record.rows_loaded > 0


def test_run_records_a_rejected_header(tiny_contracts_dir: Path, write_sample) -> None:
    path = write_sample(SAMPLE_BAD_HEADER)
    settings = load_settings()

    record = run(pipeline_argv(path, tiny_contracts_dir, "--job_name=bad-header-job"))

    assert (record.status, record.rows_in, record.job_id) == ("rejected", 0, "bad-header-job")
    assert "loan_name" in record.reason and "loan_title" in record.reason
    assert query(settings.duckdb_file, "SELECT count(*) FROM sluice.tiny_loans") == [(0,)]
    logged = query(settings.duckdb_file, "SELECT status, reason FROM sluice.ingestion_log")
    assert logged == [("rejected", record.reason)]
    assert not (settings.staging_root / "tiny_loans" / "bad-header-job").exists()


def test_run_loads_nothing_from_a_file_rejected_after_staging(
    tiny_contracts_dir: Path, write_sample, monkeypatch
) -> None:
    # Small chunks: early batches are parsed and staged before the open quote at the end.
    monkeypatch.setenv("SLUICE_CHUNK_BYTES", "64")
    path = write_sample(SAMPLE_LOANS + '7,Open,"never closed,5,funded,\n')
    settings = load_settings()

    record = run(pipeline_argv(path, tiny_contracts_dir, "--job_name=open-quote-job"))

    assert (record.status, record.rows_loaded, record.rows_dead) == ("rejected", 0, 0)
    assert "quote" in record.reason
    assert query(settings.duckdb_file, "SELECT count(*) FROM sluice.tiny_loans") == [(0,)]
    assert not (settings.staging_root / "tiny_loans" / "open-quote-job").exists()


def test_run_reads_gcs_and_settles_the_claim(tiny_contracts_dir: Path, gcs: GcsBuckets) -> None:
    name = "incoming/tiny_loans/2026/loans.csv.gz"
    blob = gcs.landing.blob(name)
    blob.upload_from_string(gzip.compress(SAMPLE_LOANS.encode()))
    settings = load_settings()
    key = event_key(gcs.landing.name, name, blob.generation)
    claim_event(
        gcs.client,
        settings,
        key,
        bucket=gcs.landing.name,
        name=name,
        generation=blob.generation,
        dataset="tiny_loans",
    )
    uri = f"gs://{gcs.landing.name}/{name}"

    record = run(
        [
            f"--input={uri}",
            "--dataset=tiny_loans",
            f"--contracts_dir={tiny_contracts_dir}",
            f"--source_generation={blob.generation}",
            f"--event_key={key}",
            f"--pipeline_bucket={gcs.pipeline.name}",
        ]
    )

    claim = read_claim(gcs.client, settings, key)
    assert (claim.state, claim.runner_job_id) == ("loaded", record.job_id)
    assert (record.status, record.source_uri, record.rows_in) == ("loaded", uri, 6)
    rows = query(settings.duckdb_file, "SELECT DISTINCT _source_uri FROM sluice.tiny_loans")
    assert rows == [(uri,)]
    [(count,)] = query(settings.duckdb_file, "SELECT count(*) FROM sluice.tiny_loans")
    assert count == record.rows_loaded == 4


def test_parse_arguments_shares_staging_location_with_beam(tmp_path: Path, write_sample) -> None:
    argv = [f"--input={write_sample(SAMPLE_LOANS)}", "--dataset=tiny_loans"]
    staging = "gs://pipeline/staging"

    params, options = parse_arguments([*argv, f"--staging_location={staging}", "--project=p"])

    assert params.staging_location == staging
    assert options.view_as(GoogleCloudOptions).staging_location == staging
    assert options.view_as(GoogleCloudOptions).project == "p"


def test_build_pipeline_labels_every_step(tiny_contracts_dir: Path, write_sample) -> None:
    params, options = parse_arguments(pipeline_argv(write_sample(SAMPLE_LOANS), tiny_contracts_dir))

    pipeline = build_pipeline(params, options)

    labels = {t.full_label for t in pipeline.transforms_stack[0].parts}
    assert labels == {
        "Byte ranges",
        "Spread ranges",
        "Parse CSV",
        "Stage rows",
        "Stage dead letters",
        "Load warehouse",
    }
    assert isinstance(pipeline.runner, FnApiRunner)


def test_build_pipeline_uses_the_runner_option(tiny_contracts_dir: Path, write_sample) -> None:
    argv = pipeline_argv(
        write_sample(SAMPLE_LOANS), tiny_contracts_dir, "--runner=BundleBasedDirectRunner"
    )

    pipeline = build_pipeline(*parse_arguments(argv))

    assert type(pipeline.runner).__name__ == "BundleBasedDirectRunner"


def test_parse_arguments_runs_workers_on_the_template_image(monkeypatch) -> None:
    monkeypatch.setenv("SLUICE_WORKER_IMAGE", "europe-docker.pkg.dev/p/r/sluice-pipeline:t1")
    base = [
        "--input=gs://landing/incoming/kiva_loans/x.csv",
        "--dataset=kiva_loans",
        "--source_generation=1",
    ]

    _, options = parse_arguments(base)
    _, explicit = parse_arguments([*base, "--sdk_container_image=other:1"])

    assert options.get_all_options()["sdk_container_image"].endswith("sluice-pipeline:t1")
    assert explicit.get_all_options()["sdk_container_image"] == "other:1"


def test_parse_arguments_leaves_the_worker_image_alone_outside_the_image() -> None:
    base = [
        "--input=gs://landing/incoming/kiva_loans/x.csv",
        "--dataset=kiva_loans",
        "--source_generation=1",
    ]

    _, options = parse_arguments(base)

    assert options.get_all_options()["sdk_container_image"] is None


SAMPLE_LOG_HEADER = (
    b"timestamp,host,method,path,status,bytes_sent,latency_ms,client_ip,country_code,"
    b"user_agent,referrer\n"
)
SAMPLE_LOG_ROW = b"2024-01-01T00:00:00Z,h,GET,/p,200,10,1.5,1.1.1.1,US,ua,r\n"


def test_run_reads_the_launched_generation_not_a_newer_upload(gcs: GcsBuckets, tmp_path) -> None:
    versioned = storage.Bucket(gcs.client, f"{gcs.landing.name}-v")
    versioned.versioning_enabled = True  # as infra/ sets landing: older generations stay
    bucket = gcs.client.create_bucket(versioned)
    blob = bucket.blob("incoming/server_logs/x.csv")
    blob.upload_from_string(SAMPLE_LOG_HEADER + SAMPLE_LOG_ROW * 3)
    launched = blob.generation
    blob.upload_from_string(SAMPLE_LOG_HEADER + SAMPLE_LOG_ROW)  # a newer upload, same name
    argv = [
        f"--input=gs://{bucket.name}/incoming/server_logs/x.csv",
        "--dataset=server_logs",
        f"--warehouse_target={tmp_path / 'w.duckdb'}",
        f"--staging_location={tmp_path / 'staging'}",
    ]

    record = run([*argv, f"--source_generation={launched}"])
    gone = run([*argv, f"--source_generation={launched - 1}", "--job_name=sluice-gone-1"])

    assert (record.status, record.rows_loaded, record.source_generation) == ("loaded", 3, launched)
    assert gone.status == "rejected"
    assert "found it gone" in gone.reason


def test_run_of_an_older_generation_finishing_last_leaves_the_newer_rows(tmp_path) -> None:
    newer, older = tmp_path / "new.csv", tmp_path / "old.csv"
    newer.write_bytes(SAMPLE_LOG_HEADER + SAMPLE_LOG_ROW * 3)
    older.write_bytes(SAMPLE_LOG_HEADER + SAMPLE_LOG_ROW)
    common = [
        "--dataset=server_logs",
        "--source_uri=gs://landing/incoming/server_logs/x.csv",
        f"--warehouse_target={tmp_path / 'w.duckdb'}",
        f"--staging_location={tmp_path / 'staging'}",
    ]

    first = run([f"--input={newer}", "--source_generation=2000", *common])
    late = run([f"--input={older}", "--source_generation=1000", *common])

    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT _source_generation, count(*) FROM sluice.server_logs GROUP BY 1"
        ).fetchall()
    assert (first.status, first.rows_loaded) == ("loaded", 3)
    assert (late.status, late.rows_loaded) == ("superseded", 0)
    assert late.reason.startswith("superseded")
    assert rows == [(2000, 3)]
