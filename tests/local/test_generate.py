"""The data generator: deterministic, contract-shaped, nasty where the real data is nasty."""

from __future__ import annotations

import csv
import gzip
import math
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from local.generate import DATASETS, generate
from sluice.contracts import Column, Contract
from sluice.errors import ConfigError
from sluice.settings import REPO_ROOT

SAMPLES = REPO_ROOT / "data" / "samples"
# (file, dataset, rows, dirty) of each committed sample, all with seed 7 (see
# data/samples/README.md).
SAMPLE_RECIPES = (
    ("kiva_loans.csv", "kiva_loans", 2000, 0.005),
    ("kiva_lenders.csv", "kiva_lenders", 2000, 0.005),
    ("server_logs.csv", "server_logs", 5000, 0.002),
    ("access_logs.log.gz", "access_logs", 5000, 0.004),
    ("http_requests.jsonl.gz", "http_requests", 2000, 0.005),
)
INTEGER = re.compile(r"[+-]?\d+(\.0*)?")
FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def read_records(path: Path) -> list[tuple[int, list[str]]]:
    """(physical line where the record starts, fields) of every record, header included."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        records, start = [], 1
        for fields in reader:
            records.append((start, fields))
            start = reader.line_num + 1
    return records


def column_values(path: Path, name: str) -> list[str]:
    """Every value of column ``name`` (the file must be clean)."""
    (_, header), *rows = read_records(path)
    position = header.index(name)
    return [fields[position] for _, fields in rows]


def contract_problem(fields: list[str], contract: Contract) -> str | None:
    """An independent reading of the contract's value rules; None when the record is valid."""
    if len(fields) != len(contract.columns):
        return f"{len(fields)} fields"
    for value, column in zip(fields, contract.columns, strict=True):
        if value == "":
            if not column.nullable:
                return f"{column.name} empty"
            continue
        if not value_is_valid(value, column):
            return f"{column.name}={value!r}"
    return None


def value_is_valid(value: str, column: Column) -> bool:
    """Whether one non-empty value satisfies its column's type and allowed set."""
    if column.allowed and value not in column.allowed:
        return False
    if column.type == "integer":
        return INTEGER.fullmatch(value) is not None
    if column.type == "float":
        return FLOAT.fullmatch(value) is not None
    if column.type == "timestamp":
        try:
            if column.format == "iso8601":
                datetime.fromisoformat(value)
            else:
                datetime.strptime(value, column.format or "")
        except ValueError:
            return False
    return True


def test_generate_is_byte_identical_for_the_same_arguments(tmp_path: Path) -> None:
    first = generate("kiva_loans", 300, tmp_path / "a.csv", seed=5, dirty=0.05)
    second = generate("kiva_loans", 300, tmp_path / "b.csv", seed=5, dirty=0.05)
    other_seed = generate("kiva_loans", 300, tmp_path / "c.csv", seed=6, dirty=0.05)

    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.dirty_lines == second.dirty_lines
    assert first.path.read_bytes() != other_seed.path.read_bytes()


def test_generate_gzip_is_deterministic_and_holds_the_plain_bytes(tmp_path: Path) -> None:
    plain = generate("server_logs", 400, tmp_path / "logs.csv", seed=2)
    packed = generate("server_logs", 400, tmp_path / "logs.csv.gz", seed=2)
    flagged = generate("server_logs", 400, tmp_path / "other-name.csv", seed=2, gzip=True)

    assert packed.path.read_bytes()[:2] == b"\x1f\x8b"
    assert packed.path.read_bytes() == flagged.path.read_bytes()  # no name or mtime inside
    assert gzip.decompress(packed.path.read_bytes()) == plain.path.read_bytes()
    assert packed.bytes == packed.path.stat().st_size < plain.bytes


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_generate_header_is_the_contract_columns(
    tmp_path: Path, contracts: dict[str, Contract], dataset: str
) -> None:
    result = generate(dataset, 50, tmp_path / f"{dataset}.csv", seed=1)

    (_, header), *_ = read_records(result.path)
    assert header == contracts[dataset].column_names


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_generate_clean_file_round_trips_and_meets_the_contract(
    tmp_path: Path, contracts: dict[str, Contract], dataset: str
) -> None:
    result = generate(dataset, 400, tmp_path / f"{dataset}.csv", seed=3)

    _, *records = read_records(result.path)
    assert len(records) == result.rows > 0
    assert result.dirty_rows == 0
    problems = [(line, contract_problem(f, contracts[dataset])) for line, f in records]
    assert [p for p in problems if p[1] is not None] == []


