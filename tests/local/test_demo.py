"""``sluice demo``: the committed samples through the local stack (or in-process), summaries out."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from local.cli import main
from local.demo import SAMPLES_DIR, sample_files
from local.stack import LocalStack, stack_file
from sluice.contracts import load_contract_set
from sluice.settings import REPO_ROOT, Settings, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.local.test_cli import run_cli
from tests.sluice.broken_config import (
    BROKEN_DATASET,
    BROKEN_SQL,
    use_broken_contracts,
    use_broken_sql,
)

LOG_SQL = "SELECT source_uri, status, rows_in FROM {dataset}.ingestion_log ORDER BY source_uri"


def run_demo_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run ``sluice demo`` in-process; (exit code, stdout)."""
    with pytest.raises(SystemExit) as stop:
        main(["demo", *argv])
    return int(stop.value.code), capsys.readouterr().out


def sample_records() -> dict[str, int]:
    """Records per sample file: as the csv module counts them, or its non-empty lines."""
    contracts = load_contract_set(REPO_ROOT / "contracts")
    counts = {}
    for dataset, path in sample_files(contracts):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            if contracts.contract(dataset).format == "csv":
                counts[path.name] = sum(1 for _ in csv.DictReader(handle))
            else:
                counts[path.name] = sum(1 for line in handle if line.strip())
    return counts


def logged(settings: Settings) -> dict[str, tuple[str, int]]:
    """File name -> (status, rows_in) from the ingestion log."""
    rows = DuckDBWarehouse(settings).query(LOG_SQL)
    return {Path(r["source_uri"]).name: (r["status"], r["rows_in"]) for r in rows}


def test_sample_files_are_the_files_named_after_a_contracts_dataset(tmp_path: Path) -> None:
    contracts = load_contract_set(REPO_ROOT / "contracts")
    for name in ("README.md", "access_logs.log.gz", "kiva_loans.csv", "notes.txt", "server_logs"):
        (tmp_path / name).write_text("x")
    (tmp_path / "http_requests.d").mkdir()

    samples = sample_files(contracts, tmp_path)

    assert samples == [
        ("access_logs", tmp_path / "access_logs.log.gz"),
        ("kiva_loans", tmp_path / "kiva_loans.csv"),
    ]


def test_committed_samples_cover_every_format() -> None:
    names = set(sample_records())

    assert {"access_logs.log.gz", "http_requests.jsonl.gz", "server_logs.csv"} <= names
    assert "README.md" not in names


@pytest.mark.slow
def test_demo_goes_through_the_stack_and_stops_it(capsys, settings: Settings) -> None:
    code, out = run_demo_cli(capsys)

    assert code == 0
    assert "ingested samples" in out and "Server logs: requests per day" in out
    assert {name: ("loaded", n) for name, n in sample_records().items()} == logged(settings)
    uris = [r["source_uri"] for r in DuckDBWarehouse(settings).query(LOG_SQL)]
    assert all(uri.startswith("gs://sluice-landing/incoming/") for uri in uris)
    assert not stack_file(settings).exists()


@pytest.mark.slow
def test_demo_uses_a_running_stack(
    capsys, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_HOME", str(local_stack.settings.home))

    code, out = run_demo_cli(capsys)

    assert code == 0
    assert "kiva_top_lenders" in out
    assert stack_file(local_stack.settings).exists()  # still running: not ours to stop
    assert not local_stack.dead_services()
    assert set(logged(load_settings())) >= set(sample_records())


@pytest.mark.slow
def test_demo_direct_ingests_in_process(capsys, settings: Settings) -> None:
    code, out = run_demo_cli(capsys, "--direct")

    uris = [r["source_uri"] for r in DuckDBWarehouse(settings).query(LOG_SQL)]
    assert code == 0
    assert "cooked tables" in out
    assert {name: ("loaded", n) for name, n in sample_records().items()} == logged(settings)
    assert all(uri.startswith(str(SAMPLES_DIR)) for uri in uris)


@pytest.mark.slow
def test_demo_with_a_broken_contract_sql_file_and_lock_files_loads_and_cooks_the_rest(
    capsys, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_broken_contracts(monkeypatch, tmp_path)
    use_broken_sql(monkeypatch, tmp_path)

    code, out, errors = run_cli(capsys, "demo", "--direct")
    status_code, status, _ = run_cli(capsys, "status", "--json")

    loaded = logged(load_settings())
    assert code == 2  # a setup error, reported after everything else was done
    assert set(loaded) == set(sample_records()) - {"server_logs.csv"}
    assert all(state == "loaded" for state, _ in loaded.values())
    assert "Kiva: top countries by amount funded" in out and "kiva_top_lenders" in out
    assert f"{BROKEN_SQL}: expected BigQuery SQL" in out + errors
    [broken] = json.loads(status)["broken_contracts"]
    assert status_code == 0 and broken["file"].endswith(f"{BROKEN_DATASET}.yaml")
