"""Typing of date and timestamp text: strptime-style formats read in bulk with numpy.

- date: the column's ``format``, else ``iso8601`` = ``YYYY-MM-DD``.
- timestamp: the column's ``format``, or ``iso8601`` = ``YYYY-MM-DD``, ``T`` or a space,
  ``hh:mm:ss``, optionally ``.`` and 1-9 digits (cut to microseconds), then a required offset
  (a time without one is ambiguous). Stored in UTC.

A ``format`` is strptime-style: ``%Y`` (4 digits), ``%m %d %H %M %S`` (2 digits each),
``%b`` (the English month abbreviation, ``Jan`` to ``Dec`` in any letter case, as access logs
write it), ``%f`` (1-6 digits), ``%z`` (``Z``, ``+hhmm`` or ``+hh:mm``), ``%%``; any other
character must appear as is. Times in a format without ``%z`` are UTC. Impossible dates and times
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

from sluice.contracts import Column
from sluice.errors import ContractError
from sluice.schema import ARROW_TYPES

_MIN_US = -62135596800 * 10**6  # 0001-01-01T00:00:00Z, the earliest warehouse timestamp
_MAX_US = 253402300800 * 10**6 - 1  # 9999-12-31T23:59:59.999999Z


def coerce_temporal(
    raw: pa.Array, present: np.ndarray, column: Column
) -> tuple[pa.Array, list[tuple[np.ndarray, str]]]:
    """Type a date or timestamp column by its format; failures as (rows, what was expected)."""
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


# --- formats compiled to fixed-width byte layouts ----------------------------------------


@dataclass(frozen=True)
class _Layout:
    """One fixed-width spelling of a format: what each byte position must hold."""

    length: int
    literal_positions: np.ndarray
    literal_bytes: np.ndarray
    choices: tuple[tuple[int, np.ndarray], ...]
    """(position, the two bytes allowed there): ``T`` or space, the offset sign."""
    digit_positions: np.ndarray
    month_name: int | None
    """Position of the first of the three letters of ``%b``, if the format has it."""
    fields: dict[str, list[int]]
    """Field (Y m d H M S f oh om) -> indexes into ``digit_positions``."""
    sign: int | None
    as_days: bool
    """Read as days since 1970 (dates), else as UTC microseconds (timestamps)."""


_DIGITS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
_DATE_DIRECTIVES = "%Y %m %b %d %%"
_TIME_DIRECTIVES = "%Y %m %b %d %H %M %S %f %z %%"
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_KEYS = np.array([int.from_bytes(name.encode(), "big") for name in _MONTH_NAMES])
"""The lower-case abbreviations as 24-bit numbers (sorted: searchsorted finds a month)."""
_MONTH_ORDER = np.argsort(_MONTH_KEYS)
_SIGN = np.frombuffer(b"+-", dtype=np.uint8)
_Atom = tuple[str, str]
"""("digit", field) | ("one of", bytes allowed) | ("literal", text): one byte position each;
("month name", "b"): three positions."""
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
        elif name == "b":
            pieces.append([[("month name", "b")]])
        else:
            pieces.append([[("digit", name)] * _DIGITS[name]])
    return pieces, seen


def _format_pieces(fmt: str, kind: str) -> list[list[list[_Atom]]]:
    if fmt != "iso8601":
        pieces, seen = _strptime_pieces(fmt, kind)
        if not {"Y", "d"} <= seen or len({"m", "b"} & seen) != 1:
            raise ContractError(f"format {fmt!r}: expected %Y, %d and one of %m or %b")
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
    sign = month_name = None
    for kind, value in atoms:
        position = len(literal_positions) + len(choices) + len(digit_positions)
        position += 3 if month_name is not None else 0
        if kind == "month name":
            month_name = position
        elif kind == "digit":
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
        len(literal_positions)
        + len(choices)
        + len(digit_positions)
        + (0 if month_name is None else 3),
        np.array(literal_positions, dtype=np.intp),
        np.array(literal_bytes, dtype=np.uint8),
        tuple(choices),
        np.array(digit_positions, dtype=np.intp),
        month_name,
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
    if layout.month_name is not None:
        month = _month_from_name(by_position[layout.month_name : layout.month_name + 3])
        ok &= month > 0
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


def _month_from_name(letters: np.ndarray) -> np.ndarray:
    """Month 1-12 of each column of three letters (any case), 0 where it names no month."""
    # OR-ing 0x20 lower-cases ASCII letters and maps no other byte onto a letter.
    key = np.zeros(letters.shape[1], dtype=np.int64)
    for row in letters:
        key = (key << 8) | (row | np.uint8(0x20))
    sorted_keys = _MONTH_KEYS[_MONTH_ORDER]
    at = np.minimum(np.searchsorted(sorted_keys, key), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == key, _MONTH_ORDER[at] + 1, 0).astype(np.int32)
