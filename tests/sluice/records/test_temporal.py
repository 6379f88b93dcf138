"""Typing dates and timestamps by a contract: formats, calendar checks, offsets, reasons."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from sluice.contracts import Column, Contract
from sluice.errors import ContractError
from sluice.records.coerce import CoercedColumns, coerce_columns

KIVA_TIME = "%Y-%m-%d %H:%M:%S.%f %z"


def one_column(column: Column, texts: list[str | None]) -> CoercedColumns:
    """Coerce one column holding ``texts`` under a contract of just that column."""
    contract = Contract("t", 1, "incoming/t/", (column,))
    return coerce_columns({column.name: pa.array(texts, pa.string())}, contract, len(texts))


def typed(column: Column, texts: list[str | None]) -> list[object]:
    return one_column(column, texts).columns[column.name].to_pylist()


# --- dates -----------------------------------------------------------------------------------


def test_date_default_is_strict_iso() -> None:
    texts = ["2014-01-15", "2016-02-29", "0001-01-01", "9999-12-31", "2014-1-5", "20140105"]

    got = typed(Column("d", "date"), texts)

    valid = [date(2014, 1, 15), date(2016, 2, 29), date(1, 1, 1), date(9999, 12, 31)]
    assert got == [*valid, None, None]


@pytest.mark.parametrize(
    "text",
    [
        "2014-02-29",
        "2014-02-30",
        "2014-04-31",
        "2014-13-01",
        "2014-00-10",
        "0000-01-01",
        "2014-01-00",
    ],
)
def test_date_impossible_days_fail_with_reason(text: str) -> None:
    got = one_column(Column("d", "date"), [text, "2014-01-01"])

    assert got.columns["d"].to_pylist() == [None, date(2014, 1, 1)]
    assert got.reasons.to_pylist() == [
        f"column 'd': expected date like 'YYYY-MM-DD', found '{text}'",
        None,
    ]


def test_date_with_format() -> None:
    column = Column("d", "date", format="%d/%m/%Y")

    result = one_column(column, ["24/11/2026", "2026-11-24", "31/02/2026"])

    assert result.columns["d"].to_pylist() == [date(2026, 11, 24), None, None]
    assert (
        result.reasons.to_pylist()[1]
        == "column 'd': expected date like '%d/%m/%Y', found '2026-11-24'"
    )


def test_date_format_with_time_directives_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match=r"column 'd'.*found %H"):
        one_column(Column("d", "date", format="%Y-%m-%d %H"), ["2026-11-24 10"])


# --- timestamps ------------------------------------------------------------------------------


def test_timestamp_kiva_values_match_python_strptime() -> None:
    texts = [
        "2014-01-15 04:48:22.000 +0000",
        "2005-03-31 07:00:00.000 +0000",
        "2018-02-28 23:59:59.999 +0530",
        "2016-02-29 00:00:00.1 -0800",
        "2016-12-31 23:30:00.123456 +01:00",
        "2016-12-31 23:30:00.5 Z",
    ]

    got = typed(Column("posted_time", "timestamp", format=KIVA_TIME), texts)

    assert got == [datetime.strptime(t, KIVA_TIME).astimezone(UTC) for t in texts]


def test_timestamp_random_instants_and_offsets_round_trip() -> None:
    rnd = random.Random(20260124)
    start = datetime(1, 1, 2, tzinfo=UTC)
    expected, texts = [], []
    for _ in range(2000):
        seconds, millis = rnd.randrange(315_000_000_000), rnd.randrange(1000)
        instant = start + timedelta(seconds=seconds, milliseconds=millis)
        offset_minutes = rnd.randrange(-(23 * 60 + 59), 23 * 60 + 60)
        local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
        sign, size = "-" if offset_minutes < 0 else "+", abs(offset_minutes)
        clock = f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}.{millis:03d}"
        zone = f"{sign}{size // 60:02d}{size % 60:02d}"
        texts.append(f"{local.year:04d}-{local.month:02d}-{local.day:02d} {clock} {zone}")
        expected.append(instant)

    got = typed(Column("t", "timestamp", format=KIVA_TIME), texts)

    assert got == expected


@pytest.mark.parametrize(
    "text",
    [
        "2014-13-45",
        "2014-02-30 04:48:22.000 +0000",
        "2015-02-29 04:48:22.000 +0000",
        "2014-13-01 04:48:22.000 +0000",
        "2014-01-15 24:00:00.000 +0000",
        "2014-01-15 23:60:00.000 +0000",
        "2014-01-15 23:59:60.000 +0000",
        "2014-01-15 04:48:22.000 +2500",
        "2014-01-15 04:48:22.000 +01:60",
        "2014-01-15 04:48:22.1234567 +0000",
        "2014-01-15 04:48:22 +0000",
        "2014-01-15T04:48:22.000+0000",
        "2014-1-15 04:48:22.000 +0000",
        "2014-01-15 04:48:22.000 +0000 ",
        "2014-01-15 04:48:22.000",
        "0001-01-01 00:00:00.000 +0100",
        "２０１４-01-15 04:48:22.000 +0000",
    ],
)
def test_timestamp_impossible_or_misshapen_values_fail_with_reason(text: str) -> None:
    good = "2014-01-15 04:48:22.000 +0000"
    column = Column("posted_time", "timestamp", format=KIVA_TIME)

    result = one_column(column, [good, text, good])

    instant = datetime(2014, 1, 15, 4, 48, 22, tzinfo=UTC)
    assert result.columns["posted_time"].to_pylist() == [instant, None, instant]
    assert result.reasons.to_pylist()[1] == (
        f"column 'posted_time': expected timestamp like '{KIVA_TIME}', found '{text}'"
    )
    assert result.reasons.to_pylist()[0::2] == [None, None]


def test_timestamp_mixed_spellings_in_one_array() -> None:
    texts = [
        "2014-01-15 04:48:22.0 +0000",
        None,
        "2014-01-15 04:48:22.123456 -01:30",
        "garbage",
        "2014-01-15 04:48:22.12 Z",
        "2014-01-15 04:48:22.1234 +0100",
    ]

    got = typed(Column("t", "timestamp", format=KIVA_TIME), texts)

    assert got == [
        datetime(2014, 1, 15, 4, 48, 22, tzinfo=UTC),
        None,
        datetime(2014, 1, 15, 6, 18, 22, 123456, tzinfo=UTC),
        None,
        datetime(2014, 1, 15, 4, 48, 22, 120000, tzinfo=UTC),
        datetime(2014, 1, 15, 3, 48, 22, 123400, tzinfo=UTC),
    ]


def test_timestamp_reads_rows_whose_bytes_are_not_back_to_back() -> None:
    # A null slot that still owns bytes (legal in Arrow) breaks the contiguous fast path.
    text = b"2014-01-15 04:48:22.000 +0000"
    data = pa.py_buffer(text + b"XXXX" + text)
    offsets = pa.py_buffer(bytes(pa.array([0, 29, 33, 62], pa.int32()).buffers()[1]))
    validity = pa.array([True, False, True]).buffers()[1]
    raw = pa.Array.from_buffers(pa.string(), 3, [validity, offsets, data])
    contract = Contract("t", 1, "p/", (Column("t", "timestamp", format=KIVA_TIME),))

    got = coerce_columns({"t": raw}, contract, 3).columns["t"].to_pylist()

    instant = datetime(2014, 1, 15, 4, 48, 22, tzinfo=UTC)
    assert got == [instant, None, instant]


def test_timestamp_format_without_zone_is_utc() -> None:
    got = typed(
        Column("t", "timestamp", format="%d/%m/%Y %H:%M"), ["24/11/2026 10:15", "24/11/2026"]
    )

    assert got == [datetime(2026, 11, 24, 10, 15, tzinfo=UTC), None]


@pytest.mark.parametrize(
    "fmt", ["%Y-%m-%d %I:%M", "%Y-%m-%d %H:%M:%S %Z", "%H:%M", "%Y-%m-%d %H %H"]
)
def test_timestamp_unsupported_format_is_a_contract_error(fmt: str) -> None:
    with pytest.raises(ContractError, match="column 't': format"):
        one_column(Column("t", "timestamp", format=fmt), ["x"])


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-11-24T10:15:03.123+01:00", datetime(2026, 11, 24, 9, 15, 3, 123000, tzinfo=UTC)),
        ("2026-11-24T10:15:03Z", datetime(2026, 11, 24, 10, 15, 3, tzinfo=UTC)),
        ("2026-11-24 10:15:03+0100", datetime(2026, 11, 24, 9, 15, 3, tzinfo=UTC)),
        ("2026-11-24T00:15:03.5-05:00", datetime(2026, 11, 24, 5, 15, 3, 500000, tzinfo=UTC)),
        ("2026-11-24T10:15:03.123456789Z", datetime(2026, 11, 24, 10, 15, 3, 123456, tzinfo=UTC)),
        ("2026-11-24T10:15:03", None),
        ("2026-11-24T10:15Z", None),
        ("2026-11-24T10:15:03+01", None),
        ("2026-11-24T10:15:03.Z", None),
        ("2026-11-24t10:15:03Z", None),
        ("2026-11-24T10:15:03.1234567891Z", None),
        ("2026-11-31T10:15:03Z", None),
    ],
)
def test_timestamp_iso8601_requires_an_offset(text: str, instant: datetime | None) -> None:
    column = Column("timestamp", "timestamp", format="iso8601")

    result = one_column(column, [text])

    assert result.columns["timestamp"].to_pylist() == [instant]
    if instant is None:
        assert result.reasons.to_pylist() == [
            "column 'timestamp': expected ISO 8601 timestamp with offset like "
            f"'2026-11-24T10:15:03.123+01:00', found '{text}'"
        ]


ACCESS_LOG_TIME = "%d/%b/%Y:%H:%M:%S %z"


def test_timestamp_month_abbreviation_reads_access_log_times_as_utc() -> None:
    texts = [
        "10/Oct/2000:13:55:36 -0700",
        "24/nov/2026:10:05:03 +0000",
        "01/JAN/2025:00:00:00 +0100",
    ]

    got = typed(Column("t", "timestamp", format=ACCESS_LOG_TIME), texts)

    assert got == [
        datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC),
        datetime(2026, 11, 24, 10, 5, 3, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 0, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    "text",
    ["10/Okt/2000:13:55:36 -0700", "31/Apr/2000:13:55:36 -0700", "10/10/2000:13:55:36 -0700"],
)
def test_timestamp_month_abbreviation_refuses_unknown_months_and_days(text: str) -> None:
    reasons = one_column(Column("t", "timestamp", format=ACCESS_LOG_TIME), [text]).reasons

    assert reasons.to_pylist() == [
        f"column 't': expected timestamp like {ACCESS_LOG_TIME!r}, found {text!r}"
    ]


def test_timestamp_month_abbreviation_and_number_together_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="one of %m or %b"):
        typed(Column("t", "timestamp", format="%Y-%m-%b %d"), ["2000-10-Oct 10"])
