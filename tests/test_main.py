"""The Cloud Function entry points in main.py, driven through functions-framework's real app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from sluice.contracts import Contract
from sluice.settings import REPO_ROOT, Settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.functions import cook_data


def http_client(target: str) -> FlaskClient:
    import functions_framework

    app = functions_framework.create_app(target=target, source=str(REPO_ROOT / "main.py"))
    return app.test_client()


def test_main_import_does_not_load_beam() -> None:
    code = "import sys, main; sys.exit('apache_beam' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_cook_http_reports_every_table_with_its_rows(
    settings: Settings, contracts: dict[str, Contract], tmp_path: Path
) -> None:
    data = cook_data.build()
    cook_data.load(DuckDBWarehouse(settings), contracts, data, tmp_path / "staged")

    response = http_client("cook").post("/")

    assert response.status_code == 200
    tables = {t["table"]: t for t in response.get_json()["tables"]}
    assert len(tables) == len(list((REPO_ROOT / "sql").glob("*.sql")))
    countries = {r["country_code"] for r in data.rows("kiva_loans")}
    assert tables["kiva_loans_by_country"]["rows"] == len(countries)
    assert all(isinstance(t["seconds"], float) for t in tables.values())


def test_cook_http_with_empty_warehouse_builds_empty_tables() -> None:
    response = http_client("cook").get("/")

    assert response.status_code == 200
    assert {t["rows"] for t in response.get_json()["tables"]} == {0}


def test_cook_http_bad_summary_file_is_500_with_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "10_broken.sql").write_text(
        "CREATE OR REPLACE TABLE {cooked_dataset}.other AS SELECT 1"
    )
    monkeypatch.setenv("SLUICE_SQL_DIR", str(tmp_path))

    response = http_client("cook").post("/")

    assert response.status_code == 500
    assert "10_broken.sql" in response.get_json()["error"]