@pytest.mark.parametrize(("dataset", "dirty"), [("kiva_loans", 0.05), ("kiva_lenders", 0.1),
                                                ("server_logs", 0.03)])  # fmt: skip
def test_generate_dirty_rows_are_exactly_the_contract_violations(
    tmp_path: Path, contracts: dict[str, Contract], dataset: str, dirty: float
) -> None:
    result = generate(dataset, 600, tmp_path / f"{dataset}.csv", seed=11, dirty=dirty)

    _, *records = read_records(result.path)
    bad_lines = [line for line, f in records if contract_problem(f, contracts[dataset])]
    assert result.dirty_rows == math.floor(dirty * result.rows + 0.5) > 0
    assert list(result.dirty_lines) == bad_lines
    assert len(result.dirty_reasons) == result.dirty_rows
    with result.path.open("rb") as handle:  # still well formed: quotes balance
        assert handle.read().count(b'"') % 2 == 0


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_generate_dirty_targets_agree_with_the_contract(
    contracts: dict[str, Contract], dataset: str
) -> None:
    targets = DATASETS[dataset].dirty_targets
    columns = {c.name: c for c in contracts[dataset].columns}

    assert all(columns[n].type in ("integer", "float") for n in targets.numeric)
    assert all(columns[n].type == "timestamp" for n in targets.timestamps)
    assert set(targets.allowed) == {c.name for c in columns.values() if c.allowed}
    assert set(targets.not_nullable) == {c.name for c in columns.values() if not c.nullable}


def test_generate_dirty_leaves_the_clean_rows_unchanged(tmp_path: Path) -> None:
    clean = generate("kiva_loans", 500, tmp_path / "clean.csv", seed=4)
    dirty = generate("kiva_loans", 500, tmp_path / "dirty.csv", seed=4, dirty=0.1)

    dirty_records = read_records(dirty.path)
    broken = {i for i, (line, _) in enumerate(dirty_records) if line in dirty.dirty_lines}
    clean_fields = [f for i, (_, f) in enumerate(read_records(clean.path)) if i not in broken]
    assert len(broken) == 50
    assert clean_fields == [f for i, (_, f) in enumerate(dirty_records) if i not in broken]


def test_kiva_loans_carry_the_real_files_traps(tmp_path: Path) -> None:
    result = generate("kiva_loans", 400, tmp_path / "loans.csv", seed=8)

    descriptions = column_values(result.path, "description")
    countries = dict(zip(column_values(result.path, "country_code"),
                         column_values(result.path, "country_name"), strict=True))  # fmt: skip
    names = column_values(result.path, "loan_name")
    assert any("\n" in d for d in descriptions)
    assert any("<br />" in d or "&amp;" in d for d in descriptions)
    assert any('"' in d for d in descriptions)
    assert countries.get("NA") == "Namibia"
    assert any("\t" in n for n in names)
    assert any(re.search("[А-Яа-я]", n) for n in names + descriptions)
    assert any(t.endswith(" ") for t in column_values(result.path, "town_name"))
    for column in ("loan_use", "tags", "borrower_genders", "borrower_pictured"):
        assert any(", " in v for v in column_values(result.path, column)), column
    assert any(p.endswith(".0") for p in column_values(result.path, "partner_id"))


