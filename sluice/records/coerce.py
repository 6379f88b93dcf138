"""Typing of CSV text by a contract: Arrow string arrays in, typed Arrow arrays and reasons out.

Text each type accepts (the caller has already turned empty fields into nulls; nothing is
trimmed, so ``" 12"`` is not an integer: numeric fields in our sources are clean and a space
there means the file is damaged):

- string: any text, kept as is (``NA`` is a value); with ``allowed``, one of those exactly.
- integer: ``[+-]?[0-9]+``, optionally ``.`` and zeros (``12.0``, ``12.``), within int64.
- float: ``[+-]?([0-9]+(.[0-9]*)?|.[0-9]+)([eE][+-]?[0-9]+)?`` and finite: ``inf``, ``nan``
  and ``1e400`` are rejected, since one of them poisons every SUM.
- boolean: ``true``/``false``, ``1``/``0``, ``yes``/``no``, in any letter case.
- date and timestamp: the column's ``format``, else ``iso8601``; see ``sluice.records.temporal``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Column, Contract
from sluice.records.temporal import coerce_temporal
from sluice.schema import ARROW_TYPES

INTEGER_PATTERN = r"^[+-]?[0-9]+(\.0*)?$"
FLOAT_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
INT64_RANGE = "integer between -9223372036854775808 and 9223372036854775807"
FOUND_MAX_CHARS = 100
_TRUE = pa.array(["true", "1", "yes"])
_FALSE = pa.array(["false", "0", "no"])
_EXACT_FLOAT_LIMIT = 2.0**53  # below this every integer is exact in a float64

_Failures = list[tuple[np.ndarray, str]]
"""(mask of rows, what was expected there) for the rows a column rejects."""


@dataclass(frozen=True)
class CoercedColumns:
    """Typed columns of one batch and, per row, why it failed (null when it did not)."""

    columns: dict[str, pa.Array]
    reasons: pa.Array


def coerce_columns(
    values: dict[str, pa.Array], contract: Contract, num_rows: int
) -> CoercedColumns:
    """Type every column of a batch the file holds; a row's reason is its first failing
    column. Enriched columns are left to ``sluice.records.enrich``."""
    reasons = pa.nulls(num_rows, pa.string())
    failed = np.zeros(num_rows, dtype=bool)
    columns: dict[str, pa.Array] = {}
    for column in contract.file_columns:
        raw = values.get(column.name)
        if raw is None:
            columns[column.name] = pa.nulls(num_rows, ARROW_TYPES[column.type])
            if not column.nullable:
                empty = np.ones(num_rows, dtype=bool)
                found = "found no such column in the file"
                reasons = _add_reasons(reasons, failed, empty, column, "a value", None, found)
            continue
        raw = _as_strings(raw, column, num_rows)
        present = _mask(pc.is_valid(raw))
        typed, failures = _COERCERS[column.type](raw, present, column)
        if not column.nullable:
            reasons = _add_reasons(
                reasons, failed, ~present, column, "a value", None, "found empty"
            )
        for rows, expected in failures:
            reasons = _add_reasons(reasons, failed, rows, column, expected, raw)
        if failures:
            typed = _null_where(typed, np.logical_or.reduce([rows for rows, _ in failures]))
        columns[column.name] = typed
    return CoercedColumns(columns, reasons)


def _as_strings(raw: pa.Array | pa.ChunkedArray, column: Column, num_rows: int) -> pa.Array:
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    if len(raw) != num_rows:
        raise ValueError(f"column {column.name!r}: expected {num_rows} values, found {len(raw)}")
    return raw if raw.type == pa.string() else raw.cast(pa.string())


def _add_reasons(
    reasons: pa.Array,
    failed: np.ndarray,
    rows: np.ndarray,
    column: Column,
    expected: str,
    raw: pa.Array | None,
    found: str = "",
) -> pa.Array:
    """Record a reason for the given rows that have none yet (``failed`` is updated)."""
    new = rows & ~failed
    count = int(new.sum())
    if count == 0:
        return reasons
    failed |= new
    prefix = f"column {column.name!r}: expected {expected}, "
    if raw is None:
        text = pa.repeat(pa.scalar(prefix + found, pa.string()), count)
    else:
        shown = raw.filter(pa.array(new))
        cut = pc.greater(pc.utf8_length(shown), FOUND_MAX_CHARS)
        shown = pc.utf8_slice_codeunits(shown, 0, FOUND_MAX_CHARS)
        ellipsis = pc.if_else(cut, "...", "")
        text = pc.binary_join_element_wise(prefix + "found '", shown, ellipsis, "'", "")
    return pc.replace_with_mask(reasons, pa.array(new), text)


def _mask(values: pa.Array) -> np.ndarray:
    return values.fill_null(False).to_numpy(zero_copy_only=False)


def _null_where(typed: pa.Array, rows: np.ndarray) -> pa.Array:
    if not rows.any():
        return typed
    return pc.if_else(pa.array(rows), pa.scalar(None, typed.type), typed)


def _coerce_string(
    raw: pa.Array, present: np.ndarray, column: Column
) -> tuple[pa.Array, _Failures]:
    if not column.allowed:
        return raw, []
    known = _mask(pc.is_in(raw, value_set=pa.array(column.allowed, pa.string())))
    return raw, [(present & ~known, "one of " + ", ".join(column.allowed))]


def _coerce_integer(
    raw: pa.Array, present: np.ndarray, column: Column
) -> tuple[pa.Array, _Failures]:
    if not (present & ~_mask(pc.ascii_is_decimal(raw))).any():
        try:  # plain digits: Arrow's own parser is exact, and fails only on overflow
            return pc.cast(raw, pa.int64()), []
        except pa.ArrowInvalid:
            pass
    shaped = _mask(pc.match_substring_regex(raw, INTEGER_PATTERN))
    candidates = _null_where(raw, ~shaped)
    as_float = pc.cast(candidates, pa.float64())
    huge = _mask(pc.greater_equal(pc.abs(as_float), _EXACT_FLOAT_LIMIT))
    typed = pc.cast(_null_where(as_float, huge), pa.int64())
    overflow = np.zeros(len(raw), dtype=bool)
    if huge.any():  # near the int64 limits floats are not exact: go through the text
        text = raw.filter(pa.array(huge))
        digits = pc.utf8_ltrim(pc.list_element(pc.split_pattern(text, ".", max_splits=1), 0), "+")
        overflow[huge] = too_big = _int64_overflow(digits)
        exact = pc.cast(_null_where(digits, too_big), pa.int64())
        typed = pc.replace_with_mask(typed, pa.array(huge), exact)
    return typed, [(present & ~shaped, "integer"), (overflow, INT64_RANGE)]


def _int64_overflow(digits: pa.Array) -> np.ndarray:
    negative = pc.starts_with(digits, "-")
    body = pc.utf8_ltrim(pc.utf8_ltrim(digits, "-"), "0")
    size = pc.utf8_length(body)
    limit = pc.if_else(negative, "9223372036854775808", "9223372036854775807")
    too_long = pc.greater(size, 19)
    too_big = pc.and_(pc.equal(size, 19), pc.greater(body, limit))
    return _mask(pc.or_(too_long, too_big))


def _coerce_float(raw: pa.Array, present: np.ndarray, column: Column) -> tuple[pa.Array, _Failures]:
    try:  # Arrow accepts FLOAT_PATTERN plus inf/nan spellings, caught as non-finite below
        typed = pc.cast(raw, pa.float64())
        shaped = None
    except pa.ArrowInvalid:
        shaped = _mask(pc.match_substring_regex(raw, FLOAT_PATTERN))
        typed = pc.cast(_null_where(raw, ~shaped), pa.float64())
    non_finite = present & ~_mask(pc.is_finite(typed).fill_null(True))
    if shaped is None:
        shaped = ~non_finite
        if non_finite.any():
            shaped[non_finite] = _mask(
                pc.match_substring_regex(raw.filter(pa.array(non_finite)), FLOAT_PATTERN)
            )
    return typed, [
        (present & ~shaped, "float"),
        (non_finite & shaped, "float of magnitude below 1.8e308"),
    ]


def _coerce_boolean(
    raw: pa.Array, present: np.ndarray, column: Column
) -> tuple[pa.Array, _Failures]:
    lowered = pc.ascii_lower(raw)
    true, false = pc.is_in(lowered, value_set=_TRUE), pc.is_in(lowered, value_set=_FALSE)
    known = pc.or_(true, false)
    typed = pc.if_else(known, true, pa.scalar(None, pa.bool_()))
    return typed, [(present & ~_mask(known), "boolean (true/false, 1/0, yes/no)")]


_COERCERS = {
    "string": _coerce_string,
    "integer": _coerce_integer,
    "float": _coerce_float,
    "boolean": _coerce_boolean,
    "date": coerce_temporal,
    "timestamp": coerce_temporal,
}
