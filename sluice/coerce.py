"""Typing of CSV text by a contract: Arrow string arrays in, typed Arrow arrays and reasons out.

Text each type accepts (the caller has already turned empty fields into nulls; nothing is
trimmed, so ``" 12"`` is not an integer: numeric fields in our sources are clean and a space
there means the file is damaged):

- string: any text, kept as is (``NA`` is a value); with ``allowed``, one of those exactly.
- integer: ``[+-]?[0-9]+``, optionally ``.`` and zeros (``12.0``, ``12.``), within int64.
- float: ``[+-]?([0-9]+(.[0-9]*)?|.[0-9]+)([eE][+-]?[0-9]+)?`` and finite: ``inf``, ``nan``
  and ``1e400`` are rejected, since one of them poisons every SUM.
- boolean: ``true``/``false``, ``1``/``0``, ``yes``/``no``, in any letter case.
- date: the column's ``format``, else ``iso8601`` = ``YYYY-MM-DD``.
- timestamp: the column's ``format``, or ``iso8601`` = ``YYYY-MM-DD``, ``T`` or a space,
  ``hh:mm:ss``, optionally ``.`` and 1-9 digits (cut to microseconds), then a required offset
  (a time without one is ambiguous). Stored in UTC.

A ``format`` is strptime-style: ``%Y`` (4 digits), ``%m %d %H %M %S`` (2 digits each),
``%f`` (1-6 digits), ``%z`` (``Z``, ``+hhmm`` or ``+hh:mm``), ``%%``; any other character
must appear as is. Times in a format without ``%z`` are UTC. Impossible dates and times
(February 30, hour 24, second 60, offset +25:00) fail; they never roll over.

Dates and timestamps are read by ``_parse_temporal`` with numpy on the array's bytes: every
fixed-width spelling of the format (one per ``%f`` width and offset form) is a layout, and
rows of a layout's length are checked and read byte position by byte position, in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import product

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Column, Contract
from sluice.errors import ContractError
from sluice.schema import ARROW_TYPES

INTEGER_PATTERN = r"^[+-]?[0-9]+(\.0*)?$"
FLOAT_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
INT64_RANGE = "integer between -9223372036854775808 and 9223372036854775807"
FOUND_MAX_CHARS = 100
_TRUE = pa.array(["true", "1", "yes"])
_FALSE = pa.array(["false", "0", "no"])
_EXACT_FLOAT_LIMIT = 2.0**53  # below this every integer is exact in a float64
_MIN_US = -62135596800 * 10**6  # 0001-01-01T00:00:00Z, the earliest warehouse timestamp
_MAX_US = 253402300800 * 10**6 - 1  # 9999-12-31T23:59:59.999999Z

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
    """Type every contract column of a batch; a row's reason is its first failing column."""
    reasons = pa.nulls(num_rows, pa.string())
    failed = np.zeros(num_rows, dtype=bool)
    columns: dict[str, pa.Array] = {}
    for column in contract.columns:
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


def _coerce_temporal(
    raw: pa.Array, present: np.ndarray, column: Column
) -> tuple[pa.Array, _Failures]:
    fmt = column.format or "iso8601"
    try:
        layouts = _layouts(fmt, column.type)
    except ContractError as exc:
        raise ContractError(f"column {column.name!r}: {exc}") from None
    values, ok = _parse_temporal(raw, present, layouts)
    if column.type == "date":
        values = values.astype(np.int32)
    typed = pa.array(values, mask=~ok, type=ARROW_TYPES[column.type])
    if fmt != "iso8601":
        expected = f"{column.type} like {fmt!r}"
    elif column.type == "date":
        expected = "date like 'YYYY-MM-DD'"
    else:
        expected = "ISO 8601 timestamp with offset like '2026-11-24T10:15:03.123+01:00'"
    return typed, [(present & ~ok, expected)]


# --- dates and timestamps: formats compiled to fixed-width byte layouts --------------------


@dataclass(frozen=True)
class _Layout:
    """One fixed-width spelling of a format: what each byte position must hold."""

    length: int
    literal_positions: np.ndarray
    literal_bytes: np.ndarray
    choices: tuple[tuple[int, np.ndarray], ...]
    """(position, the two bytes allowed there): ``T`` or space, the offset sign."""
    digit_positions: np.ndarray
    fields: dict[str, list[int]]
    """Field (Y m d H M S f oh om) -> indexes into ``digit_positions``."""
    sign: int | None
    as_days: bool
    """Read as days since 1970 (dates), else as UTC microseconds (timestamps)."""