def test_kiva_loans_follow_the_real_distributions(tmp_path: Path) -> None:
    result = generate("kiva_loans", 5000, tmp_path / "loans.csv", seed=9)

    sectors = Counter(column_values(result.path, "sector_name"))
    intervals = Counter(column_values(result.path, "repayment_interval"))
    status = Counter(column_values(result.path, "status"))
    amounts = sorted(float(a) for a in column_values(result.path, "loan_amount"))
    expirations = column_values(result.path, "planned_expiration_time")
    countries = Counter(column_values(result.path, "country_code"))
    assert sectors.most_common(1)[0][0] == "Agriculture"
    assert 0.24 < sectors["Agriculture"] / 5000 < 0.31
    assert (intervals["monthly"] + intervals["irregular"]) / 5000 > 0.85
    assert 0.03 < 1 - status["funded"] / 5000 < 0.065
    assert amounts[0] >= 25 and amounts[2500] == pytest.approx(500, rel=0.1)
    assert 0.2 < expirations.count("") / 5000 < 0.3
    assert [c for c, _ in countries.most_common(2)] == ["PH", "KE"]


def test_kiva_lenders_list_loans_of_the_same_seed(tmp_path: Path) -> None:
    loans = generate("kiva_loans", 1500, tmp_path / "loans.csv", seed=12)
    lenders = generate("kiva_lenders", 1500, tmp_path / "lenders.csv", seed=12)

    lenders_of = dict(zip(column_values(loans.path, "loan_id"),
                          column_values(loans.path, "num_lenders_total"), strict=True))  # fmt: skip
    listed = dict(zip(column_values(lenders.path, "loan_id"),
                      column_values(lenders.path, "lenders"), strict=True))  # fmt: skip
    assert set(listed) <= set(lenders_of)
    assert 0.95 * loans.rows < lenders.rows < loans.rows
    assert all(int(lenders_of[i]) == len(names.split(", ")) for i, names in listed.items())
    busiest = Counter(n for names in listed.values() for n in names.split(", ")).most_common(1)
    assert busiest[0][1] > 20  # a few lenders back many loans


def test_server_logs_have_a_daily_peak_and_time_order(tmp_path: Path) -> None:
    result = generate("server_logs", 5000, tmp_path / "logs.csv", seed=7)

    instants = [datetime.fromisoformat(t) for t in column_values(result.path, "timestamp")]
    per_hour = Counter(t.astimezone(UTC).hour for t in instants)
    statuses = Counter(s[0] for s in column_values(result.path, "status"))
    assert instants == sorted(instants)
    assert max(per_hour.values()) > 2 * min(per_hour.values())
    assert 2 <= len({t.astimezone(UTC).date() for t in instants}) <= 6
    assert statuses["2"] > 0.8 * 5000 and statuses["5"] > 0
    assert any(":" in ip for ip in column_values(result.path, "client_ip"))
    assert any("," in ua for ua in column_values(result.path, "user_agent"))


def test_generate_reports_progress_and_rejects_bad_arguments(tmp_path: Path) -> None:
    seen: list[int] = []

    generate("kiva_lenders", 120, tmp_path / "l.csv", progress=seen.append)

    assert seen[-1] == 120
    with pytest.raises(ConfigError, match="expected a dataset"):
        generate("nope", 10, tmp_path / "x.csv")
    with pytest.raises(ConfigError, match="--dirty"):
        generate("kiva_loans", 10, tmp_path / "x.csv", dirty=1.5)
    with pytest.raises(ConfigError, match="--rows"):
        generate("kiva_loans", -1, tmp_path / "x.csv")


@pytest.mark.parametrize(("name", "dataset", "rows", "dirty"), SAMPLE_RECIPES)
def test_committed_samples_are_what_generate_produces(
    tmp_path: Path, name: str, dataset: str, rows: int, dirty: float
) -> None:
    result = generate(dataset, rows, tmp_path / name, seed=7, dirty=dirty)

    assert result.path.read_bytes() == (SAMPLES / name).read_bytes()
