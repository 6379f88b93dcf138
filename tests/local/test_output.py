"""The command line's JSON output is always valid JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from local.output import print_json


def strict_json(text: str) -> object:
    """Parse as a strict reader would: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_print_json_writes_non_finite_numbers_as_null(capsys: pytest.CaptureFixture[str]) -> None:
    print_json(
        {
            "mean": float("inf"),
            "rates": [float("nan"), 0.5, -float("inf")],
            "row": {"total": Decimal("NaN"), "sum": Decimal("12.50")},
            "at": datetime(2026, 12, 3, tzinfo=UTC),
        }
    )

    assert strict_json(capsys.readouterr().out) == {
        "mean": None,
        "rates": [None, 0.5, None],
        "row": {"total": None, "sum": 12.5},
        "at": "2026-12-03T00:00:00+00:00",
    }
