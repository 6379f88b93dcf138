"""Validation at the door, on small files built here and the shipped contracts."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import time
import tracemalloc
from pathlib import Path

import pytest

from sluice.contracts import Contract
from sluice.ingest.validation import MAX_LISTED, Problem, ValidationReport, validate_stream
from sluice.settings import load_settings

KIVA_ROW = {
    "loan_id": "1000001",
    "loan_name": "Гулмире",
    "original_language": "Russian",
    "description": 'Doña Maria sells <b>vegetables</b> &amp; fruit.\n\nShe says "thank you".',
    "description_translated": "",
    "funded_amount": "475.0",
    "loan_amount": "500.0",
    "status": "funded",
    "activity_name": "Vegetables",
    "sector_name": "Food",
    "loan_use": "to buy seeds, tools and a cart",
    "country_code": "NA",
    "country_name": "Namibia",
    "town_name": "Windhoek ",
    "currency_policy": "shared",
    "currency_exchange_coverage_rate": "0.1",
    "currency": "NAD",
    "partner_id": "123.0",
    "posted_time": "2014-01-15 04:48:22.000 +0000",
    "planned_expiration_time": "",
    "disburse_time": "2014-01-10 08:00:00.000 +0000",
    "raised_time": "2014-01-20 10:00:00.000 +0000",
    "lender_term": "12",
    "num_lenders_total": "15",
    "num_journal_entries": "1",
    "num_bulk_entries": "1",
    "tags": "#Woman Owned Biz, user_favorite",
    "borrower_genders": "female, female",
    "borrower_pictured": "true, true",
    "repayment_interval": "monthly",
    "distribution_model": "field_partner",
}
LENDERS = b'loan_id,lenders\n483693,"muc888, sam4326, camaran3922"\n483694,solo\n'


def to_csv(rows: list[list[str]]) -> bytes:
    """Rows written by the csv module (an independent writer), UTF-8, \\n-terminated."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def kiva_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    """A kiva_loans file with ``header`` (default: the contract's order) and ``rows``."""
    names = header or list(KIVA_ROW)
    return to_csv([names] + [[row[name] for name in names] for row in rows])


def validate(data: bytes, contract: Contract, **overrides: object) -> ValidationReport:
    """Validate in-memory bytes with settings overridden as given."""
    return validate_stream(io.BytesIO(data), contract, load_settings(**overrides))


def codes(problems: tuple[Problem, ...]) -> list[str]:
    """The codes of ``problems``, in order."""
    return [p.code for p in problems]


def test_validate_stream_accepts_good_plain_file(contracts: dict[str, Contract]) -> None:
    data = kiva_csv([KIVA_ROW, {**KIVA_ROW, "loan_id": "1000002"}])

    report = validate(data, contracts["kiva_loans"], chunk_bytes=300)

    assert report.accepted and report.problems == () and report.warnings == ()
    assert report.reason is None
    assert report.records == 2
    assert report.header == tuple(KIVA_ROW)
    assert report.bytes_read == len(data)
    assert report.compressed is False


def test_validate_stream_accepts_gzip_file(contracts: dict[str, Contract]) -> None:
    data = kiva_csv([KIVA_ROW] * 3)

    report = validate(gzip.compress(data), contracts["kiva_loans"])

    assert report.accepted
    assert report.compressed is True
    assert report.records == 3
    assert report.bytes_read == len(data)


def test_validate_stream_rejects_truncated_gzip(contracts: dict[str, Contract]) -> None:
    packed = gzip.compress(kiva_csv([KIVA_ROW] * 50))

    report = validate(packed[: len(packed) // 2], contracts["kiva_loans"])

    assert not report.accepted
    assert codes(report.problems) == ["gzip"]
    assert "truncated" in report.problems[0].message


def test_validate_stream_rejects_corrupt_gzip(contracts: dict[str, Contract]) -> None:
    packed = bytearray(gzip.compress(kiva_csv([KIVA_ROW] * 50)))
    packed[-6] ^= 0xFF  # the CRC-32 trailer no longer matches the data

    report = validate(bytes(packed), contracts["kiva_loans"])

    assert codes(report.problems) == ["gzip"]
    assert report.compressed is True


def test_validate_stream_stops_a_gzip_bomb_at_the_size_limit(
    contracts: dict[str, Contract],
) -> None:
    bomb = gzip.compress(b"loan_id,lenders\n" + b"0,0\n" * (50 * 1024**2 // 4), 1)
    limit = 1024**2
    started = time.perf_counter()

    report = validate(bomb, contracts["kiva_lenders"], max_file_bytes=limit)

    assert codes(report.problems) == ["too_large"]
    assert report.bytes_read == limit + 1  # stopped one byte past the limit
    assert time.perf_counter() - started < 2


def test_validate_stream_rejects_plain_file_over_the_limit(
    contracts: dict[str, Contract],
) -> None:
    data = LENDERS * 10

    report = validate(data, contracts["kiva_lenders"], max_file_bytes=len(data) - 1)

    assert codes(report.problems) == ["too_large"]
    assert str(len(data) - 1) in report.problems[0].message


def test_validate_stream_accepts_file_exactly_at_the_limit(
    contracts: dict[str, Contract],
) -> None:
    report = validate(LENDERS, contracts["kiva_lenders"], max_file_bytes=len(LENDERS))

    assert report.accepted


@pytest.mark.parametrize("data", [b"", b"  \n\r\n\t \n", b"\xef\xbb\xbf"])
def test_validate_stream_rejects_empty_file(contracts: dict[str, Contract], data: bytes) -> None:
    report = validate(data, contracts["kiva_lenders"])

    assert codes(report.problems) == ["empty_file"]
    assert report.records == 0


def test_validate_stream_rejects_blank_first_line_before_data(
    contracts: dict[str, Contract],
) -> None:
    report = validate(b"   \n" + LENDERS, contracts["kiva_lenders"])

    assert codes(report.problems) == ["header"]
    assert report.problems[0].line == 1


def test_validate_stream_accepts_header_only_file_with_warning(
    contracts: dict[str, Contract],
) -> None:
    report = validate(b"loan_id,lenders\n", contracts["kiva_lenders"])

    assert report.accepted
    assert report.records == 0
    assert codes(report.warnings) == ["empty_file"]


def test_validate_stream_accepts_utf8_byte_order_mark(contracts: dict[str, Contract]) -> None:
    report = validate(b"\xef\xbb\xbf" + LENDERS, contracts["kiva_lenders"])

    assert report.accepted
    assert report.header == ("loan_id", "lenders")


@pytest.mark.parametrize(("codec", "name"), [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_validate_stream_rejects_utf16_and_utf32(
    contracts: dict[str, Contract], codec: str, name: str
) -> None:
    report = validate(LENDERS.decode().encode(codec), contracts["kiva_lenders"])

    assert codes(report.problems) == ["encoding"]
    assert f"expected UTF-8, found a {name} byte-order mark" in report.problems[0].message


def test_validate_stream_rejects_latin1_with_line_and_hex(
    contracts: dict[str, Contract],
) -> None:
    data = LENDERS + "483695,Doña Ana\n".encode("latin-1")

    report = validate(data, contracts["kiva_lenders"], chunk_bytes=16)

    assert codes(report.problems) == ["encoding"]
    problem = report.problems[0]
    assert problem.line == 4
    assert "found byte(s) f1" in problem.message
    assert f"byte offset {len(LENDERS) + 9}" in problem.message


def test_validate_stream_decodes_characters_split_across_reads(
    contracts: dict[str, Contract],
) -> None:
    data = to_csv([["loan_id", "lenders"]] + [[str(i), "Гулмире, Doña, 🌱"] for i in range(40)])

    report = validate(data, contracts["kiva_lenders"], chunk_bytes=5)

    assert report.accepted, report.reason
    assert report.records == 40


def test_validate_stream_rejects_utf8_cut_off_at_end(contracts: dict[str, Contract]) -> None:
    data = LENDERS + "483695,Гул".encode()[:-1]

    report = validate(data, contracts["kiva_lenders"])

    assert codes(report.problems) == ["encoding"]
    assert report.problems[0].line == 4


def test_validate_stream_rejects_nul_byte(contracts: dict[str, Contract]) -> None:
    data = LENDERS + b"483695,ab\x00c\n"

    report = validate(data, contracts["kiva_lenders"], chunk_bytes=8)

    assert codes(report.problems) == ["nul_byte"]
    assert report.problems[0].line == 4


def test_validate_stream_accepts_reordered_header(contracts: dict[str, Contract]) -> None:
    header = list(reversed(KIVA_ROW))

    report = validate(kiva_csv([KIVA_ROW], header), contracts["kiva_loans"])

    assert report.accepted, report.reason
    assert report.header == tuple(header)


def test_validate_stream_rejects_missing_required_column(
    contracts: dict[str, Contract],
) -> None:
    header = [name for name in KIVA_ROW if name != "loan_amount"]

    report = validate(kiva_csv([KIVA_ROW], header), contracts["kiva_loans"])

    assert codes(report.problems) == ["header"]
    assert report.problems[0].line == 1
    assert "'loan_amount'" in report.problems[0].message


def test_validate_stream_applies_unknown_column_policy(contracts: dict[str, Contract]) -> None:
    data = b"loan_id,lenders,note\n483693,a,x\n"
    strict = contracts["kiva_lenders"]
    lenient = dataclasses.replace(strict, unknown_columns="ignore")

    rejected = validate(data, strict)
    accepted = validate(data, lenient)

    assert codes(rejected.problems) == ["header"]
    assert "'note'" in rejected.problems[0].message
    assert accepted.accepted
    assert accepted.records == 1


def test_validate_stream_rejects_unterminated_quote(contracts: dict[str, Contract]) -> None:
    data = LENDERS + b'483695,"never closed\n483696,x\n'

    report = validate(data, contracts["kiva_lenders"])

    assert codes(report.problems) == ["unterminated_quote"]
    assert report.problems[0].line == 4


def test_validate_stream_rejects_record_too_long(contracts: dict[str, Contract]) -> None:
    data = LENDERS + b"483695," + b"x" * 500 + b"\n"

    report = validate(data, contracts["kiva_lenders"], max_record_bytes=100, chunk_bytes=64)

    assert codes(report.problems) == ["record_too_long"]
    assert report.problems[0].line == 4


def test_validate_stream_warns_about_a_few_bad_rows(contracts: dict[str, Contract]) -> None:
    rows = [[*KIVA_ROW.values()] for _ in range(10)]  # each row spans 3 lines
    rows[3][list(KIVA_ROW).index("loan_amount")] = "abc"  # line 2 + 3 * 3
    rows[6].append("extra")  # line 2 + 3 * 6
    data = to_csv([list(KIVA_ROW), *rows])

    report = validate(data, contracts["kiva_loans"], chunk_bytes=500)

    assert report.accepted, report.reason
    assert report.records == 10
    assert codes(report.warnings) == ["field_count", "types"]
    field_count, types = report.warnings
    assert field_count.line == 20
    assert "expected 31 fields, found 32" in field_count.message
    assert types.line == 11
    assert "column 'loan_amount': expected float, found 'abc'" in types.message


def test_validate_stream_rejects_mostly_wrong_field_counts(
    contracts: dict[str, Contract],
) -> None:
    data = b"loan_id,lenders\n1,a\n" + b"2,a,b\n" * 3

    report = validate(data, contracts["kiva_lenders"])

    assert codes(report.problems) == ["field_count"]
    assert "found 3 of 4" in report.problems[0].message
    assert "line 3: expected 2 fields, found 3" in report.problems[0].message


def test_validate_stream_rejects_mostly_bad_types_in_sample(
    contracts: dict[str, Contract],
) -> None:
    rows = [["loan_id", "lenders"]] + [[f"x{i}", "a"] for i in range(6)] + [["1", "a"]] * 4

    report = validate(to_csv(rows), contracts["kiva_lenders"], type_sample_rows=8)

    assert codes(report.problems) == ["types"]
    assert "found 6 of 8" in report.problems[0].message
    assert "first: line 2: column 'loan_id'" in report.problems[0].message
    assert report.records == 10


def test_validate_stream_types_only_the_sample(contracts: dict[str, Contract]) -> None:
    rows = [["loan_id", "lenders"]] + [["1", "a"]] * 5 + [["bad", "a"]] * 50

    report = validate(to_csv(rows), contracts["kiva_lenders"], type_sample_rows=5)

    assert report.accepted
    assert report.warnings == ()


def test_validate_stream_reports_bad_quotes(contracts: dict[str, Contract]) -> None:
    good = b"loan_id,lenders\n" + b"1,a\n" * 3
    bad = b'2,x"y"z\n'

    few = validate(good + bad, contracts["kiva_lenders"])
    most = validate(good[:16] + bad * 4, contracts["kiva_lenders"])

    assert few.accepted
    assert codes(few.warnings) == ["bad_quotes"]
    assert few.warnings[0].line == 5
    assert codes(most.problems) == ["bad_quotes"]


def test_validate_stream_caps_listed_warnings(contracts: dict[str, Contract]) -> None:
    extra = MAX_LISTED + 7
    data = b"loan_id,lenders\n" + b"1,a\n" * 100 + b"2,a,b\n" * extra

    report = validate(data, contracts["kiva_lenders"], chunk_bytes=64)

    assert report.accepted
    assert len(report.warnings) == MAX_LISTED + 1
    assert [w.line for w in report.warnings[:MAX_LISTED]] == list(range(102, 102 + MAX_LISTED))
    assert report.warnings[-1].line is None
    assert f"and 7 more ({extra} in all)" in report.warnings[-1].message


def test_validation_report_round_trips_through_json(contracts: dict[str, Contract]) -> None:
    report = validate(b"loan_id,lenders,note\n1,a,x\n2,b\n", contracts["kiva_lenders"])

    loaded = json.loads(json.dumps(report.to_dict()))

    assert ValidationReport.from_dict(loaded) == report
    assert loaded["reason"] == report.reason
    assert report.reason is not None and "\n" not in report.reason


def test_validate_stream_is_deterministic(contracts: dict[str, Contract]) -> None:
    data = LENDERS + b"x,a\n" * 30 + b"1,a,b\n" * 30

    first = validate(data, contracts["kiva_lenders"], chunk_bytes=32)
    second = validate(data, contracts["kiva_lenders"], chunk_bytes=32)

    assert first == second
    assert first.to_dict() == second.to_dict()


def test_validate_stream_memory_stays_bounded(
    contracts: dict[str, Contract], tmp_path: Path
) -> None:
    chunk_bytes = 1024**2
    block = kiva_csv([KIVA_ROW] * 2000).split(b"\n", 1)[1]
    path = tmp_path / "big.csv"
    with path.open("wb") as out:
        out.write(kiva_csv([]))
        while out.tell() < 60 * 1024**2:
            out.write(block)
    size = path.stat().st_size
    tracemalloc.start()

    with path.open("rb") as raw:
        report = validate_stream(
            raw, contracts["kiva_loans"], load_settings(chunk_bytes=chunk_bytes)
        )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert report.accepted, report.reason
    assert report.bytes_read == size
    # Validation itself adds little; csvscan keeps its previous block, buffer and chunk alive
    # while it reads the next block (about 5x chunk_bytes measured), hence 6x plus imports.
    assert peak < 6 * chunk_bytes + 2 * 1024**2, f"peak {peak / 1e6:.1f} MB of a {size} B file"
