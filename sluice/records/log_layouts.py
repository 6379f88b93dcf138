"""Access-log layouts: a server's own format string compiled to the parts of one line.

A layout is written as the server's config writes it, so nobody writes a regular expression:
``layout: {nginx: '<log_format>'}`` or ``{apache: '<LogFormat>'}`` (read by
``sluice.records.log_format_syntax``). The named layouts (``ACCESS_LOG_LAYOUTS``) are such
strings, compiled by the same code.

A field between quotes reads up to the closing quote (``\\"`` does not close it), one between
brackets up to ``]``, one elsewhere up to the next space unless its variable says otherwise:
the contract column's type then checks the value, so ``2OO`` as a status is a typing dead
letter, not a layout mismatch. Text between variables must be there as written. Each part
has a name for dead-letter reasons (``'"' closing the user agent``, ``'rt=' before the request
time``, ``$upstream_addr``). Neither this module nor the syntax reader imports more than the errors:
contracts compile layouts to check their columns, the format reads lines by them.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from sluice.errors import ContractError
from sluice.records.log_format_syntax import (
    SERVERS,
    ServerLogFormat,
    Variable,
    format_tokens,
    literal_pattern,
)

ACCESS_LOG_LAYOUTS: dict[str, ServerLogFormat] = {
    "common": ServerLogFormat("apache", '%h %l %u %t "%r" %>s %b'),
    "combined": ServerLogFormat("apache", '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'),
    "vhost_combined": ServerLogFormat(
        "apache", '%v:%p %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
    ),
    # combined, then nginx's $request_time; Apache's %T is the same field in whole seconds.
    "combined_request_time": ServerLogFormat(
        "apache", '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %T'
    ),
}
"""The named layouts of ``format: access_log``, as the Apache ``LogFormat`` strings of the
same names (nginx's default ``combined`` writes the same lines)."""


@dataclass(frozen=True)
class Part:
    """One piece of a layout's line: what it is called in a reason, and its pattern."""

    what: str
    pattern: str


@dataclass(frozen=True)
class CompiledLayout:
    """A layout as the format reads it: its parts in line order, ending with the line's end."""

    title: str
    """How reasons name the layout: ``combined``, ``custom nginx``."""
    parts: tuple[Part, ...]
    fields: tuple[str, ...]
    """The columns the line holds, in line order."""


_WELL_KNOWN_WHAT = {
    "client_ip": "the client address",
    "ident": "the ident field",
    "user_name": "the user",
    "timestamp": "the time",
    "request": "the request line",
    "status": "the status",
    "bytes_sent": "the size",
    "referrer": "the referrer",
    "user_agent": "the user agent",
    "request_time": "the request time",
    "virtual_host": "the virtual host",
    "server_port": "the port",
}
_QUOTED = r'(?:[^"\\]|\\.)*'  # a backslash escapes the next byte (\" never closes the field)
_BRACKETED = r"[^\]]*"

# --- one compiler for both ------------------------------------------------------------------


def read_layout(layout: object) -> str | ServerLogFormat:
    """The layout a contract's ``layout:`` value names: a named layout, or a server's format
    as ``{nginx: '...'}`` or ``{apache: '...'}``."""
    if isinstance(layout, str):
        if layout not in ACCESS_LOG_LAYOUTS:
            raise ContractError(
                f"expected one of {', '.join(ACCESS_LOG_LAYOUTS)}, found {layout!r} (or your "
                "server's own format: {nginx: '<log_format>'} or {apache: '<LogFormat>'})"
            )
        return layout
    if isinstance(layout, dict) and len(layout) == 1:
        [(server, text)] = layout.items()
        if server in SERVERS and isinstance(text, str) and text.strip():
            return ServerLogFormat(server, text)
    raise ContractError(
        f"expected a layout name or one of {{nginx: '<log_format>'}}, "
        f"{{apache: '<LogFormat>'}} with the format as text, found {layout!r}"
    )


@functools.cache
def compile_layout(layout: str | ServerLogFormat) -> CompiledLayout:
    """The parts and fields of ``layout`` (a named layout or a server's format); a
    ContractError says which variable or text cannot be read."""
    if isinstance(layout, str):
        return _compiled(ACCESS_LOG_LAYOUTS[layout], layout)
    return _compiled(layout, f"custom {layout.server}")


def _compiled(layout: ServerLogFormat, title: str) -> CompiledLayout:
    tokens = format_tokens(layout)
    fields = [t for t in tokens if isinstance(t, Variable)]
    _check_fields(fields, tokens)
    pieces = [piece for t in tokens for piece in _pieces(t)]
    parts, quoted, bracketed = [], False, False
    for i, piece in enumerate(pieces):
        if isinstance(piece, Variable):
            pattern = _QUOTED if quoted else _BRACKETED if bracketed else _pattern(piece)
            parts.append(Part(_what(piece), f"(?P<{piece.name}>{pattern})"))
            continue
        before = pieces[i - 1] if i else None
        after = pieces[i + 1] if i + 1 < len(pieces) else None
        parts.append(Part(_literal_what(piece, before, after, quoted), literal_pattern(piece)))
        quoted ^= piece == '"'
        bracketed = (bracketed or piece == "[") and piece != "]" and not quoted
    parts.append(Part("the end of the line", "$"))
    return CompiledLayout(title, tuple(parts), tuple(f.name for f in fields))


def _check_fields(fields: list[Variable], tokens: list[str | Variable]) -> None:
    if not fields:
        raise ContractError("expected at least one variable in the format, found none")
    for name in dict.fromkeys(f.name for f in fields):
        written = [f.written for f in fields if f.name == name]
        if len(written) > 1:
            raise ContractError(
                f"expected each field once, found {name!r} from {' and '.join(written)}"
            )
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,127}", name):
            raise ContractError(
                f"{written[0]}: expected a name of letters, digits and '_' starting with a "
                f"letter for its column, found {name!r}"
            )
    for before, after in itertools.pairwise(tokens):
        if isinstance(before, Variable) and isinstance(after, Variable):
            raise ContractError(
                f"expected text between {before.written} and {after.written}, found none "
                "(a line cannot be split where nothing separates them)"
            )


def _pieces(token: str | Variable) -> list[str | Variable]:
    """A field, or literal text cut at quotes, brackets and spaces (each named in reasons)."""
    if isinstance(token, Variable):
        return [token]
    return [piece for piece in re.split(r'([" \[\]])', token) if piece]


def _pattern(field: Variable) -> str:
    """A field's pattern outside quotes and brackets: ports are digits (``%v:%p`` splits at
    the last ``:`` before them)."""
    return "[0-9]+" if field.name in ("server_port", "remote_port") else field.pattern


def _what(field: Variable) -> str:
    return _WELL_KNOWN_WHAT.get(field.name, field.written)


def _literal_what(
    text: str, before: str | Variable | None, after: str | Variable | None, quoted: bool
) -> str:
    if text == " ":
        return "a space"
    if text in ('"', "[") and isinstance(after, Variable) and not (text == '"' and quoted):
        return f"{text!r} opening {_what(after)}"
    if text in ('"', "]") and isinstance(before, Variable) and (text == "]" or quoted):
        return f"{text!r} closing {_what(before)}"
    if isinstance(after, Variable):
        return f"{text!r} before {_what(after)}"
    return repr(text)
