"""End to end through the ``sluice`` command line on DuckDB: ingest, cook, query, status."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pytest

from local.cli import main
from local.stack import LocalStack
from sluice.gcs import storage_client
from sluice.settings import REPO_ROOT
from sluice.warehouse.duckdb import DuckDBWarehouse

SAMPLES = REPO_ROOT / "data" / "samples"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``sluice`` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(stop.value.code), out, err


def csv_records(path: Path) -> list[dict[str, str]]:
    """The file's records as csv.DictReader sees them (the independent reading)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def loans_file(tmp_path: Path) -> Path:
    """A private copy of the committed kiva_loans sample."""
    return Path(shutil.copy(SAMPLES / "kiva_loans.csv", tmp_path / "loans.csv"))


def test_ingest_accounts_for_every_record(capsys, loans_file: Path) -> None:
    code, out, _ = run_cli(capsys, "ingest", str(loans_file), "--dataset=kiva_loans", "--json")

    [result] = json.loads(out)
    assert code == 0
    assert result["status"] == "loaded"
    assert result["rows_in"] == len(csv_records(loans_file))
    assert result["rows_in"] == result["rows_loaded"] + result["rows_dead"]
    assert result["rows_dead"] > 0  # the sample carries a few contract-breaking rows


def test_ingest_keeps_multiline_descriptions_intact(capsys, loans_file: Path) -> None:
    expected = {
        int(r["loan_id"]): r["description"]
        for r in csv_records(loans_file)
        if "\n" in r["description"] and r["loan_id"].isdigit()
    }
    assert expected, "the sample must hold descriptions with newlines"
    run_cli(capsys, "ingest", str(loans_file), "--dataset=kiva_loans", "--json")

    code, out, _ = run_cli(
        capsys, "query", "SELECT loan_id, description FROM {dataset}.kiva_loans", "--json"
    )

    loaded = {row["loan_id"]: row["description"] for row in json.loads(out)}
    intact = [loan_id for loan_id in expected if loaded.get(loan_id) == expected[loan_id]]
    assert code == 0
    # A few sample rows break the contract on purpose and are dead-lettered: every other
    # multi-line description must arrive byte for byte.
    assert len(intact) >= len(expected) - 10
    assert all(loaded[i] == expected[i] for i in expected if i in loaded)


def test_ingest_twice_leaves_one_copy(capsys, loans_file: Path) -> None:
    count_sql = "SELECT COUNT(*) AS n FROM {dataset}.kiva_loans"
    run_cli(capsys, "ingest", str(loans_file), "--dataset=kiva_loans", "--json")
    once = json.loads(run_cli(capsys, "query", count_sql, "--json")[1])[0]["n"]

    run_cli(capsys, "ingest", str(loans_file), "--dataset=kiva_loans", "--json")
    twice = json.loads(run_cli(capsys, "query", count_sql, "--json")[1])[0]["n"]

    assert once > 0
    assert twice == once


def test_ingest_gzip_file_loads_same_rows(capsys, loans_file: Path, tmp_path: Path) -> None:
    packed = tmp_path / "loans.csv.gz"
    packed.write_bytes(gzip.compress(loans_file.read_bytes()))

    code, out, _ = run_cli(capsys, "ingest", str(packed), "--dataset=kiva_loans", "--json")

    assert code == 0
    assert json.loads(out)[0]["rows_in"] == len(csv_records(loans_file))


