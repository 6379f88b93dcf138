"""DuckDB adapter under lock contention: a second process holds the database file."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from sluice.contracts import Contract
from sluice.errors import TransientError
from sluice.schema import SourceRef
from sluice.settings import Settings
from sluice.warehouse.duckdb import DuckDBWarehouse

from .conftest import make_record

SOURCE_A = SourceRef("gs://landing/incoming/server_logs/a.csv", 1700000000000001)

HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_lock(warehouse: DuckDBWarehouse, seconds: float) -> subprocess.Popen[str]:
    """Start a process that opens the warehouse file for ``seconds``; return once it holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(warehouse.path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_writes_wait_for_another_process_holding_the_file(
    warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    holder = hold_lock(warehouse, 1.0)
    started = time.monotonic()

    warehouse.record_ingestion(make_record(contract, SOURCE_A, 0, 0, "rejected", "late"))

    waited = time.monotonic() - started
    assert holder.wait(timeout=10) == 0
    assert waited > 0.3
    assert warehouse.query("SELECT reason FROM {dataset}.ingestion_log") == [{"reason": "late"}]


def test_writes_give_up_with_transient_error_when_the_lock_stays_held(
    settings: Settings, warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    impatient = DuckDBWarehouse(settings, lock_timeout=0.3)
    holder = hold_lock(warehouse, 3.0)
    try:
        with pytest.raises(TransientError, match=r"write lock within 0\.3 s"):
            impatient.record_ingestion(make_record(contract, SOURCE_A, 0, 0, "rejected", "x"))
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_threads_of_one_process_connecting_at_once_never_fail(
    warehouse: DuckDBWarehouse, contract: Contract
) -> None:
    warehouse.ensure_tables(contract)
    failures: list[BaseException] = []

    def query_repeatedly() -> None:
        try:
            for _ in range(150):  # one thread's close races the other's connect (DuckDB 2.0)
                warehouse.query("SELECT COUNT(*) AS n FROM {dataset}.ingestion_log")
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=query_repeatedly) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
