"""Web-server access logs (``format: access_log``): one request a line, fields by ``layout``.

The named layouts (``sluice.records.log_layouts.ACCESS_LOG_LAYOUTS``) are the ones Apache and
nginx ship: ``common`` (``%h %l %u %t "%r" %>s %b``), ``combined`` (common, then
``"%{Referer}i" "%{User-Agent}i"``; nginx's default), ``vhost_combined`` (``%v:%p`` first) and
``combined_request_time`` (combined, then nginx's ``$request_time`` in seconds). Any other
layout is the server's own format string (``layout: {nginx: '...'}`` or ``{apache: '...'}``),
compiled by the same code. A file has no header: the contract's columns are named after the
layout's fields.

Every line is one record (``sluice.records.linescan``). Its fields are read by one regular
expression over the whole chunk (Arrow's ``extract_regex``), never a Python loop per line.
What the fields mean, as Vector, Logstash's grok patterns and GoAccess read them:

- ``-`` is NULL in every field but the client, time, request line, status, virtual host,
  port and Apache's connection status (``DASH_IS_A_VALUE``);
- the time ``[10/Oct/2000:13:55:36 -0700]`` is typed by the contract column's format
  (``%d/%b/%Y:%H:%M:%S %z``) and stored in UTC;
- the request line ``METHOD TARGET PROTOCOL`` gives ``method``, ``path``, ``query`` (after
  the ``?``; NULL when absent or empty) and ``protocol``. A request line of another shape
  (TLS bytes ``\\x16\\x03\\x01...`` with a 400, a bare ``-`` with a 408, scanners' junk)
  keeps its row: the server answered it. Those four are NULL and ``request`` keeps the text;
- inside a field, ``\\"`` and ``\\\\`` (Apache) and ``\\xHH`` (both servers; nginx writes
  ``"`` as ``\\x22``) are unescaped. A field whose unescaped bytes are not UTF-8 text or hold
  control characters (the TLS bytes) keeps the text as the server logged it;
- a line that does not match the layout at all (the last line of a file cut mid-write,
  interleaved garbage, another layout) is a dead letter whose reason says which part of the
  layout was expected where and what was found.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import REQUEST_PARTS, Contract, HeaderMapping
from sluice.records.chunks import RecordChunk
from sluice.records.linescan import LineChunk, LineFormat
from sluice.records.log_layouts import ServerLogFormat, compile_layout

LAYOUT = "layout"
"""The one fault code: a line that does not match the layout."""
DEFAULT_LAYOUT = "combined"
DASH_IS_A_VALUE = (
    "client_ip", "timestamp", "request", "status", "virtual_host", "server_port",
    "connection_status",
)  # fmt: skip
"""Fields where ``-`` is what the server logged (a timed-out request line, Apache's "connection
closed"); in every other field it is the servers' "no value", NULL."""

# METHOD TARGET PROTOCOL; the target splits at its first '?'.
_REQUEST_LINE = (
    r"^(?P<method>[A-Z][A-Z0-9_-]*) (?P<path>[^ ?]*)(?:\?(?P<query>[^ ]*))?"
    r" (?P<protocol>[A-Z]+/[0-9]+(?:\.[0-9]+)?)$"
)
_ESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|[\"\\bnrtv])")
_C_ESCAPES = {b"b": b"\b", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>")
_ONE_PASS_GROUPS = 4
"""The most capture groups RE2's fast one-pass matcher extracts (its kMaxOnePassCapture is
five, the whole match included)."""


class AccessLogFormat(LineFormat):
    """Access-log lines of one layout (``format: access_log``, ``layout: ...``)."""

    name = "access_log"

    def __init__(self, layout: str | ServerLogFormat) -> None:
        self.layout = layout
        compiled = compile_layout(layout)
        self.fields_in_line = compiled.fields
        self.pattern = "^" + "".join(part.pattern for part in compiled.parts)
        self.fault_nouns: Mapping[str, str] = MappingProxyType(
            {LAYOUT: f"a shape other than the {compiled.title} layout"}
        )

    def faults(self, chunk: RecordChunk, header: HeaderMapping) -> dict[str, np.ndarray]:
        """The lines that do not match the layout."""
        # Matching alone, without the fields: RE2 answers it with its DFA, about ten times
        # faster than extracting, and validation at the door needs no more.
        matched = pc.match_substring_regex(self._lines(chunk), self.pattern)
        return {LAYOUT: np.flatnonzero(~matched.to_numpy(zero_copy_only=False))}

    def describe_fault(
        self, chunk: RecordChunk, index: int, code: str, header: HeaderMapping
    ) -> str:
        """Where the line leaves the layout: ``expected <part> after <part>, found <text>``."""
        return describe_mismatch(chunk.record_bytes(index), self.layout)

    def fields(
        self, chunk: RecordChunk, records: np.ndarray, header: HeaderMapping
    ) -> dict[str, pa.Array]:
        """The layout's fields of ``records`` (matching, UTF-8 lines), unescaped, by column."""
        lines = self._lines(chunk).take(pa.array(records, pa.int64()))
        splits_request = not set(REQUEST_PARTS).isdisjoint(header.positions)
        wanted = [
            name
            for name in self.fields_in_line
            if name in header.positions or (name == "request" and splits_request)
        ]
        values = {name: _unescaped(raw) for name, raw in self._extracted(lines, wanted).items()}
        for name in values.keys() - set(DASH_IS_A_VALUE):
            values[name] = _dash_to_null(values[name])
        if "request" in values:
            request = pc.extract_regex(values["request"], _REQUEST_LINE)
            for part in REQUEST_PARTS:
                values[part] = pc.if_else(
                    request.is_valid(), request.field(part), pa.scalar(None, pa.string())
                )
        return {name: values[name] for name in header.positions}

    def _extracted(self, lines: pa.Array, names: list[str]) -> dict[str, pa.Array]:
        """The fields ``names`` of ``lines`` (each one matches the layout), by name.

        RE2 extracts at most four groups with its one-pass matcher; more groups fall back to
        a matcher several times slower per line. So the whole pattern (the same match) runs
        once per four fields, the other groups made non-capturing.
        """
        fields: dict[str, pa.Array] = {}
        for first in range(0, len(names), _ONE_PASS_GROUPS):
            batch = names[first : first + _ONE_PASS_GROUPS]
            extracted = pc.extract_regex(lines, _capturing_only(self.pattern, batch))
            fields.update((name, extracted.field(name)) for name in batch)
        return fields

    def _lines(self, chunk: RecordChunk) -> pa.LargeBinaryArray:
        """Every record's bytes as one Arrow array, made once per chunk: ``faults`` asks
        first, ``fields`` next."""
        if not isinstance(chunk, LineChunk):
            raise TypeError(f"expected a chunk of lines, found {type(chunk).__name__}")
        cached = chunk.parsed
        if isinstance(cached, tuple) and cached[0] == self.name:
            return cached[1]
        # Records and the gaps between them (terminators, empty lines) side by side; the
        # records alone are then one copy away, exactly their bytes.
        bounds = np.empty(2 * len(chunk), dtype=np.int64)
        bounds[0::2], bounds[1::2] = chunk.starts, chunk.ends
        both = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(),
            max(2 * len(chunk) - 1, 0),
            [None, pa.py_buffer(bounds), pa.py_buffer(chunk.data)],
        )
        lines = both.take(pa.array(np.arange(0, 2 * len(chunk), 2)))
        chunk.parsed = (self.name, lines)
        return lines


def _capturing_only(pattern: str, names: list[str]) -> str:
    """``pattern`` with every named group outside ``names`` made non-capturing."""
    return _NAMED_GROUP.sub(lambda group: group[0] if group[1] in names else "(?:", pattern)


def _unescaped(values: pa.Array) -> pa.Array:
    """The field as text, with the servers' escapes undone where they hide text."""
    escaped = pc.match_substring(values, "\\").to_numpy(zero_copy_only=False)
    text = values.cast(pa.large_string()).cast(pa.string())
    if not escaped.any():
        return text
    # Only the few values holding a backslash take this loop, never every line.
    decoded = [_unescape(raw) for raw in values.filter(pa.array(escaped)).to_pylist()]
    return pc.replace_with_mask(text, pa.array(escaped), pa.array(decoded, pa.string()))


def _unescape(raw: bytes) -> str:
    """``\\"``, ``\\\\``, C escapes and ``\\xHH`` undone, unless that makes control
    characters or bytes that are not UTF-8: then the text as logged."""

    def one(match: re.Match[bytes]) -> bytes:
        code = match[1]
        if code[:1] == b"x":
            return bytes.fromhex(code[1:].decode("ascii"))
        return _C_ESCAPES.get(code, code)

    logged = raw.decode("utf-8")
    try:
        text = _ESCAPE.sub(one, raw).decode("utf-8")
    except UnicodeDecodeError:
        return logged
    return logged if _CONTROL.search(text) else text


def _dash_to_null(values: pa.Array) -> pa.Array:
    """``-`` (the servers' "no value") as NULL."""
    return pc.if_else(pc.equal(values, "-"), pa.scalar(None, pa.string()), values)


def describe_mismatch(record: bytes, layout: str | ServerLogFormat) -> str:
    """Why ``record`` is not a line of ``layout``: the first part that does not fit."""
    compiled = compile_layout(layout)
    parts = compiled.parts
    end, fitted = 0, 0
    # The longest prefix of parts that matches; every part is a short pattern, and this
    # runs for dead letters only.
    for count in range(1, len(parts) + 1):
        pattern = "".join(part.pattern for part in parts[:count])
        match = re.match(pattern.encode(), record)
        if match is None:
            break
        end, fitted = match.end(), count
    if fitted == len(parts):
        return f"expected a line of layout {compiled.title}, found one that only partly fits"
    expected = parts[fitted].what
    after = f" after {parts[fitted - 1].what}" if fitted else " at the start of the line"
    if expected.startswith("'\"' closing"):
        after = ""  # "expected '"' closing the user agent", not "... after the user agent"
    rest = record[end:]
    found = "the end of the line" if not rest else repr(rest[:40].decode("utf-8", "replace"))
    return f"not a {compiled.title} log line: expected {expected}{after}, found {found}"


@functools.cache
def format_for_layout(layout: str | ServerLogFormat) -> AccessLogFormat:
    """The format reading ``layout`` (one per layout and process)."""
    return AccessLogFormat(layout)


def format_for_contract(contract: Contract) -> AccessLogFormat:
    """The format reading the contract's layout."""
    return format_for_layout(contract.layout or DEFAULT_LAYOUT)


FORMAT = format_for_layout(DEFAULT_LAYOUT)
"""The format by name alone (``format_named``): enough to find records, which never depends
on the layout."""
