"""Dirty rows: records that break the dataset contract in ways the pipeline must dead-letter.

Each dirty row gets exactly one fault, chosen among those its dataset can have: a
non-numeric number, an impossible timestamp, a value outside an allowed set, an empty
required value, a missing field or an extra field. The file stays well formed CSV (the
csv module quotes whatever needs it), so these rows test typing, not the scanner.
Impossible dates are ones every parser refuses (month 13, day 32, hour 25, minute 61, the
zero date): Arrow's strptime silently rolls ``2014-02-30`` over to March 2, so that one
would not be caught by the pipeline's coercion and is never used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STREAM_DIRTY = 99
NON_NUMERIC = ("abc", "n/a", "12O", "USD 500", "1,250", "--", "twelve", "5 00")
OUTSIDE_ANY_SET = ("pending", "unknown", "deleted", "N/A")


def dirty_count(dirty: float, rows: int) -> int:
    """How many of ``rows`` rows a ``dirty`` fraction breaks (rounded half up)."""
    return math.floor(dirty * rows + 0.5)


@dataclass
class Written:
    """What a writer wrote: records, and where each dirty one is, why, and which must die."""

    rows: int
    lines: list[int]
    reasons: list[str]
    dead_lines: list[int]

    def add(self, line: int, reason: str, dead: bool) -> None:
        """Note a dirty record starting at physical ``line``."""
        self.lines.append(line)
        self.reasons.append(reason)
        if dead:
            self.dead_lines.append(line)


@dataclass(frozen=True)
class DirtyTargets:
    """Which columns of a dataset each kind of fault can hit."""

    numeric: tuple[str, ...] = ()
    timestamps: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    """Columns with an allowed set of values (compared as text)."""
    not_nullable: tuple[str, ...] = ()
    iso_timestamps: bool = False
    """Timestamps are ISO 8601 (``T`` separator) rather than Kiva's space-separated form."""


class RowBreaker:
    """Turns a clean row into a contract-breaking one, saying what it broke."""

    def __init__(self, header: tuple[str, ...], targets: DirtyTargets) -> None:
        self.header = header
        self.position = {name: i for i, name in enumerate(header)}
        self.targets = targets
        faults = [
            (self._non_numeric, targets.numeric),
            (self._impossible_timestamp, targets.timestamps),
            (self._outside_allowed, targets.allowed),
            (self._empty_required, targets.not_nullable),
        ]
        self.faults = [fault for fault, columns in faults if columns]
        self.faults += [self._missing_field, self._extra_field]

    def break_row(self, row: tuple[str, ...], rng: np.random.Generator) -> tuple[list[str], str]:
        """A broken copy of ``row`` and a short description of the fault."""
        fault = self.faults[int(rng.integers(len(self.faults)))]
        return fault(list(row), rng)

    def _pick(self, columns: tuple[str, ...], rng: np.random.Generator) -> tuple[str, int]:
        name = columns[int(rng.integers(len(columns)))]
        return name, self.position[name]

    def _non_numeric(self, row: list[str], rng: np.random.Generator) -> tuple[list[str], str]:
        name, pos = self._pick(self.targets.numeric, rng)
        row[pos] = NON_NUMERIC[int(rng.integers(len(NON_NUMERIC)))]
        return row, f"column {name!r}: non-numeric value {row[pos]!r}"

    def _impossible_timestamp(
        self, row: list[str], rng: np.random.Generator
    ) -> tuple[list[str], str]:
        name, pos = self._pick(self.targets.timestamps, rng)
        iso = self.targets.iso_timestamps
        value = row[pos] or (
            "2026-11-24T10:15:03.123+01:00" if iso else "2016-05-04 08:00:00.000 +0000"
        )
        # Same layout in both forms: YYYY-MM-DD?HH:MM...
        broken = (
            value[:5] + "13" + value[7:],  # month 13
            value[:8] + "32" + value[10:],  # day 32
            value[:11] + "25" + value[13:],  # hour 25
            value[:14] + "61" + value[16:],  # minute 61
            "0000-00-00T00:00:00.000Z" if iso else "0000-00-00 00:00:00.000 +0000",
        )
        row[pos] = broken[int(rng.integers(len(broken)))]
        return row, f"column {name!r}: impossible timestamp {row[pos]!r}"

    def _outside_allowed(self, row: list[str], rng: np.random.Generator) -> tuple[list[str], str]:
        name, pos = self._pick(self.targets.allowed, rng)
        capitalised = row[pos].capitalize()
        if row[pos] and capitalised != row[pos] and rng.random() < 0.5:
            row[pos] = capitalised  # allowed values are compared as text, case included
        else:
            row[pos] = OUTSIDE_ANY_SET[int(rng.integers(len(OUTSIDE_ANY_SET)))]
        return row, f"column {name!r}: value {row[pos]!r} outside the allowed set"

    def _empty_required(self, row: list[str], rng: np.random.Generator) -> tuple[list[str], str]:
        name, pos = self._pick(self.targets.not_nullable, rng)
        row[pos] = ""
        return row, f"column {name!r}: empty required value"

    def _missing_field(self, row: list[str], rng: np.random.Generator) -> tuple[list[str], str]:
        del row[int(rng.integers(len(row)))]
        return row, f"{len(row)} fields, expected {len(self.header)}"

    def _extra_field(self, row: list[str], rng: np.random.Generator) -> tuple[list[str], str]:
        row.insert(int(rng.integers(len(row) + 1)), "extra")
        return row, f"{len(row)} fields, expected {len(self.header)}"