_DIGITS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
_DATE_DIRECTIVES = "%Y %m %d %%"
_TIME_DIRECTIVES = "%Y %m %d %H %M %S %f %z %%"
_SIGN = np.frombuffer(b"+-", dtype=np.uint8)
_Atom = tuple[str, str]
"""("digit", field) | ("one of", bytes allowed) | ("literal", text): one byte position each."""
_ZONES = [
    [("literal", "Z")],
    [("one of", "+-"), *[("digit", "oh")] * 2, ("literal", ":"), *[("digit", "om")] * 2],
    [("one of", "+-"), *[("digit", "oh")] * 2, *[("digit", "om")] * 2],
]
_ISO_FRACTION = [[("literal", "."), *[("digit", "f")] * k] for k in range(9, 0, -1)] + [[]]


def _strptime_pieces(fmt: str, kind: str) -> tuple[list[list[list[_Atom]]], set[str]]:
    """Per format element, its spellings (lists of atoms); and the directives seen."""
    pieces: list[list[list[_Atom]]] = []
    seen: set[str] = set()
    chars = iter(fmt)
    for char in chars:
        name = next(chars, "") if char == "%" else None
        if name is None or name == "%":
            pieces.append([[("literal", char)]])
            continue
        allowed = _DATE_DIRECTIVES if kind == "date" else _TIME_DIRECTIVES
        if f"%{name}" not in allowed.split():
            raise ContractError(f"format {fmt!r}: expected directives {allowed}, found %{name}")
        if name in seen:
            raise ContractError(
                f"format {fmt!r}: expected each directive once, found %{name} twice"
            )
        seen.add(name)
        if name == "f":
            pieces.append([[("digit", "f")] * k for k in range(6, 0, -1)])
        elif name == "z":
            pieces.append(_ZONES)
        else:
            pieces.append([[("digit", name)] * _DIGITS[name]])
    return pieces, seen


def _format_pieces(fmt: str, kind: str) -> list[list[list[_Atom]]]:
    if fmt != "iso8601":
        pieces, seen = _strptime_pieces(fmt, kind)
        if not {"Y", "m", "d"} <= seen:
            raise ContractError(f"format {fmt!r}: expected %Y, %m and %d")
        return pieces
    date, _ = _strptime_pieces("%Y-%m-%d", kind)
    if kind == "date":
        return date
    time, _ = _strptime_pieces("%H:%M:%S", kind)
    return [*date, [[("one of", "T ")]], *time, _ISO_FRACTION, _ZONES]


@lru_cache(maxsize=64)
def _layouts(fmt: str, kind: str) -> dict[int, list[_Layout]]:
    """Every fixed-width spelling of ``fmt``, by byte length (longest ``%f`` first)."""
    by_length: dict[int, list[_Layout]] = {}
    for spelling in product(*_format_pieces(fmt, kind)):
        layout = _build_layout([atom for part in spelling for atom in part], kind == "date")
        by_length.setdefault(layout.length, []).append(layout)
    return by_length


def _build_layout(atoms: list[_Atom], as_days: bool) -> _Layout:
    literal_positions: list[int] = []
    literal_bytes: list[int] = []
    choices: list[tuple[int, np.ndarray]] = []
    digit_positions: list[int] = []
    fields: dict[str, list[int]] = {}
    sign = None
    for kind, value in atoms:
        position = len(literal_positions) + len(choices) + len(digit_positions)
        if kind == "digit":
            fields.setdefault(value, []).append(len(digit_positions))
            digit_positions.append(position)
        elif kind == "one of":
            choices.append((position, np.frombuffer(value.encode(), dtype=np.uint8)))
            sign = position if value == "+-" else sign
        else:
            encoded = value.encode()
            literal_positions.extend(range(position, position + len(encoded)))
            literal_bytes.extend(encoded)
    return _Layout(
        len(literal_positions) + len(choices) + len(digit_positions),
        np.array(literal_positions, dtype=np.intp),
        np.array(literal_bytes, dtype=np.uint8),
        tuple(choices),
        np.array(digit_positions, dtype=np.intp),
        fields,
        sign,
        as_days,
    )


