"""Web-server access logs (``format: access_log``): one request a line, fields by ``layout``.

The layouts (``sluice.contracts.ACCESS_LOG_LAYOUTS``) are the ones Apache and nginx ship:
``common`` (``%h %l %u %t "%r" %>s %b``), ``combined`` (common, then ``"%{Referer}i"
"%{User-Agent}i"``; nginx's default), ``vhost_combined`` (``%v:%p`` first) and
``combined_request_time`` (combined, then nginx's ``$request_time`` in seconds). A file has
no header: the contract's columns are named after the layout's fields.

Every line is one record (``sluice.records.linescan``). Its fields are read by one regular
expression over the whole chunk (Arrow's ``extract_regex``), never a Python loop per line.
What the fields mean, as Vector, Logstash's grok patterns and GoAccess read them:

- ``-`` is NULL for the ident, user, size, referrer, user agent and request time;
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
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import ACCESS_LOG_LAYOUTS, REQUEST_PARTS, Contract, HeaderMapping
from sluice.records.chunks import RecordChunk
from sluice.records.linescan import LineChunk, LineFormat

LAYOUT = "layout"
"""The one fault code: a line that does not match the layout."""
DEFAULT_LAYOUT = "combined"
NULL_WHEN_DASH = ("ident", "user_name", "bytes_sent", "referrer", "user_agent", "request_time")


@dataclass(frozen=True)
class _Part:
    """One piece of a layout's line: what it is called in a reason, and its pattern."""

    what: str
    pattern: str


_SPACE = _Part("a space", " ")
_QUOTED = r'(?:[^"\\]|\\.)*'  # a backslash escapes the next byte (\" never closes the field)


def _word(field: str, what: str) -> list[_Part]:
    return [_Part(what, rf"(?P<{field}>\S+)")]


def _quoted(field: str, what: str) -> list[_Part]:
    return [
        _Part(f"'\"' opening {what}", '"'),
        _Part(what, f"(?P<{field}>{_QUOTED})"),
        _Part(f"'\"' closing {what}", '"'),
    ]


_FIELD_PARTS: dict[str, list[_Part]] = {
    "client_ip": _word("client_ip", "the client address"),
    "ident": _word("ident", "the ident field"),
    "user_name": _word("user_name", "the user"),
    "timestamp": [
        _Part("'[' opening the time", r"\["),
        _Part("the time", r"(?P<timestamp>[^\]]*)"),
        _Part("']' closing the time", r"\]"),
    ],
    "request": _quoted("request", "the request line"),
    "status": _word("status", "the status"),
    "bytes_sent": _word("bytes_sent", "the size"),
    "referrer": _quoted("referrer", "the referrer"),
    "user_agent": _quoted("user_agent", "the user agent"),
    "request_time": _word("request_time", "the request time"),
}
_VHOST = [
    _Part("the virtual host", r"(?P<virtual_host>\S+)"),
    _Part("':' before the port", ":"),
    _Part("the port", r"(?P<server_port>[0-9]+)"),
]
_END = _Part("the end of the line", "$")

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


def _layout_parts(layout: str) -> list[_Part]:
    """The pieces of one line of ``layout``, in order, ending with the end of the line."""
    parts = list(_VHOST) if layout == "vhost_combined" else []
    fields = [f for f in ACCESS_LOG_LAYOUTS[layout] if f not in ("virtual_host", "server_port")]
    for name in fields:
        if parts:
            parts.append(_SPACE)
        parts.extend(_FIELD_PARTS[name])
    return [*parts, _END]


class AccessLogFormat(LineFormat):
    """Access-log lines of one layout (``format: access_log``, ``layout: ...``)."""

    name = "access_log"

    def __init__(self, layout: str) -> None:
        self.layout = layout
        self.parts = _layout_parts(layout)
        self.pattern = "^" + "".join(part.pattern for part in self.parts)
        self.fault_nouns: Mapping[str, str] = MappingProxyType(
            {LAYOUT: f"a shape other than the {layout} layout"}
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
        wanted = [
            name
            for name in ACCESS_LOG_LAYOUTS[self.layout]
            if name in header.positions or name == "request"
        ]
        values = {name: _unescaped(raw) for name, raw in self._extracted(lines, wanted).items()}
        for name in NULL_WHEN_DASH:
            if name in values:
                values[name] = _dash_to_null(values[name])
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


def describe_mismatch(record: bytes, layout: str) -> str:
    """Why ``record`` is not a line of ``layout``: the first part that does not fit."""
    parts = _layout_parts(layout)
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
        return f"expected a line of layout {layout}, found one that only partly fits"
    expected = parts[fitted].what
    after = f" after {parts[fitted - 1].what}" if fitted else " at the start of the line"
    if expected.startswith("'\"' closing"):
        after = ""  # "expected '"' closing the user agent", not "... after the user agent"
    rest = record[end:]
    found = "the end of the line" if not rest else repr(rest[:40].decode("utf-8", "replace"))
    return f"not a {layout} log line: expected {expected}{after}, found {found}"


@functools.cache
def format_for_layout(layout: str) -> AccessLogFormat:
    """The format reading ``layout`` (one per layout and process)."""
    return AccessLogFormat(layout)


def format_for_contract(contract: Contract) -> AccessLogFormat:
    """The format reading the contract's layout."""
    return format_for_layout(contract.layout or DEFAULT_LAYOUT)


FORMAT = format_for_layout(DEFAULT_LAYOUT)
"""The format by name alone (``format_named``): enough to find records, which never depends
on the layout."""
