"""The one JSON encoding of Sluice's answers: ``sluice ... --json`` and the HTTP functions.

Python's ``json`` writes NaN and Infinity as bare ``NaN``/``Infinity``, which no strict
reader accepts (JSON has no such numbers), so an answer holding one would not parse at all.
Here a value with no finite number (float or Decimal NaN, +-Infinity) is written as null;
dates and times are ISO 8601; a whole Decimal (a BIGNUMERIC sum, a DuckDB DECIMAL) is an
integer, exactly, and any other Decimal a float; anything else unknown is its ``str``.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def finite_json(data: Any) -> str:
    """``data`` as one JSON document, always valid JSON: NaN and Infinity become null."""
    return json.dumps(_finite(data), default=_json_default, ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite number (float or Decimal) replaced by None."""
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Finite here: _finite has already replaced the others.
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)
