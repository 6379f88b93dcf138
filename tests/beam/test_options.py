"""The pipeline's parameter list and how its defaults resolve."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from beam.options import (
    PARAMETER_NAMES,
    add_pipeline_arguments,
    parse_started_at,
    resolve_params,
)
from sluice.errors import ConfigError
from sluice.schema import job_name_for


def parse(*argv: str) -> argparse.Namespace:
    return add_pipeline_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_add_pipeline_arguments_defines_exactly_the_parameter_list() -> None:
    parser = add_pipeline_arguments(argparse.ArgumentParser(add_help=False))

    flags = {action.dest for action in parser._actions}

    assert flags == set(PARAMETER_NAMES)
    assert len(PARAMETER_NAMES) == len(set(PARAMETER_NAMES))


def test_resolve_params_defaults_for_a_local_file(tmp_path: Path, isolated_env: Path) -> None:
    path = tmp_path / "loans.csv"
    path.write_text("loan_id\n1\n")
    relative = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path

    params = resolve_params(parse(f"--input={relative}", "--dataset=kiva_loans"))

    assert params.source.uri == str(path.resolve())
    assert params.source.generation == path.stat().st_mtime_ns // 1000
    assert params.job_name == job_name_for("kiva_loans", params.source)
    assert params.staging_location == str((isolated_env / "staging").absolute())
    assert params.staging_dir.endswith(f"/kiva_loans/{params.job_name}")
    assert params.settings.duckdb_file == (isolated_env / "warehouse.duckdb").absolute()
    assert params.started_at.tzinfo is not None


def test_resolve_params_requires_a_generation_for_gcs() -> None:
    with pytest.raises(ConfigError, match="source_generation"):
        resolve_params(
            parse("--input=gs://landing/incoming/kiva_loans/a.csv", "--dataset=kiva_loans")
        )


def test_resolve_params_keeps_explicit_values_for_gcs() -> None:
    params = resolve_params(
        parse(
            "--input=gs://landing/incoming/kiva_loans/a.csv",
            "--dataset=kiva_loans",
            "--source_generation=42",
            "--staging_location=gs://pipeline/staging",
            "--warehouse=bigquery",
            "--warehouse_target=my-project",
            "--warehouse_dataset=raw",
            "--job_name=job-1",
            "--started_at=2026-11-24T10:15:03+01:00",
        )
    )

    assert (params.source.uri, params.source.generation) == (
        "gs://landing/incoming/kiva_loans/a.csv",
        42,
    )
    assert params.staging_dir == "gs://pipeline/staging/kiva_loans/job-1"
    assert (params.settings.warehouse, params.settings.bq_project) == ("bigquery", "my-project")
    assert params.settings.warehouse_dataset == "raw"
    assert params.started_at == datetime(2026, 11, 24, 9, 15, 3, tzinfo=UTC)


def test_resolve_params_flag_beats_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLUICE_WAREHOUSE", "bigquery")
    path = tmp_path / "a.csv"
    path.write_text("x\n")

    params = resolve_params(
        parse(
            f"--input={path}",
            "--dataset=d",
            "--warehouse=duckdb",
            f"--warehouse_target={tmp_path / 'w.db'}",
        )
    )

    assert params.settings.warehouse == "duckdb"
    assert params.settings.duckdb_file == tmp_path / "w.db"


def test_parse_started_at_reads_naive_times_as_utc() -> None:
    assert parse_started_at("2026-11-24T10:00:00") == datetime(2026, 11, 24, 10, tzinfo=UTC)
    with pytest.raises(ConfigError, match="ISO 8601"):
        parse_started_at("yesterday")


def test_resolve_params_carries_the_claim_and_its_bucket() -> None:
    gcs = ["--input=gs://landing/incoming/kiva_loans/a.csv", "--dataset=kiva_loans"]
    key = "landing/incoming/kiva_loans/a.csv#42"

    claimed = resolve_params(
        parse(*gcs, "--source_generation=42", f"--claim={key}", "--pipeline_bucket=pipes")
    )
    unclaimed = resolve_params(parse(*gcs, "--source_generation=42"))

    assert (claimed.event_key, claimed.settings.pipeline_bucket) == (key, "pipes")
    assert (unclaimed.event_key, unclaimed.settings.pipeline_bucket) == (None, "sluice-pipeline")


def test_renamed_flags_keep_their_old_names() -> None:
    gcs = ["--input=gs://landing/incoming/kiva_loans/a.csv", "--dataset=kiva_loans"]
    key = "landing/incoming/kiva_loans/a.csv#42"

    old = resolve_params(parse(*gcs, "--source_generation=42", f"--claim={key}"))
    new = resolve_params(parse(*gcs, "--source_generation=42", f"--event_key={key}"))

    assert old.event_key == new.event_key == key


def test_the_job_name_flag_keeps_its_old_name() -> None:
    gcs = ["--input=gs://landing/incoming/kiva_loans/a.csv", "--dataset=kiva_loans"]

    old = resolve_params(parse(*gcs, "--source_generation=42", "--job_id=sluice-x-1"))
    new = resolve_params(parse(*gcs, "--source_generation=42", "--job_name=sluice-x-1"))

    assert old.job_name == new.job_name == "sluice-x-1"
