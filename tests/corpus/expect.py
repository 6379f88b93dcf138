"""One corpus case: the bytes, where they land, and the outcome the whole path must reach.

An outcome is exactly one of:

- ``Loaded(rows, dead, values)``: the pipeline loads ``rows`` rows; ``dead`` maps each
  dead-lettered physical line to a substring of its reason (nothing else is dead-lettered);
  ``values`` are ``(line, column, value)`` triples the processed table must hold as given.
- ``Rejected(code, message)``: validation rejects the file with that ``Problem.code``
  (``FileRejected.code``); ``message`` is a substring of its reason.
- ``Ignored(why)``: ``on_upload`` drops the event without a claim; ``why`` is a substring
  of the logged reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Loaded:
    """The file loads; exactly the lines in ``dead`` become dead letters."""

    rows: int
    dead: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    """Physical line (header = 1) -> substring of its dead letter's reason."""
    values: tuple[tuple[int, str, object], ...] = ()
    """(line, column, expected value) of loaded rows, compared exactly."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dead", MappingProxyType(dict(self.dead)))


@dataclass(frozen=True)
class Rejected:
    """Validation rejects the file with ``code``."""

    code: str
    message: str = ""
    """A substring of the rejection reason."""
    max_bytes_read: int | None = None
    """When set: validation must have stopped reading after at most this many bytes."""


@dataclass(frozen=True)
class Ignored:
    """``on_upload`` acknowledges the event and does nothing else."""

    why: str
    """A substring of the logged reason."""


Outcome = Loaded | Rejected | Ignored


@dataclass(frozen=True)
class Case:
    """One bad (or oddly shaped) input and what must become of it."""

    id: str
    data: bytes | Callable[[], bytes]
    """The object's bytes, or a function building them (large inputs are never stored)."""
    expect: Outcome
    dataset: str = "kiva_loans"
    name: str | None = None
    """The landing object name; default ``incoming/<dataset>/<id>.csv``."""
    env: tuple[tuple[str, str], ...] = ()
    """Extra ``SLUICE_*`` settings for this case (small limits keep large cases fast)."""

    @property
    def object_name(self) -> str:
        """Where the case lands in the landing bucket."""
        return self.name if self.name is not None else f"incoming/{self.dataset}/{self.id}.csv"

    def payload(self) -> bytes:
        """The object's bytes."""
        return self.data if isinstance(self.data, bytes) else self.data()


def dead(*pairs: tuple[int, str]) -> dict[int, str]:
    """``{line: reason substring}`` from pairs, refusing a line given twice."""
    lines = [line for line, _ in pairs]
    if len(set(lines)) != len(lines):
        raise ValueError(f"expected each dead line once, found {lines}")
    return dict(pairs)
