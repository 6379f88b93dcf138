"""Kiva's exports are full snapshots: two days' files must not double-count any loan."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from local.ingest import ingest_file
from sluice.contracts import Contract
from sluice.cook.summaries import cook
from sluice.settings import REPO_ROOT, Settings
from sluice.warehouse.duckdb import DuckDBWarehouse

SAMPLE = REPO_ROOT / "data" / "samples" / "kiva_loans.csv"


def snapshot(path: Path, records: list[dict[str, str]], mtime: int) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    path.write_text(out.getvalue(), encoding="utf-8")
    os.utime(path, (mtime, mtime))  # the generation of a local file is its mtime
    return path


def test_two_snapshot_files_give_distinct_loans_in_every_kiva_summary(
    tmp_path: Path, settings: Settings, contracts: dict[str, Contract]
) -> None:
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))[:300]
    day1 = snapshot(tmp_path / "loans_day1.csv", records[:200], 1_700_000_000)
    # The next export repeats 150 of the loans (one funded since) and adds 100 new ones.
    repeated = [dict(r) for r in records[50:200]]
    repeated[0]["funded_amount"] = repeated[0]["loan_amount"]
    day2 = snapshot(tmp_path / "loans_day2.csv", repeated + records[200:], 1_700_086_400)

    outcomes = [ingest_file(path, contracts["kiva_loans"], settings) for path in (day1, day2)]
    warehouse = DuckDBWarehouse(settings)
    cook(warehouse, settings)

    assert [o.record.rows_in for o in outcomes] == [200, 250]
    [table] = warehouse.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT loan_id) AS loans FROM {dataset}.kiva_loans"
    )
    by_country = warehouse.query(
        "SELECT SUM(loans) AS n FROM {cooked_dataset}.kiva_loans_by_country"
    )
    by_sector = warehouse.query("SELECT SUM(loans) AS n FROM {cooked_dataset}.kiva_loans_by_sector")
    # Both files loaded 448 rows between them (one sample row is a dead letter in each).
    assert sum(o.record.rows_loaded for o in outcomes) == 448
    assert table == {"n": 299, "loans": 299}
    assert by_country == by_sector == [{"n": 299}]
    funded = warehouse.query(
        "SELECT funded_amount, _source_uri FROM {dataset}.kiva_loans WHERE loan_id = @id",
        {"id": int(repeated[0]["loan_id"])},
    )
    assert funded == [
        {"funded_amount": float(repeated[0]["loan_amount"]), "_source_uri": str(day2)}
    ]
