"""The seam every input format plugs into: bytes in, records with raw fields out.

A contract names its ``format`` (``csv`` by default), and ``format_for`` returns the format
object of the module ``sluice/records/formats/<format>.py``. Validation at the door, the
Beam pipeline and the command line call only this interface; what comes after it (typing by
the contract, dead letters, lineage: ``sluice.records.parse``) is shared by every format, so a
file gives the same rows and the same dead letters whichever caller reads it.

A format answers four questions:

- ``scan``: where do records start and end in this stream? Whole-record chunks in bounded
  memory, from a stream that starts at a record boundary (the file's start or a split point),
  so split points (``sluice.records.splits``) are simply record starts it reports;
- ``read_header``: what does the file's first record say about its columns (formats whose
  files carry a header, ``has_header``), checked against the contract;
- ``faults``: which records cannot be read at all, by code (vectorised over the chunk), and
  ``describe_fault``: one record's reason, in words that say what was expected and found;
- ``fields``: the raw string fields of the readable records, by contract column.

Adding a format is one module here plus its tests: it must define ``FORMAT``. A format
that the contract configures (an access log's ``layout``) also defines
``format_for_contract(contract)``, which ``format_for`` calls; ``FORMAT`` is then its
instance for scanning alone (``format_named``: finding records never depends on the
contract).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import BinaryIO, Protocol

import numpy as np
import pyarrow as pa

from sluice.contracts import Contract, HeaderMapping, known_formats, resolve_header
from sluice.errors import ContractError
from sluice.records.chunks import RecordChunk


class RecordFormat(Protocol):
    """How one input format turns bytes into records and records into raw fields."""

    name: str
    has_header: bool
    """Whether a file's first record names its columns (CSV) or the contract does (logs)."""
    fault_nouns: Mapping[str, str]
    """Each fault code ``faults`` may report, with the noun validation uses for it."""

    def scan(
        self,
        stream: BinaryIO,
        *,
        chunk_bytes: int,
        max_record_bytes: int,
        byte_offset: int = 0,
        first_line: int = 1,
    ) -> Iterator[RecordChunk]:
        """Whole-record chunks of about ``chunk_bytes``; raises FileRejected for a file
        whose record boundaries cannot be trusted past some point."""
        ...

    def read_header(self, chunk: RecordChunk, contract: Contract) -> HeaderMapping:
        """The mapping the chunk's first record declares; FileRejected when it is bad."""
        ...

    def header_names(self, record: bytes) -> tuple[str, ...]:
        """The names a header record holds, as well as they can be read (for reports)."""
        ...

    def faults(self, chunk: RecordChunk, header: HeaderMapping) -> dict[str, np.ndarray]:
        """Fault code -> indices of the chunk's records that cannot be read (disjoint)."""
        ...

    def describe_fault(
        self, chunk: RecordChunk, index: int, code: str, header: HeaderMapping
    ) -> str:
        """Why record ``index`` has fault ``code``: expected what, found what."""
        ...

    def fields(
        self, chunk: RecordChunk, records: np.ndarray, header: HeaderMapping
    ) -> dict[str, pa.Array]:
        """Contract column -> string values of ``records`` ("" or null: no value)."""
        ...


def format_for(contract: Contract) -> RecordFormat:
    """The format the contract names, configured by the contract where the format asks."""
    module = _format_module(contract.format, f"contract {contract.name!r}: ")
    configure = getattr(module, "format_for_contract", None)
    record_format: RecordFormat = module.FORMAT if configure is None else configure(contract)
    return record_format


def format_named(name: str, where: str = "") -> RecordFormat:
    """The format of the module ``sluice/records/formats/<name>.py``, unconfigured."""
    record_format: RecordFormat = _format_module(name, where).FORMAT
    return record_format


def _format_module(name: str, where: str) -> ModuleType:
    if name not in known_formats():
        raise ContractError(
            f"{where}expected a format among {', '.join(known_formats())}, found {name!r}"
        )
    return importlib.import_module(f"{__name__}.{name}")


def contract_header(contract: Contract) -> HeaderMapping:
    """The mapping of a headerless format: the columns a file holds, in contract order."""
    return resolve_header([column.name for column in contract.file_columns], contract)
