"""Test-marked landing objects (a ``_test`` path segment) never change a production table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from local.launcher import LocalLauncher
from sluice.contracts import load_contract
from sluice.errors import ConfigError
from sluice.ingest.door import handle_object
from sluice.ingest.launch import LaunchRequest, launch_parameters
from sluice.schema import SourceRef, job_name_for
from sluice.settings import Settings, load_settings
from tests.beam.conftest import SAMPLE_BAD_HEADER, SAMPLE_LOANS, TINY_LOANS_CONTRACT
from tests.sluice.ingest.upload_doubles import (
    BAD,
    GOOD,
    PREFIX,
    ingestion_rows,
    install_launcher,
    land,
)

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

SOURCE = SourceRef("gs://sluice-landing/incoming/kiva_loans/_test/loans.csv", 1732443303123456)


def handle(blob: Blob, settings: Settings | None = None) -> Any:
    settings = settings or load_settings()
    return handle_object(blob.bucket.name, blob.name, blob.generation, settings=settings)


def in_test_dataset(settings: Settings) -> Settings:
    return replace(settings, warehouse_dataset=settings.test_warehouse_dataset)


def test_launch_parameters_send_a_test_request_to_the_test_dataset() -> None:
    settings = load_settings(warehouse_dataset="prod", test_warehouse_dataset="trial")
    production = LaunchRequest.for_object("kiva_loans", SOURCE)
    trial = LaunchRequest.for_object("kiva_loans", SOURCE, test=True)

    params = launch_parameters(trial, settings, launcher="local")

    assert params["warehouse_dataset"] == "trial"
    assert launch_parameters(production, settings)["warehouse_dataset"] == "prod"


@pytest.mark.parametrize("clash", ["warehouse_dataset", "cooked_warehouse_dataset"])
def test_launch_parameters_refuse_a_test_dataset_that_is_a_production_one(clash: str) -> None:
    settings = load_settings(**{clash: "sluice_test"})
    trial = LaunchRequest.for_object("kiva_loans", SOURCE, test=True)

    with pytest.raises(ConfigError, match="SLUICE_TEST_WAREHOUSE_DATASET"):
        launch_parameters(trial, settings)


def test_handle_object_launches_a_test_file_into_the_test_dataset(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    settings = load_settings()
    production, trial = land(gcs, GOOD), land(gcs, GOOD, PREFIX + "_test/a.csv")

    outcomes = [handle(production).status, handle(trial).status]

    assert outcomes == ["launched", "launched"]
    first, second = launcher.requests
    assert (first.test, second.test) == (False, True)
    assert launch_parameters(first, settings)["warehouse_dataset"] == settings.warehouse_dataset
    assert launch_parameters(second, settings)["warehouse_dataset"] == "sluice_test"


def test_handle_object_logs_a_rejected_test_file_in_the_test_dataset(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_launcher(monkeypatch)
    settings = load_settings()
    production = land(gcs, BAD, PREFIX + "bad.csv")
    trial = land(gcs, BAD, PREFIX + "_test/bad.csv")
    handle(production)
    before = ingestion_rows(settings)

    outcome = handle(trial)

    assert outcome.status == "rejected"
    assert ingestion_rows(settings) == before
    [row] = ingestion_rows(in_test_dataset(settings))
    assert (row["status"], row["source_uri"], row["source_generation"]) == (
        "rejected",
        f"gs://{gcs.landing.name}/{trial.name}",
        trial.generation,
    )


@pytest.fixture
def tiny_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "tiny_loans.yaml").write_text(TINY_LOANS_CONTRACT, encoding="utf-8")
    monkeypatch.setenv("SLUICE_CONTRACTS_DIR", str(contracts))
    return load_settings()


def snapshot(settings: Settings) -> dict[str, list[tuple]]:
    """Every row of tiny_loans' processed and dead-letter tables and of the ingestion log."""
    contract = load_contract(settings.contracts_dir / "tiny_loans.yaml")
    tables = {"rows": contract.table, "dead": contract.dead_letter_table, "log": "ingestion_log"}
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        return {
            kind: sorted(
                con.execute(f'SELECT * FROM "{settings.warehouse_dataset}"."{table}"').fetchall()
            )
            for kind, table in tables.items()
        }


def logged_outcomes(settings: Settings) -> list[tuple[str, str]]:
    """(source_uri, status) of every ingestion-log row in ``settings.warehouse_dataset``."""
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        query = (
            f'SELECT source_uri, status FROM "{settings.warehouse_dataset}".ingestion_log'
            " ORDER BY 1"
        )
        return [(uri, status) for uri, status in con.execute(query).fetchall()]


def run_to_completion(blob: Blob, settings: Settings) -> str:
    """Handle the object with the real LocalLauncher and wait for its pipeline to finish."""
    outcome = handle(blob, settings)
    if outcome.status == "launched":
        source = SourceRef(f"gs://{blob.bucket.name}/{blob.name}", blob.generation)
        job_name = job_name_for("tiny_loans", source)
        code = LocalLauncher(settings).wait(job_name, timeout=180)
        assert code == 0, (settings.home / "logs" / f"{job_name}.log").read_text()
    return outcome.status


@pytest.mark.slow
def test_test_file_loads_into_the_test_dataset_and_never_changes_production(
    gcs: GcsBuckets, tiny_settings: Settings
) -> None:
    settings = tiny_settings
    production = land(gcs, SAMPLE_LOANS.encode(), "incoming/tiny_loans/loans.csv")
    assert run_to_completion(production, settings) == "launched"
    before = snapshot(settings)
    trial = land(gcs, SAMPLE_LOANS.encode(), "incoming/tiny_loans/_test/loans.csv")
    rejected = land(gcs, SAMPLE_BAD_HEADER.encode(), "incoming/tiny_loans/_test/bad.csv")

    statuses = [run_to_completion(trial, settings), run_to_completion(rejected, settings)]

    assert statuses == ["launched", "rejected"]
    assert snapshot(settings) == before
    assert (len(before["rows"]), len(before["dead"]), len(before["log"])) == (4, 2, 1)
    tested = snapshot(in_test_dataset(settings))
    assert (len(tested["rows"]), len(tested["dead"])) == (4, 2)
    landing = f"gs://{gcs.landing.name}/"
    assert logged_outcomes(in_test_dataset(settings)) == [
        (landing + rejected.name, "rejected"),
        (landing + trial.name, "loaded"),
    ]