def _parse_temporal(
    raw: pa.Array, present: np.ndarray, layouts: dict[int, list[_Layout]]
) -> tuple[np.ndarray, np.ndarray]:
    """Days (dates) or UTC microseconds (timestamps) per row, and which rows were valid."""
    count = len(raw)
    values, ok = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=bool)
    if raw.null_count == count:
        return values, ok
    lengths = np.diff(_string_buffers(raw)[0])
    lengths[~present] = -1
    shortest, longest = min(layouts), max(layouts)
    fitting = (lengths >= shortest) & (lengths <= longest)
    counts = np.bincount(lengths[fitting] - shortest, minlength=longest - shortest + 1)
    for length in np.flatnonzero(counts) + shortest:
        rows = np.flatnonzero(lengths == length) if counts.size > 1 else np.flatnonzero(fitting)
        for layout in layouts.get(int(length), []):
            if rows.size == 0:
                break
            matrix = _byte_matrix(raw, rows, int(length))
            good, read = _read_layout(matrix, layout)
            if good.all():  # the usual case: one spelling throughout
                values[rows], ok[rows] = read, True
                break
            values[rows[good]], ok[rows[good]] = read[good], True
            rows = rows[~good]
    return values, ok


def _byte_matrix(raw: pa.Array, rows: np.ndarray, length: int) -> np.ndarray:
    """The rows' bytes as a (rows, length) matrix; a view when the rows are back to back."""
    offsets, data = _string_buffers(raw)
    first, last = int(offsets[rows[0]]), int(offsets[rows[-1]])
    if last - first != (rows.size - 1) * length:
        offsets, data = _string_buffers(raw.take(pa.array(rows)))  # copies them back to back
        first = int(offsets[0])
    return data[first : first + rows.size * length].reshape(rows.size, length)


def _string_buffers(raw: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Value offsets (one more than the values) and the data bytes of a string array."""
    _, offset_buffer, data_buffer = raw.buffers()
    offsets = np.frombuffer(offset_buffer, np.int32, len(raw) + 1, raw.offset * 4)
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer else np.zeros(0, np.uint8)
    return offsets, data


@lru_cache(maxsize=1)
def _month_starts() -> np.ndarray:
    """Days since 1970-01-01 of the first of every month from 0000-01 to 10000-01."""
    months = np.datetime64("0000-01", "M") + np.arange(10000 * 12 + 1)
    return months.astype("datetime64[D]").astype(np.int64)


def _read_layout(matrix: np.ndarray, layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Which rows fit the layout, and their days (dates) or UTC microseconds (timestamps)."""
    by_position = np.ascontiguousarray(matrix.T)  # one contiguous row per byte position
    ok = np.ones(matrix.shape[0], dtype=bool)
    for position, byte in zip(layout.literal_positions, layout.literal_bytes, strict=True):
        ok &= by_position[position] == byte
    for position, allowed in layout.choices:
        ok &= (by_position[position] == allowed[0]) | (by_position[position] == allowed[1])
    digits = by_position[layout.digit_positions] - np.uint8(ord("0"))  # wraps below '0'
    is_digit = digits <= 9
    ok &= is_digit.all(axis=0)
    digits[~is_digit] = 0  # keeps the arithmetic below in range on rows already rejected

    def number(field: str, places: int = 9) -> np.ndarray:
        indexes = layout.fields.get(field, [])[:places]
        value = np.zeros(matrix.shape[0], dtype=np.int32)
        for index in indexes:
            value *= 10
            value += digits[index]
        return value

    year, month, day = number("Y"), number("m"), number("d")
    ok &= (year >= 1) & (month >= 1) & (month <= 12)
    starts = _month_starts()
    first = year * 12 + np.clip(month, 1, 12) - 1
    days = starts[first] + (day - 1)
    ok &= (day >= 1) & (days < starts[first + 1])
    if layout.as_days:
        return ok, days
    hour, minute, second = number("H"), number("M"), number("S")
    fraction = number("f", places=6) * 10 ** (6 - min(len(layout.fields.get("f", [])), 6))
    offset_hours, offset_minutes = number("oh"), number("om")
    ok &= (hour < 24) & (minute < 60) & (second < 60) & (offset_hours < 24) & (offset_minutes < 60)
    offset = offset_hours * 3600 + offset_minutes * 60
    if layout.sign is not None:
        offset *= np.where(by_position[layout.sign] == _SIGN[1], -1, 1).astype(np.int32)
    seconds = days * 86400 + (hour * 3600 + minute * 60 + second - offset)
    micros = seconds * 1_000_000 + fraction
    ok &= (micros >= _MIN_US) & (micros <= _MAX_US)
    return ok, micros


_COERCERS = {
    "string": _coerce_string,
    "integer": _coerce_integer,
    "float": _coerce_float,
    "boolean": _coerce_boolean,
    "date": _coerce_temporal,
    "timestamp": _coerce_temporal,
}
