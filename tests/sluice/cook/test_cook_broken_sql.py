"""One broken SQL file (and an editor lock file beside it) stops only itself and what reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.cook.summaries import cook_and_check_alerts
from sluice.settings import REPO_ROOT, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.broken_config import BROKEN_SQL, DEPENDANT, use_broken_sql


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
