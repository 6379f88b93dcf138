"""The server summaries on the BigQuery emulator (the BigQuery adapter, its own SQL front
end) over contract-valid extremes: two int64-max byte counts and two 1e308 latencies in one
hour build every summary, exactly and without Infinity; and the access-log summaries over a
few lines with int64-max sizes, '-' fields and request lines that were not HTTP, where
BigQuery's own NULL ordering would rank a NULL path first. Skipped like the rest of the
emulator tier when its virtualenv is missing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from sluice.contracts import Contract
from sluice.cook.summaries import plan_summaries
from sluice.settings import REPO_ROOT
from sluice.warehouse.bigquery import BigQueryWarehouse

from .conftest import emulator_warehouse

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytestmark = pytest.mark.emulator

pytest_plugins = ["tests.gcs_fixtures"]

INT64_MAX = 2**63 - 1
EXTREMES = (
    "INSERT INTO {dataset}.server_logs (timestamp, host, method, path, status, bytes_sent,"
    " latency_ms) VALUES"
    f" (TIMESTAMP '2024-03-16 05:00:00+00', 'web-1', 'GET', '/', 200, {INT64_MAX}, 1e308),"
    f" (TIMESTAMP '2024-03-16 05:10:00+00', 'web-1', 'GET', '/', 503, {INT64_MAX}, 1e308)"
)


@pytest.fixture
def emu(
    bq_emulator: str, isolated_env: object, contract: Contract, gcs: GcsBuckets
) -> Iterator[BigQueryWarehouse]:
    """A BigQuery adapter on the emulator, with fresh datasets and server_logs' tables."""
    warehouse = emulator_warehouse(bq_emulator, gcs)
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


ACCESS_LINES = (
    "INSERT INTO {dataset}.access_logs (client_ip, timestamp, method, path, status,"
    " bytes_sent, referrer, user_agent, request, country_code, is_bot) VALUES"
    f" ('8.8.8.1', TIMESTAMP '2024-03-16 05:00:00+00', 'GET', '/', 200, {INT64_MAX},"
    "  'https://a.example/', 'Mozilla/5.0', 'GET / HTTP/1.1', 'US', FALSE),"
    # Loaded before the contract had is_bot: neither human nor bot.
    f" ('8.8.8.1', TIMESTAMP '2024-03-16 05:10:00+00', 'GET', '/', 200, {INT64_MAX},"
    "  NULL, 'Mozilla/5.0', 'GET / HTTP/1.1', 'US', NULL),"
    " ('198.51.100.2', TIMESTAMP '2024-03-16 05:20:00+00', NULL, NULL, 400, 157, NULL, NULL,"
    "  '\\\\x16\\\\x03\\\\x01', NULL, TRUE),"
    " ('198.51.100.2', TIMESTAMP '2024-03-16 23:59:59+00', 'GET', '/gone', 404, NULL, NULL,"
    "  NULL, 'GET /gone HTTP/1.1', NULL, TRUE),"
    " ('41.182.0.3', TIMESTAMP '2024-03-17 00:00:00+00', 'GET', '/gone', 999, NULL,"
    "  'https://a.example/', 'curl/8.5.0', 'GET /gone HTTP/1.1', 'NA', TRUE),"
    # A second line that was not HTTP ties the NULL path with / and /gone: it ranks last.
    " ('41.182.0.3', TIMESTAMP '2024-03-17 00:00:01+00', NULL, NULL, 408, 0, NULL,"
    "  'curl/8.5.0', '-', 'NA', TRUE)"
)


def test_emulator_access_summaries_count_every_line_and_rank_null_paths_last(
    emu: BigQueryWarehouse, contracts: dict[str, Contract]
) -> None:
    emu.ensure_tables(contracts["access_logs"])
    emu.run_script(ACCESS_LINES)
    scripts = [s for s in plan_summaries(REPO_ROOT / "sql")[0] if s[1].startswith("access_")]

    for _, _, sql, _ in scripts:
        emu.run_script(sql)

    hours = emu.query("SELECT * FROM {cooked_dataset}.access_requests_per_hour ORDER BY hour")
    days = emu.query("SELECT * FROM {cooked_dataset}.access_requests_per_day ORDER BY day")
    paths = emu.query("SELECT * FROM {cooked_dataset}.access_top_paths ORDER BY path_rank")
    assert [(h["requests"], h["bytes_sent"], h["errors"]) for h in hours] == [
        (3, 2 * INT64_MAX + 157, 1),
        (1, None, 1),
        (2, 0, 1),
    ]
    counted = ("requests", "unique_visitors", "requests_4xx", "requests_other", "invalid_requests")
    assert [[d[c] for c in (*counted, "error_rate")] for d in days] == [
        [4, 2, 2, 0, 1, 0.5],
        [2, 1, 1, 1, 1, 0.5],
    ]
    assert [(p["path"], p["requests"]) for p in paths] == [("/", 2), ("/gone", 2), (None, 2)]
    countries = emu.query("SELECT * FROM {cooked_dataset}.access_traffic_by_country")
    assert {
        c["country_code"]: (c["requests"], c["bytes_sent"], c["unique_visitors"]) for c in countries
    } == {
        "US": (2, 2 * INT64_MAX, 1),
        None: (2, 157, 1),
        "NA": (2, 0, 1),
    }
    bots = emu.query("SELECT * FROM {cooked_dataset}.access_bots_per_day ORDER BY day")
    split = ("requests", "human_requests", "bot_requests", "unclassified_requests", "bot_share")
    assert [[b[c] for c in split] for b in bots] == [[4, 1, 2, 1, 0.5], [2, 0, 2, 0, 1.0]]
