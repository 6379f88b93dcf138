"""One broken SQL file (and an editor lock file beside it) stops only itself and what reads it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sluice.cook.summaries import cook_and_check_alerts
from sluice.settings import REPO_ROOT, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.broken_config import (
    BROKEN_DATASET,
    BROKEN_SQL,
    DEPENDANT,
    use_broken_contracts,
    use_broken_sql,
)


def test_cook_builds_every_other_summary_skips_dependants_and_checks_alerts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_broken_sql(monkeypatch, tmp_path)
    settings = load_settings()
    warehouse = DuckDBWarehouse(settings)
    try:
        report = cook_and_check_alerts(warehouse, settings)
    finally:
        warehouse.close()

    [failed] = report.failed
    assert failed.file.endswith(BROKEN_SQL) and "\n" not in str(failed)
    assert [s.table for s in report.skipped] == [DEPENDANT]
    built = {t.table for t in report.tables}
    assert len(built) == len(list((REPO_ROOT / "sql").glob("*.sql"))) - 2
    assert {a["dataset"] for a in (alert.as_dict() for alert in report.alerts)} >= {"kiva_loans"}


def test_a_breaking_contract_change_stops_only_its_own_dataset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The table holds `lenders` as text; the edited contract says integer."""
    contracts = tmp_path / "contracts"
    shutil.copytree(REPO_ROOT / "contracts", contracts)
    monkeypatch.setenv("SLUICE_CONTRACTS_DIR", str(contracts))
    settings = load_settings()
    warehouse = DuckDBWarehouse(settings)
    cook_and_check_alerts(warehouse, settings)  # creates every table as the contracts say
    path = contracts / "kiva_lenders.yaml"
    path.write_text(path.read_text().replace("lenders, type: string", "lenders, type: integer"))

    report = cook_and_check_alerts(warehouse, settings)

    [broken] = report.broken_contracts
    assert broken.dataset == "kiva_lenders" and "declare table_version: 2" in broken.reason
    assert report.failed == [] and {t.table for t in report.tables} >= {"server_peak_hour"}
    assert {alert.dataset for alert in report.alerts} >= {"kiva_loans", "server_logs"}


def test_a_broken_contract_is_an_alert_until_it_is_fixed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = use_broken_contracts(monkeypatch, tmp_path)
    settings = load_settings()
    warehouse = DuckDBWarehouse(settings)

    broken = cook_and_check_alerts(warehouse, settings)
    shutil.copy(REPO_ROOT / "contracts" / f"{BROKEN_DATASET}.yaml", directory)
    fixed = cook_and_check_alerts(warehouse, settings)

    [alert] = [a for a in broken.alerts if a.rule == "broken_contract"]
    assert (alert.dataset, alert.alert) == (BROKEN_DATASET, "broken_contract")
    assert f"{BROKEN_DATASET}.yaml is broken" in alert.message and "integr" in alert.message
    assert [a for a in fixed.alerts if a.rule == "broken_contract"] == []
    assert {a.dataset for a in fixed.alerts} >= {BROKEN_DATASET}  # its freshness rule now
