"""Validation at the door: stream a landing file once and decide to accept or reject it.

The file is read in ``settings.chunk_bytes`` pieces, in bounded memory. Whole-file faults
reject it, as they make every row suspect: empty, a byte-level fault
(``sluice.ingest.byte_checks``), a header the contract rejects, an unterminated quote, a record
over ``settings.max_record_bytes``.

Row-level faults are warnings, because the pipeline dead-letters those rows: a wrong field
count, a malformed quote, a value that fails its type (checked on the first
``settings.type_sample_rows`` records, through the pipeline's own parser). They reject the file
only when more than ``settings.max_bad_sample_fraction`` of the rows have them (the records of
the whole file for field counts and quotes, the sample for types): past that point the file is
not the dataset the contract describes. A header-only file is valid but empty: accepted, with
an ``empty_file`` warning. Reading stops at the first whole-file fault, so a report lists that
fault and what was found before it; reasons are deterministic for a file and settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from sluice.contracts import Contract, HeaderMapping
from sluice.errors import FileRejected
from sluice.ingest.byte_checks import open_guarded
from sluice.records.chunks import RecordChunk
from sluice.records.formats import RecordFormat, contract_header, format_for
from sluice.records.parse import parse_chunk
from sluice.records.splits import SplitIndex, SplitPoint, SplitRecorder
from sluice.schema import SourceRef
from sluice.settings import Settings

RecordsHandler = Callable[[RecordChunk, HeaderMapping], None]
"""Called with each chunk of data records validation has checked, and the header mapping."""
MAX_LISTED = 20
"""Row-level warnings listed per code; the rest are summed up in one closing entry."""
# parse_chunk wants lineage for the rows it builds; validation keeps only its dead letters.
_SAMPLE_SOURCE = SourceRef(uri="validation-sample", generation=0)
_SAMPLE_TIME = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Problem:
    """One finding: a machine-readable code, a message, and the 1-based physical line."""

    code: str
    """empty_file, too_large, encoding, nul_byte, gzip, header, unterminated_quote,
    record_too_long, field_count, bad_quotes, layout (a line an access log's layout does not
    fit), json (a JSON-lines line that is not an object), missing_field (one without a
    required key) or types."""
    message: str
    """What was expected and what was found."""
    line: int | None = None
    """1-based physical line (the header is line 1); None when no single line is at fault."""


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on one file: why it is rejected, what the pipeline will dead-letter."""

    accepted: bool
    problems: tuple[Problem, ...]
    """Reasons to reject; empty exactly when the file is accepted."""
    warnings: tuple[Problem, ...]
    """Row-level issues (listed up to MAX_LISTED per code) and a header-only file."""
    header: tuple[str, ...]
    records: int
    """Data records seen, header excluded (all of them unless reading stopped early)."""
    bytes_read: int
    """Decompressed bytes read."""
    compressed: bool
    split_points: tuple[SplitPoint, ...] = ()
    """Record boundaries about every ``settings.split_bytes`` of an accepted plain file."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the quarantine reason file and ``--json`` output."""
        return {**asdict(self), "header": list(self.header), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Rebuild a report from ``to_dict`` output (for example a quarantine reason file)."""
        return cls(
            accepted=bool(data["accepted"]),
            problems=tuple(Problem(**p) for p in data["problems"]),
            warnings=tuple(Problem(**w) for w in data["warnings"]),
            header=tuple(data["header"]),
            records=int(data["records"]),
            bytes_read=int(data["bytes_read"]),
            compressed=bool(data["compressed"]),
            split_points=tuple(SplitPoint(**p) for p in data.get("split_points", ())),
        )

    def split_index(self, source: SourceRef) -> SplitIndex | None:
        """The split points of this (accepted, plain) file as an index, or None without any."""
        if not self.split_points:
            return None
        return SplitIndex(source.uri, source.generation, self.bytes_read, self.split_points)

    @property
    def reason(self) -> str | None:
        """One line summarising why the file is rejected (None when accepted)."""
        if not self.problems:
            return None
        return "; ".join(" ".join(p.message.split()) for p in self.problems)


@dataclass
class _RowIssues:
    """Rows with one kind of row-level fault: how many, and the first MAX_LISTED."""

    code: str
    noun: str
    count: int = 0
    listed: list[Problem] = field(default_factory=list)

    @property
    def room(self) -> int:
        """How many more rows may be listed."""
        return MAX_LISTED - len(self.listed)

    def add(self, count: int, lines: list[int], details: list[str]) -> None:
        """Count ``count`` faulty rows; list (line, detail) pairs while there is room."""
        self.count += count
        for line, detail in list(zip(lines, details, strict=True))[: self.room]:
            self.listed.append(Problem(self.code, f"line {line}: {detail}", line))

    def warnings(self) -> list[Problem]:
        """The listed rows, then one entry counting the rows left out."""
        rest = self.count - len(self.listed)
        more = [Problem(self.code, f"... and {rest} more ({self.count} in all)")] if rest else []
        return self.listed + more

    def rejection(self, out_of: int, what: str, limit: float) -> Problem | None:
        """A reason to reject when more than ``limit`` of ``out_of`` rows have this fault."""
        if not self.count or self.count <= limit * out_of:
            return None
        return Problem(
            self.code,
            f"expected at most {limit:.0%} of {what} with {self.noun}, found {self.count} of "
            f"{out_of}; first: {self.listed[0].message}",
        )


class _FileCheck:
    """What the record chunks of one file show, gathered chunk by chunk."""

    def __init__(
        self,
        contract: Contract,
        settings: Settings,
        record_format: RecordFormat,
        on_records: RecordsHandler | None = None,
    ) -> None:
        self.contract = contract
        self.on_records = on_records
        self.settings = settings
        self.format = record_format
        self.problems: list[Problem] = []
        self.header: tuple[str, ...] = ()
        self.mapping: HeaderMapping | None = (
            None if record_format.has_header else contract_header(contract)
        )
        self.blank_header_line = 0
        self.records = 0
        self.sampled = 0
        self.faults = {
            code: _RowIssues(code, noun) for code, noun in record_format.fault_nouns.items()
        }
        self.types = _RowIssues("types", "values that fail the contract")

    def add_chunk(self, chunk: RecordChunk) -> bool:
        """Check one chunk; False once the file is rejected and reading can stop."""
        if self.blank_header_line:
            return self._after_blank_header(chunk)
        if self.mapping is None:
            if not len(chunk):
                return True
            if not self._read_header(chunk):
                return False
            chunk = chunk.drop_first()
            if self.blank_header_line:
                return self._after_blank_header(chunk)
        if not len(chunk):
            return True
        unreadable = self._check_structure(chunk)
        wanted = self.settings.type_sample_rows - self.sampled
        if wanted > 0:
            take = min(len(chunk), wanted)
            self._check_types(chunk.select(slice(take)), unreadable[:take])
            self.sampled += take
        self.records += len(chunk)
        if self.on_records is not None:
            self.on_records(chunk, self.mapping)
        return True

    def _read_header(self, chunk: RecordChunk) -> bool:
        line = int(chunk.lines[0])
        # The guarded stream has already proved these bytes are UTF-8.
        record = chunk.record_bytes(0)
        if not record.decode("utf-8-sig").strip():
            self.blank_header_line = line
            return True
        self.header = self.format.header_names(record)
        try:
            self.mapping = self.format.read_header(chunk, self.contract)
        except FileRejected as exc:
            self.problems.append(Problem("header", str(exc), line))
            return False
        return True

    def _after_blank_header(self, chunk: RecordChunk) -> bool:
        # A file of nothing but whitespace is empty; anything after a blank first line is not.
        if not len(chunk) or not chunk.data.strip():
            return True
        line = self.blank_header_line
        message = f"line {line}: expected a header naming the columns, found a blank line"
        self.problems.append(Problem("header", message, line))
        return False

    def _check_structure(self, chunk: RecordChunk) -> np.ndarray:
        """Count the records the format cannot read, by fault; True where a record has one."""
        assert self.mapping is not None
        unreadable = np.zeros(len(chunk), dtype=np.bool_)
        for code, indices in self.format.faults(chunk, self.mapping).items():
            unreadable[indices] = True
            if not indices.size:
                continue
            issues = self.faults[code]
            shown = indices[: issues.room]
            issues.add(
                int(indices.size),
                chunk.lines[shown].tolist(),
                [self.format.describe_fault(chunk, int(i), code, self.mapping) for i in shown],
            )
        return unreadable

    def _check_types(self, sample: RecordChunk, unreadable: np.ndarray) -> None:
        """Type the sampled records with the pipeline's parser; count the failures."""
        assert self.mapping is not None
        dead = parse_chunk(
            sample,
            self.mapping,
            self.contract,
            _SAMPLE_SOURCE,
            ingested_at=_SAMPLE_TIME,
            record_format=self.format,
        ).dead
        counted_already = set(sample.lines[unreadable].tolist())
        lines, reasons = dead.column("line").to_pylist(), dead.column("reason").to_pylist()
        failures = [
            (line, reason)
            for line, reason in zip(lines, reasons, strict=True)
            if line not in counted_already
        ]
        shown = failures[: self.types.room]
        self.types.add(len(failures), [f[0] for f in shown], [f[1] for f in shown])
        # Arrow's allocator (mimalloc) would keep the sample's pages (~16 MB) for the whole
        # rest of the file, which validation streams without Arrow.
        pa.default_memory_pool().release_unused()

    def report(
        self, *, bytes_read: int, compressed: bool, split_points: tuple[SplitPoint, ...]
    ) -> ValidationReport:
        """The verdict, once reading has ended."""
        problems = list(self.problems)
        warnings = [w for issues in self.faults.values() for w in issues.warnings()]
        warnings += self.types.warnings()
        # A headerless file (an access log) is empty without records, as CSV is without a header.
        no_records = self.mapping is None or (not self.format.has_header and not self.records)
        if not problems and no_records:
            found = "0 bytes" if bytes_read == 0 else "only whitespace"
            expected = "a header and records" if self.format.has_header else "records"
            problems.append(Problem("empty_file", f"expected {expected}, found {found}"))
        elif not problems:
            limit = self.settings.max_bad_sample_fraction
            rejections = [
                *(
                    issues.rejection(self.records, "records", limit)
                    for issues in self.faults.values()
                ),
                self.types.rejection(self.sampled, "sampled records", limit),
            ]
            problems += [p for p in rejections if p is not None]
            if self.records == 0:
                message = "expected records after the header, found none (header only)"
                warnings.append(Problem("empty_file", message))
        return ValidationReport(
            accepted=not problems,
            problems=tuple(problems),
            warnings=tuple(warnings),
            header=self.header,
            records=self.records,
            bytes_read=bytes_read,
            compressed=compressed,
            split_points=() if problems else split_points,
        )


def validate_stream(
    raw: BinaryIO,
    contract: Contract,
    settings: Settings,
    *,
    on_records: RecordsHandler | None = None,
) -> ValidationReport:
    """Stream ``raw`` (plain or gzip) once, in bounded memory; accept or reject it.

    Faults of the file become problems in the report; an I/O error reading ``raw`` itself
    (a dropped connection) is not the file's fault and propagates, so the caller can retry.
    ``on_records`` gets each checked chunk of data records as it goes, so a caller can parse
    the file in this same read (``local.ingest``); a later chunk may still reject the file.
    """
    guarded = open_guarded(raw, max_bytes=settings.max_file_bytes)
    record_format = format_for(contract)
    check = _FileCheck(contract, settings, record_format, on_records)
    splits = SplitRecorder(settings.split_bytes)
    chunks = record_format.scan(
        guarded, chunk_bytes=settings.chunk_bytes, max_record_bytes=settings.max_record_bytes
    )
    try:
        for chunk in chunks:
            if not check.add_chunk(chunk):
                break
            splits.observe(chunk)
    except FileRejected as exc:
        check.problems.append(Problem(exc.code, str(exc), exc.line))
    finally:
        chunks.close()
    # A gzip stream's decompressed offsets cannot be seeked to: it is parsed as one range.
    points = () if guarded.compressed else tuple(splits.points)
    return check.report(
        bytes_read=guarded.bytes_read, compressed=guarded.compressed, split_points=points
    )