def test_ingest_rejected_file_exits_1_and_is_logged(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("loan_id,borrowers\n1,alice\n", encoding="utf-8")

    code, out, _ = run_cli(capsys, "ingest", str(bad), "--dataset=kiva_lenders", "--json")
    status = json.loads(run_cli(capsys, "status", "--json")[1])

    [result] = json.loads(out)
    assert code == 1
    assert result["status"] == "rejected"
    assert "lenders" in result["reason"]
    assert status["ingestion_log"][0]["source_uri"] == str(bad.resolve())
    assert status["ingestion_log"][0]["status"] == "rejected"


def test_unknown_dataset_is_one_clear_line(capsys, loans_file: Path) -> None:
    code, out, err = run_cli(capsys, "ingest", str(loans_file), "--dataset=kiva")

    assert code == 2
    assert "expected a dataset among" in err
    assert "Traceback" not in err + out


def test_missing_file_is_one_clear_line(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "ingest", str(tmp_path / "nope.csv"), "--dataset=kiva_loans")

    assert code == 2
    assert "expected a readable file" in err


def test_cook_builds_tables_from_ingested_data(capsys, loans_file: Path) -> None:
    run_cli(capsys, "ingest", str(loans_file), "--dataset=kiva_loans", "--json")

    code, out, _ = run_cli(capsys, "cook", "--json")
    status = json.loads(run_cli(capsys, "status", "--json")[1])

    report = json.loads(out)
    tables = {t["table"]: t["rows"] for t in report["tables"]}
    missing = {(a["dataset"], a["rule"]) for a in report["alerts"]}
    assert code == 0
    assert tables["kiva_loans_by_country"] > 0
    # Only kiva_loans arrived: the other datasets were never loaded.
    assert ("kiva_lenders", "max_hours_without_file") in missing
    assert ("kiva_loans", "max_hours_without_file") not in missing
    assert {(a["dataset"], a["rule"]) for a in status["alerts"]} == missing


def test_status_table_lists_open_alerts_after_cook(capsys) -> None:
    run_cli(capsys, "cook")

    code, out, _ = run_cli(capsys, "status")

    assert code == 0
    assert "open alerts" in out
    assert "kiva_lenders" in out
    assert "missing_data" in out


def test_generate_writes_requested_rows(capsys, tmp_path: Path) -> None:
    out_file = tmp_path / "logs.csv.gz"

    code, _, _ = run_cli(
        capsys, "generate", "server_logs", "--rows=300", f"--out={out_file}", "--seed=3"
    )

    assert code == 0
    assert len(csv_records(out_file)) == 300


# Through the local stack: `sluice upload` and `sluice replay` find it by its stack.json.


@pytest.fixture
def stack_home(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The shared running stack, with SLUICE_HOME pointing at it as in a second terminal."""
    monkeypatch.setenv("SLUICE_HOME", str(local_stack.settings.home))
    return local_stack


def test_upload_wait_reports_loaded_rows(capsys, stack_home: LocalStack, loans_file: Path) -> None:
    code, out, _ = run_cli(
        capsys, "upload", str(loans_file), "--dataset=kiva_loans", "--wait", "--json"
    )

    [result] = json.loads(out)
    assert code == 0
    assert result["uri"] == "gs://sluice-landing/incoming/kiva_loans/loans.csv"
    assert result["status"] == "loaded"
    assert result["rows_in"] == len(csv_records(loans_file))
    assert result["rows_in"] == result["rows_loaded"] + result["rows_dead"]


def test_upload_wait_rejected_file_exits_1(capsys, stack_home: LocalStack, tmp_path: Path) -> None:
    bad = tmp_path / "no_lenders.csv"
    bad.write_text("loan_id,borrowers\n1,alice\n", encoding="utf-8")

    code, out, _ = run_cli(capsys, "upload", str(bad), "--dataset=kiva_lenders", "--wait", "--json")

    [result] = json.loads(out)
    assert code == 1
    assert result["status"] == "rejected"
    assert "lenders" in result["reason"]


def test_upload_without_wait_only_uploads(capsys, stack_home: LocalStack, tmp_path: Path) -> None:
    outside = tmp_path / "later.csv"
    outside.write_bytes(b"loan_id,borrowers\n")

    code, out, _ = run_cli(capsys, "upload", str(outside), "--dataset=kiva_lenders", "--json")

    [result] = json.loads(out)
    blob = (
        storage_client(stack_home.settings)
        .bucket("sluice-landing")
        .get_blob("incoming/kiva_lenders/later.csv")
    )
    assert code == 0
    assert result["status"] == "uploaded"
    assert result["generation"] == str(blob.generation)
    assert blob.download_as_bytes() == b"loan_id,borrowers\n"


def test_upload_wait_times_out_with_exit_2(
    capsys, stack_home: LocalStack, monkeypatch: pytest.MonkeyPatch, loans_file: Path
) -> None:
    # The pipeline bucket sends no events: nothing will ever claim the upload.
    monkeypatch.setenv("SLUICE_GCS_ENDPOINT", stack_home.gcs_endpoint)
    monkeypatch.setenv("SLUICE_LANDING_BUCKET", stack_home.settings.pipeline_bucket)

    code, _, err = run_cli(
        capsys, "upload", str(loans_file), "--dataset=kiva_loans", "--wait", "--timeout=1"
    )

    message = " ".join(err.split())  # rich wraps long lines
    assert code == 2
    assert "expected every file loaded or rejected within 1 s" in message
    assert "'pending'" in message


@pytest.mark.slow
def test_replay_reingests_replacing_rows(capsys, stack_home: LocalStack, loans_file: Path) -> None:
    count_sql = "SELECT COUNT(*) AS n FROM {dataset}.kiva_loans WHERE _source_uri = @uri"
    uri = "gs://sluice-landing/incoming/kiva_loans/replayed.csv"
    replayed = loans_file.rename(loans_file.with_name("replayed.csv"))
    run_cli(capsys, "upload", str(replayed), "--dataset=kiva_loans", "--wait", "--json")
    warehouse = DuckDBWarehouse(stack_home.settings)
    once = warehouse.query(count_sql, {"uri": uri})[0]["n"]

    code, out, _ = run_cli(capsys, "replay", uri, "--wait", "--json")

    [result] = json.loads(out)
    assert code == 0
    assert result["status"] == "loaded"
    assert once == result["rows_loaded"] > 0
    assert warehouse.query(count_sql, {"uri": uri})[0]["n"] == once


def test_replay_of_missing_object_is_one_clear_line(capsys, stack_home: LocalStack) -> None:
    code, _, err = run_cli(capsys, "replay", "gs://sluice-landing/incoming/kiva_loans/none.csv")

    assert code == 2
    message = " ".join(err.split())  # rich wraps long lines
    assert "expected an object at gs://sluice-landing/incoming/kiva_loans/none.csv" in message


@pytest.mark.slow
def test_replay_prefix_skips_what_was_ingested_unless_forced(
    capsys, stack_home: LocalStack, tmp_path: Path
) -> None:
    count_sql = "SELECT COUNT(*) AS n FROM {dataset}.kiva_lenders WHERE _source_uri LIKE @uris"
    prefix = "gs://sluice-landing/incoming/kiva_lenders/"
    paths = [tmp_path / "backfill-a.csv", tmp_path / "backfill-b.csv"]
    for first, path in zip((1, 3), paths, strict=True):  # lenders merge on loan_id
        path.write_text(f'loan_id,lenders\n{first},"ann, bob"\n{first + 1},cy\n')
    uploaded, _, _ = run_cli(
        capsys, "upload", *map(str, paths), "--dataset=kiva_lenders", "--wait", "--json"
    )
    warehouse = DuckDBWarehouse(stack_home.settings)
    rows_before = warehouse.query(count_sql, {"uris": f"{prefix}backfill-%"})[0]["n"]

    code, out, _ = run_cli(capsys, "replay", "--prefix", f"{prefix}backfill-", "--json")
    forced_code, forced_out, _ = run_cli(
        capsys, "replay", "--prefix", f"{prefix}backfill-", "--force", "--wait", "--json"
    )

    skipped, forced = json.loads(out), json.loads(forced_out)
    assert (uploaded, code, forced_code) == (0, 0, 0)
    assert [(row["uri"], row["status"]) for row in skipped] == [
        (f"{prefix}backfill-a.csv", "skipped"),
        (f"{prefix}backfill-b.csv", "skipped"),
    ]
    assert [(row["status"], row["rows_loaded"]) for row in forced] == [("loaded", 2)] * 2
    assert rows_before == 4
    assert warehouse.query(count_sql, {"uris": f"{prefix}backfill-%"})[0]["n"] == 4  # replaced


def test_replay_force_without_prefix_is_a_usage_error(capsys, stack_home: LocalStack) -> None:
    code, _, err = run_cli(
        capsys, "replay", "gs://sluice-landing/incoming/kiva_loans/x.csv", "--force"
    )

    assert code == 2
    assert "--force: expected --prefix" in " ".join(err.split())


def test_status_lists_landing_files_with_their_state(
    capsys, stack_home: LocalStack, tmp_path: Path
) -> None:
    path = tmp_path / "status-check.csv"
    path.write_text('loan_id,lenders\n91,"ann, bob"\n', encoding="utf-8")
    run_cli(capsys, "upload", str(path), "--dataset=kiva_lenders", "--wait", "--json")

    code, out, _ = run_cli(capsys, "status", "--json")

    status = json.loads(out)
    states = {f["uri"].rsplit("/", 1)[1]: f["state"] for f in status["files"]}
    assert code == 0
    assert states["status-check.csv"] == "loaded"
    assert {"dataset", "generation", "updated"} <= set(status["files"][0])
