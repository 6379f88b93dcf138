"""The command line with one broken contract and one broken SQL file: the other datasets work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sluice.settings import REPO_ROOT
from tests.local.test_cli import run_cli
from tests.sluice.broken_config import (
    BROKEN_DATASET,
    BROKEN_SQL,
    use_broken_contracts,
    use_broken_sql,
)


def test_status_lists_the_broken_contract_and_exits_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_broken_contracts(monkeypatch, tmp_path)

    code, out, _ = run_cli(capsys, "status", "--json")

    assert code == 0
    [broken] = json.loads(out)["broken_contracts"]
    assert broken["dataset"] == BROKEN_DATASET and broken["file"].endswith("server_logs.yaml")


def test_check_prints_one_line_per_broken_file_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_broken_contracts(monkeypatch, tmp_path)
    use_broken_sql(monkeypatch, tmp_path)

    code, out, _ = run_cli(capsys, "check")

    lines = out.splitlines()
    assert code == 2 and len(lines) == 2
    assert lines[0].startswith(str(tmp_path / "contracts" / f"{BROKEN_DATASET}.yaml"))
    assert lines[1].startswith(str(tmp_path / "sql" / BROKEN_SQL))


def test_check_of_the_shipped_files_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "check")

    assert code == 0 and out.startswith("ok:")


def test_ingest_of_another_dataset_loads_despite_a_broken_contract(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_broken_contracts(monkeypatch, tmp_path)
    lenders = tmp_path / "lenders.csv"
    lenders.write_text('loan_id,lenders\n1,"ann, bob"\n2,carl\n', encoding="utf-8")

    code, out, _ = run_cli(capsys, "ingest", str(lenders), "--dataset=kiva_lenders", "--json")

    [result] = json.loads(out)
    assert code == 0
    assert (result["status"], result["rows_loaded"], result["rows_dead"]) == ("loaded", 2, 0)


def test_status_lists_a_contract_its_table_cannot_take_and_exits_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    contracts = tmp_path / "contracts"
    shutil.copytree(REPO_ROOT / "contracts", contracts)
    monkeypatch.setenv("SLUICE_CONTRACTS_DIR", str(contracts))
    assert run_cli(capsys, "status")[0] == 0  # creates every table as the contracts say
    path = contracts / "kiva_lenders.yaml"
    path.write_text(path.read_text().replace("lenders, type: string", "lenders, type: integer"))

    code, out, _ = run_cli(capsys, "status", "--json")

    [broken] = json.loads(out)["broken_contracts"]
    assert code == 0
    assert broken["dataset"] == "kiva_lenders" and "breaking change" in broken["reason"]
