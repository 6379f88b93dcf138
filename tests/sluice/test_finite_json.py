"""The one JSON encoding of answers: always strict JSON, wide sums exact."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from sluice.finite_json import finite_json


def refuse(constant: str) -> None:
    """A strict reader's answer to NaN and Infinity, which are not JSON."""
    raise ValueError(f"not JSON: {constant}")


def test_finite_json_writes_every_non_finite_number_as_null() -> None:
    data = {"a": [float("nan"), (float("inf"), -float("inf"))], "b": {"c": Decimal("-Infinity")}}

    text = finite_json(data)

    assert json.loads(text, parse_constant=refuse) == {
        "a": [None, [None, None]],
        "b": {"c": None},
    }


def test_finite_json_keeps_whole_decimals_exact_and_dates_iso() -> None:
    data = {
        "bytes_sent": Decimal("18446744073709551614.00000"),  # 2 x int64 max, DuckDB DECIMAL
        "ratio": Decimal("0.25"),
        "day": date(2026, 11, 23),
        "at": datetime(2026, 11, 23, 5, tzinfo=UTC),
    }

    assert json.loads(finite_json(data)) == {
        "bytes_sent": 18446744073709551614,
        "ratio": 0.25,
        "day": "2026-11-23",
        "at": "2026-11-23T05:00:00+00:00",
    }
