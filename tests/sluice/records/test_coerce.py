"""Typing CSV text by a contract: accepted forms, failures and their reasons, per type."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sluice.contracts import Column, Contract
from sluice.records.coerce import FLOAT_PATTERN, INTEGER_PATTERN, CoercedColumns, coerce_columns
from sluice.schema import ARROW_TYPES

KIVA_TIME = "%Y-%m-%d %H:%M:%S.%f %z"


def one_column(column: Column, texts: list[str | None]) -> CoercedColumns:
    """Coerce one column holding ``texts`` under a contract of just that column."""
    contract = Contract("t", 1, "incoming/t/", (column,))
    return coerce_columns({column.name: pa.array(texts, pa.string())}, contract, len(texts))


def typed(column: Column, texts: list[str | None]) -> list[object]:
    return one_column(column, texts).columns[column.name].to_pylist()


def reasons(column: Column, texts: list[str | None]) -> list[str | None]:
    return one_column(column, texts).reasons.to_pylist()


# --- strings, nulls, absent columns -----------------------------------------------------------


def test_string_keeps_text_as_is_including_na_and_spaces() -> None:
    texts = ["NA", "null", "Nairobi ", " Doña\tAna", "Гулмире", None]

    result = one_column(Column("town_name", "string"), texts)

    assert result.columns["town_name"].to_pylist() == texts
    assert result.reasons.null_count == len(texts)


def test_string_allowed_rejects_other_values_with_reason() -> None:
    status = Column("status", "string", allowed=("funded", "expired", "refunded", "fundRaising"))

    got = reasons(status, ["funded", "paid", "Funded", None])

    assert got == [
        None,
        "column 'status': expected one of funded, expired, refunded, fundRaising, found 'paid'",
        "column 'status': expected one of funded, expired, refunded, fundRaising, found 'Funded'",
        None,
    ]
    assert typed(status, ["funded", "paid"]) == ["funded", None]


def test_not_nullable_empty_value_fails_and_nullable_is_fine() -> None:
    contract = Contract(
        "t",
        1,
        "p/",
        (Column("loan_id", "integer", nullable=False), Column("lender_term", "integer")),
    )
    values = {"loan_id": pa.array(["1", None]), "lender_term": pa.array([None, None], pa.string())}

    result = coerce_columns(values, contract, 2)

    assert result.reasons.to_pylist() == [None, "column 'loan_id': expected a value, found empty"]
    assert result.columns["lender_term"].to_pylist() == [None, None]


def test_absent_columns_are_all_null_of_their_type_and_unknown_keys_ignored() -> None:
    columns = tuple(Column(f"c_{kind}", kind, required=False) for kind in ARROW_TYPES)
    contract = Contract("t", 1, "p/", columns)

    result = coerce_columns({"unknown": pa.array(["x", "y", "z"])}, contract, 3)

    assert set(result.columns) == {c.name for c in columns}
    for column in columns:
        assert result.columns[column.name].type == ARROW_TYPES[column.type]
        assert result.columns[column.name].null_count == 3
    assert result.reasons.type == pa.string() and result.reasons.null_count == 3


def test_absent_not_nullable_column_fails_every_row() -> None:
    contract = Contract("t", 1, "p/", (Column("host", "string", nullable=False, required=False),))

    result = coerce_columns({}, contract, 2)

    expected = "column 'host': expected a value, found no such column in the file"
    assert result.reasons.to_pylist() == [expected, expected]


def test_reason_is_first_failing_column_in_contract_order() -> None:
    contract = Contract(
        "t",
        1,
        "p/",
        (Column("a", "integer"), Column("b", "float"), Column("c", "boolean", nullable=False)),
    )
    values = {  # keys in another order than the contract, on purpose
        "c": pa.array(["maybe", "true", None, "no"]),
        "b": pa.array(["x", "x", "1.5", "2"]),
        "a": pa.array(["1", "y", "2", "3"]),
    }

    result = coerce_columns(values, contract, 4)

    assert result.reasons.to_pylist() == [
        "column 'b': expected float, found 'x'",
        "column 'a': expected integer, found 'y'",
        "column 'c': expected a value, found empty",
        None,
    ]


def test_long_found_value_is_cut_to_a_hundred_characters() -> None:
    got = reasons(Column("n", "integer"), ["9" * 50 + "x" * 200])[0]

    assert got == "column 'n': expected integer, found '" + "9" * 50 + "x" * 50 + "...'"


def test_inputs_may_be_chunked_sliced_or_large_strings() -> None:
    contract = Contract(
        "t", 1, "p/", (Column("n", "integer"), Column("t", "timestamp", format=KIVA_TIME))
    )
    times = pa.array(["junk", "2014-01-15 04:48:22.000 +0000", "2014-01-16 00:00:00.5 +0100"])
    values = {
        "n": pa.chunked_array(
            [pa.array(["1"], pa.large_string()), pa.array(["2"], pa.large_string())]
        ),
        "t": times.slice(1),
    }

    result = coerce_columns(values, contract, 2)

    assert result.columns["n"].to_pylist() == [1, 2]
    assert result.columns["t"].to_pylist() == [
        datetime(2014, 1, 15, 4, 48, 22, tzinfo=UTC),
        datetime(2014, 1, 15, 23, 0, 0, 500000, tzinfo=UTC),
    ]


def test_wrong_length_is_a_caller_error() -> None:
    contract = Contract("t", 1, "p/", (Column("n", "integer"),))

    with pytest.raises(ValueError, match="expected 3 values, found 2"):
        coerce_columns({"n": pa.array(["1", "2"])}, contract, 3)


def test_zero_rows_give_empty_typed_columns() -> None:
    columns = tuple(Column(f"c_{kind}", kind, format="iso8601") for kind in ARROW_TYPES)
    contract = Contract("t", 1, "p/", columns)

    result = coerce_columns({c.name: pa.array([], pa.string()) for c in columns}, contract, 0)

    assert all(len(a) == 0 and a.type == ARROW_TYPES[n[2:]] for n, a in result.columns.items())
    assert len(result.reasons) == 0


# --- integers --------------------------------------------------------------------------------

INTEGER_TEXTS = [
    "0", "-5", "+7", "007", "123.0", "12.", "-0.000", "3000", "12.5", "1e3", " 12", "12 ",
    "0x1F", "-0x1F", "abc", "", "١٢", "+-1", "--1", "1_000", "1,000", ".0", "-", "12.0.0",
    "0" * 40 + "1",
]  # fmt: skip


def integer_oracle(text: str) -> int | None:
    if not re.fullmatch(INTEGER_PATTERN, text):
        return None
    return int(text.split(".")[0])


@pytest.mark.parametrize("text", INTEGER_TEXTS)
def test_integer_accepts_exactly_the_documented_forms(text: str) -> None:
    alone = typed(Column("n", "integer"), [text])
    beside_bad = typed(Column("n", "integer"), [text, "bad"])  # forces the regex path

    assert alone == [integer_oracle(text)]
    assert beside_bad == [integer_oracle(text), None]


def test_integer_float_looking_values_like_partner_id() -> None:
    got = typed(Column("partner_id", "integer"), ["123.0", None, "9.0", "77.000", "1.0"])

    assert got == [123, None, 9, 77, 1]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("9223372036854775807.0", 2**63 - 1),
        ("+9223372036854775807", 2**63 - 1),
        ("-0009223372036854775808.00", -(2**63)),
        ("9007199254740993", 2**53 + 1),
        ("9007199254740993.0", 2**53 + 1),
    ],
)
def test_integer_is_exact_up_to_the_int64_limits(text: str, value: int) -> None:
    assert typed(Column("n", "integer"), [text, "1.0"]) == [value, 1]


@pytest.mark.parametrize(
    "text",
    ["9223372036854775808", "-9223372036854775809", "99999999999999999999999", "1" * 40 + ".0"],
)
def test_integer_overflow_is_a_failure_not_a_crash(text: str) -> None:
    got = one_column(Column("n", "integer"), [text, "5"])

    assert got.columns["n"].to_pylist() == [None, 5]
    assert got.reasons.to_pylist() == [
        "column 'n': expected integer between -9223372036854775808 and "
        f"9223372036854775807, found '{text}'",
        None,
    ]


def test_integer_one_bad_value_does_not_poison_the_others() -> None:
    column = Column("lender_term", "integer")

    result = one_column(column, ["12", "12.5", None, "-3"])

    assert result.columns["lender_term"].to_pylist() == [12, None, None, -3]
    assert result.reasons.to_pylist() == [
        None,
        "column 'lender_term': expected integer, found '12.5'",
        None,
        None,
    ]


# --- floats ----------------------------------------------------------------------------------

FLOAT_TEXTS = [
    "1.5", "-2", "+3.", ".5", "-.5e-3", "1e5", "1E+05", "0", "25.0", "1e-400", "inf", "-inf",
    "nan", "NaN", "Infinity", "1,5", "1.2.3", " 1", "1 ", "0x10", "1e", "e5", ".", ".e1", "+",
    "1_0", "١", "1e400", "1" * 400,
]  # fmt: skip


def float_oracle(text: str) -> float | None:
    if not re.fullmatch(FLOAT_PATTERN, text) or not math.isfinite(float(text)):
        return None
    return float(text)


@pytest.mark.parametrize("text", FLOAT_TEXTS)
def test_float_accepts_exactly_the_documented_finite_forms(text: str) -> None:
    alone = typed(Column("x", "float"), [text])  # Arrow's cast on the whole array
    beside_bad = typed(Column("x", "float"), [text, "bad"])  # forces the regex path

    assert alone == [float_oracle(text)]
    assert beside_bad == [float_oracle(text), None]


def test_float_reasons_tell_non_numbers_from_out_of_range() -> None:
    column = Column("loan_amount", "float")

    got = reasons(column, ["abc", "inf", "1e400", "500.0"])

    assert got == [
        "column 'loan_amount': expected float, found 'abc'",
        "column 'loan_amount': expected float, found 'inf'",
        "column 'loan_amount': expected float of magnitude below 1.8e308, found '1e400'",
        None,
    ]
    assert reasons(column, ["nan", "1"]) == [
        "column 'loan_amount': expected float, found 'nan'",
        None,
    ]


# --- booleans --------------------------------------------------------------------------------


def test_boolean_accepts_words_and_digits_in_any_case() -> None:
    texts = ["true", "TRUE", "False", "1", "0", "yes", "No", "YES", None]

    assert typed(Column("b", "boolean"), texts) == [
        True, True, False, True, False, True, False, True, None,
    ]  # fmt: skip


@pytest.mark.parametrize("text", ["t", "f", "y", "n", "2", "on", "off", " true", "truth"])
def test_boolean_rejects_other_words(text: str) -> None:
    got = reasons(Column("pictured", "boolean"), [text])

    assert got == [f"column 'pictured': expected boolean (true/false, 1/0, yes/no), found '{text}'"]


# --- the shipped contracts -------------------------------------------------------------------

KIVA_ROWS = [
    {
        "loan_id": "657307", "loan_name": "Aivy", "original_language": "English",
        "description": 'Aivy, 21, &amp; "quotes"<br />\nSecond paragraph',
        "description_translated": None, "funded_amount": "125.0", "loan_amount": "125.0",
        "status": "funded", "activity_name": "General Store", "sector_name": "Retail",
        "loan_use": "to buy rice, sugar", "country_code": "NA", "country_name": "Namibia",
        "town_name": "Ozamiz City ", "currency_policy": "shared",
        "currency_exchange_coverage_rate": "0.1", "currency": "PHP", "partner_id": "126.0",
        "posted_time": "2014-01-15 04:48:22.000 +0000", "planned_expiration_time": None,
        "disburse_time": "2013-12-22 08:00:00.000 +0000",
        "raised_time": "2014-01-15 04:48:22.000 +0000", "lender_term": "7",
        "num_lenders_total": "3", "num_journal_entries": "2", "num_bulk_entries": "1",
        "tags": "#Woman Owned Biz, user_favorite", "borrower_genders": "female, female",
        "borrower_pictured": "true, true", "repayment_interval": "irregular",
        "distribution_model": "field_partner",
    },
    {
        "loan_id": "1", "loan_name": "Гулмире", "status": "paid", "funded_amount": "0",
        "loan_amount": "25", "sector_name": "Food", "posted_time": "2005-03-31 06:27:55.000 +0000",
        "partner_id": None, "distribution_model": "direct",
    },
    {
        "loan_id": "2", "status": "funded", "funded_amount": "0", "loan_amount": "25",
        "sector_name": "Food", "posted_time": "2005-03-31 06:27:55.000 +0000",
        "lender_term": "12.5",
    },
]  # fmt: skip


def test_kiva_loans_contract_on_realistic_rows(contracts: dict[str, Contract]) -> None:
    contract = contracts["kiva_loans"]
    values = {
        name: pa.array([row.get(name) for row in KIVA_ROWS], pa.string())
        for name in contract.column_names
    }

    result = coerce_columns(values, contract, len(KIVA_ROWS))

    first = {name: array[0].as_py() for name, array in result.columns.items()}
    assert first["loan_id"] == 657307 and first["partner_id"] == 126
    assert first["country_code"] == "NA" and first["town_name"] == "Ozamiz City "
    assert first["funded_amount"] == 125.0 and first["currency_exchange_coverage_rate"] == 0.1
    assert first["posted_time"] == datetime(2014, 1, 15, 4, 48, 22, tzinfo=UTC)
    assert first["planned_expiration_time"] is None
    assert result.reasons.to_pylist() == [
        None,
        "column 'status': expected one of funded, expired, refunded, fundRaising, found 'paid'",
        "column 'lender_term': expected integer, found '12.5'",
    ]
    assert {n: a.type for n, a in result.columns.items()} == {
        c.name: ARROW_TYPES[c.type] for c in contract.columns
    }


def test_server_logs_contract_on_realistic_rows(contracts: dict[str, Contract]) -> None:
    contract = contracts["server_logs"]
    rows = [
        ["2026-11-24T10:15:03.123+01:00", "web-1", "GET", "/api/loans?id=1", "200", "5120", "12.5",
         "2001:db8::1", "DE", "Mozilla/5.0 (X11; Linux x86_64)", None],
        ["2026-11-24T10:15:04Z", "web-2", "POST", "/login", "503", None, "1500.25", "10.0.0.7",
         None, "curl/8.0", "https://example.com/"],
        ["2026-11-24 10:15:05", "web-2", "FETCH", "/", "200", "1", "1", None, None, None, None],
    ]  # fmt: skip
    values = {
        name: pa.array([row[i] for row in rows], pa.string())
        for i, name in enumerate(contract.column_names)
    }

    result = coerce_columns(values, contract, len(rows))

    assert result.columns["timestamp"].to_pylist()[:2] == [
        datetime(2026, 11, 24, 9, 15, 3, 123000, tzinfo=UTC),
        datetime(2026, 11, 24, 10, 15, 4, tzinfo=UTC),
    ]
    assert result.columns["status"].to_pylist() == [200, 503, 200]
    assert result.columns["bytes_sent"].to_pylist() == [5120, None, 1]
    assert result.columns["latency_ms"].to_pylist() == [12.5, 1500.25, 1.0]
    assert result.reasons.to_pylist()[:2] == [None, None]
    assert result.reasons.to_pylist()[2].startswith(
        "column 'timestamp': expected ISO 8601 timestamp with offset"
    )
