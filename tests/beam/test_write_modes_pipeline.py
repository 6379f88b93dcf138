"""Kiva snapshots through the whole pipeline: `write: merge` on loan_id.

Two days' full exports repeat most loans; the table must hold each loan once, in the newest
file's version. A loan repeated within one file is a dead letter naming its first line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from beam.pipeline import run
from sluice.schema import IngestionRecord
from sluice.settings import REPO_ROOT

HEADER = "loan_id,lenders\n"


def lenders_file(path: Path, rows: list[tuple[int, str]]) -> Path:
    path.write_text(HEADER + "".join(f'{loan},"{names}"\n' for loan, names in rows))
    return path


def ingest(tmp_path: Path, path: Path, generation: int) -> IngestionRecord:
    return run(
        [
            f"--input={path}",
            "--dataset=kiva_lenders",
            f"--source_uri=gs://landing/incoming/kiva_lenders/{path.name}",
            f"--source_generation={generation}",
            f"--job_name=sluice-{path.stem}-{generation}",
            f"--warehouse_target={tmp_path / 'w.duckdb'}",
            f"--staging_location={tmp_path / 'staging'}",
        ]
    )


def query(tmp_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_two_snapshot_files_give_each_loan_once(tmp_path: Path) -> None:
    first = lenders_file(tmp_path / "day1.csv", [(1, "ann"), (2, "bo"), (3, "cy")])
    second = lenders_file(tmp_path / "day2.csv", [(2, "bo, dee"), (3, "cy"), (4, "eve")])

    ingest(tmp_path, second, 2000)  # the newer export's job happens to finish first
    ingest(tmp_path, first, 1000)

    rows = query(
        tmp_path,
        "SELECT loan_id, lenders, _source_generation FROM sluice.kiva_lenders ORDER BY 1",
    )
    assert rows == [(1, "ann", 1000), (2, "bo, dee", 2000), (3, "cy", 2000), (4, "eve", 2000)]


@pytest.mark.parametrize("split_bytes", [None, "1024"])
def test_a_key_repeated_within_a_file_is_a_dead_letter_naming_the_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split_bytes: str | None
) -> None:
    """Split into ranges, the repeats of line 2 sit in other ranges than line 2."""
    if split_bytes:
        monkeypatch.setenv("SLUICE_SPLIT_BYTES", split_bytes)
    rows = [(loan, f"lender {loan}") for loan in range(1, 400)]
    rows[150] = (1, "again, with a comma")
    rows[300] = (1, "and again")
    rows[350] = (7, "seven twice")
    path = lenders_file(tmp_path / "loans_lenders.csv", rows)

    record = ingest(tmp_path, path, 1000)

    assert (record.status, record.rows_in, record.rows_loaded, record.rows_dead) == (
        "loaded",
        399,
        396,
        3,
    )
    dead = query(
        tmp_path, "SELECT line, raw_text, reason FROM sluice.kiva_lenders_dead_letter ORDER BY 1"
    )
    assert dead == [
        (152, '1,"again, with a comma"',
         "primary key loan_id=1: expected once per file, found first on line 2"),
        (302, '1,"and again"',
         "primary key loan_id=1: expected once per file, found first on line 2"),
        (352, '7,"seven twice"',
         "primary key loan_id=7: expected once per file, found first on line 8"),
    ]  # fmt: skip
    kept = query(tmp_path, "SELECT lenders FROM sluice.kiva_lenders WHERE loan_id IN (1, 7)")
    assert sorted(kept) == [("lender 1",), ("lender 7",)]
    assert query(tmp_path, "SELECT count(*), count(DISTINCT loan_id) FROM sluice.kiva_lenders") == [
        (396, 396)
    ]


def test_a_breaking_contract_change_rejects_the_file_at_once_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retrying cannot help, so the file is rejected on the first run, not after N."""
    contracts = tmp_path / "contracts"
    shutil.copytree(REPO_ROOT / "contracts", contracts)
    monkeypatch.setenv("SLUICE_CONTRACTS_DIR", str(contracts))
    ingest(tmp_path, lenders_file(tmp_path / "day1.csv", [(1, "ann")]), 1000)
    path = contracts / "kiva_lenders.yaml"
    path.write_text(
        path.read_text().replace("{name: lenders, type: string", "{name: lenders, type: integer")
    )

    record = ingest(tmp_path, lenders_file(tmp_path / "day2.csv", [(2, "7")]), 2000)

    assert (record.status, record.rows_loaded) == ("rejected", 0)
    assert "breaking change" in record.reason and "declare table_version: 2" in record.reason
    assert query(tmp_path, "SELECT loan_id FROM sluice.kiva_lenders") == [(1,)]
