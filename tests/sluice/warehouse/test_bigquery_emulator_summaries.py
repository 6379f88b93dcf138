"""The server summaries on the BigQuery emulator (the BigQuery adapter, its own SQL front
end) over contract-valid extremes: two int64-max byte counts and two 1e308 latencies in one
hour build every summary, exactly and without Infinity. Skipped like the rest of the
emulator tier when its virtualenv is missing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from sluice.contracts import Contract
from sluice.cook.summaries import plan_summaries
from sluice.settings import REPO_ROOT
from sluice.warehouse.bigquery import BigQueryWarehouse

from .conftest import emulator_warehouse

pytestmark = pytest.mark.emulator

INT64_MAX = 2**63 - 1
EXTREMES = (
    "INSERT INTO {dataset}.server_logs (timestamp, host, method, path, status, bytes_sent,"
    " latency_ms) VALUES"
    f" (TIMESTAMP '2024-03-16 05:00:00+00', 'web-1', 'GET', '/', 200, {INT64_MAX}, 1e308),"
    f" (TIMESTAMP '2024-03-16 05:10:00+00', 'web-1', 'GET', '/', 503, {INT64_MAX}, 1e308)"
)


@pytest.fixture
def emu(bq_emulator: str, isolated_env: object, contract: Contract) -> Iterator[BigQueryWarehouse]:
    """A BigQuery adapter on the emulator, with fresh datasets and server_logs' tables."""
    warehouse = emulator_warehouse(bq_emulator)
    warehouse.ensure_tables(contract)
    yield warehouse
    warehouse.close()


def not_finite(row: dict[str, Any]) -> bool:
    return any(isinstance(v, float | Decimal) and not math.isfinite(v) for v in row.values())


def test_emulator_server_summaries_of_extreme_rows_are_exact_and_finite(
    emu: BigQueryWarehouse,
) -> None:
    emu.run_script(EXTREMES)
    scripts = [s for s in plan_summaries(REPO_ROOT / "sql")[0] if s[1].startswith("server_")]

    for _, _, sql, _ in scripts:
        emu.run_script(sql)

    tables = {
        table: emu.query(f"SELECT * FROM {{cooked_dataset}}.{table}") for _, table, _, _ in scripts
    }
    assert [row for rows in tables.values() for row in rows if not_finite(row)] == []
    [hour] = tables["server_requests_per_hour"]
    assert (hour["bytes_sent"], hour["mean_latency_ms"]) == (2 * INT64_MAX, 1e308)
    [path] = tables["server_latency_by_path"]
    assert path["mean_latency_ms"] == 1e308
