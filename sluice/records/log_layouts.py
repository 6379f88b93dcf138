"""Access-log layouts: a server's own format string compiled to the parts of one line.

A layout is written as the server's config writes it, so nobody writes a regular expression:
nginx ``log_format`` variables (``layout: {nginx: '$remote_addr - $remote_user ...'}``) or
Apache ``LogFormat`` directives (``layout: {apache: '%h %l %u %t \\"%r\\" ...'}``); either may
also be the whole directive pasted from the config (``log_format main '...' '...';``,
``LogFormat "..." nickname``). The named layouts (``ACCESS_LOG_LAYOUTS``) are such strings.

Well-known variables are read into the fields every layout shares (``$remote_addr`` and
``%h`` both give ``client_ip``); any other variable gives a column named after it
(``$upstream_response_time``, ``%{X-Forwarded-For}i`` as ``x_forwarded_for``). A field
between quotes reads up to the closing quote (``\\"`` does not close it), one between
brackets up to ``]``, one elsewhere up to the next space: the contract column's type then
checks the value, so ``2OO`` as a status is a typing dead letter, not a layout mismatch.
Text between variables must be there as written. This module imports nothing but the
errors: contracts compile layouts to check their columns, the format reads lines by them.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from sluice.errors import ContractError

SERVERS = ("nginx", "apache")


@dataclass(frozen=True)
class ServerLogFormat:
    """A layout in a server's own syntax: ``server`` is ``nginx`` or ``apache``."""

    server: str
    text: str


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


@dataclass(frozen=True)
class _Field:
    name: str
    written: str
    """The variable as the format string writes it (``$request_time``, ``%>s``)."""
    pattern: str = r"\S+"
    """Its pattern outside quotes and brackets."""


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
_UPSTREAM_LIST = r"[^ ,]+(?:(?:, | : )[^ ,]+)*"
"""nginx's ``$upstream_*`` values: one per upstream tried, joined by ``, `` (and `` : `` across
an internal redirect)."""
_STRFTIME = {
    "a": "[A-Za-z]+", "A": "[A-Za-z]+", "b": "[A-Za-z]+", "h": "[A-Za-z]+", "B": "[A-Za-z]+",
    "p": "[A-Za-z]+", "Z": "[A-Za-z]+", "d": "[0-9]{2}", "H": "[0-9]{2}", "I": "[0-9]{2}",
    "m": "[0-9]{2}", "M": "[0-9]{2}", "S": "[0-9]{2}", "y": "[0-9]{2}", "e": "[ 0-9][0-9]",
    "j": "[0-9]{3}", "Y": "[0-9]{4}", "u": "[0-9]", "w": "[0-9]", "s": "[0-9]+",
    "z": "[+-][0-9]{4}", "T": "[0-9]{2}:[0-9]{2}:[0-9]{2}", "R": "[0-9]{2}:[0-9]{2}",
    "F": "[0-9]{4}-[0-9]{2}-[0-9]{2}", "D": "[0-9]{2}/[0-9]{2}/[0-9]{2}", "%": "%",
}  # fmt: skip
"""strftime directives of one shape in every locale, as patterns."""
_EPOCH_TIMES = ("sec", "msec", "usec", "msec_frac", "usec_frac")


def _time_pattern(strftime: str, written: str) -> str:
    """The pattern of times written with ``strftime`` directives."""
    pieces = re.split(r"(%.?)", strftime)
    pattern = []
    for piece in pieces:
        if not piece.startswith("%"):
            pattern.append(_literal_pattern(piece))
        elif piece[1:] in _STRFTIME:
            pattern.append(_STRFTIME[piece[1:]])
        else:
            raise ContractError(
                f"{written}: expected strftime directives of one shape (%"
                f"{' %'.join(_STRFTIME)}), found {piece!r}"
            )
    return "".join(pattern)


def _column_name(text: str) -> str:
    """A header, cookie or variable name as a column name: ``X-Forwarded-For`` is
    ``x_forwarded_for``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# --- nginx: log_format variables -----------------------------------------------------------

_NGINX_FIELDS = {
    "remote_addr": "client_ip",
    "remote_user": "user_name",
    "time_local": "timestamp",
    "time_iso8601": "timestamp",
    "request": "request",
    "status": "status",
    "body_bytes_sent": "bytes_sent",
    "bytes_sent": "total_bytes_sent",  # headers included; bytes_sent is the body, as %b
    "http_referer": "referrer",
    "http_user_agent": "user_agent",
    "request_time": "request_time",
    "server_name": "virtual_host",
    "server_port": "server_port",
}
_NGINX_VARIABLE = re.compile(r"\$(?:\{(\w*)\}|(\w*))")
_NGINX_ARGUMENT = re.compile(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^\s'";]+)""")


def _nginx_field(variable: str) -> _Field:
    written = f"${variable}"
    if not re.fullmatch(r"[A-Za-z_]\w*", variable):
        raise ContractError(f"expected an nginx variable name after '$', found {written!r}")
    if variable == "time_local":
        return _Field("timestamp", written, _time_pattern("%d/%b/%Y:%H:%M:%S %z", written))
    if variable.startswith("upstream_"):
        return _Field(variable, written, _UPSTREAM_LIST)
    if variable in _NGINX_FIELDS:
        return _Field(_NGINX_FIELDS[variable], written)
    if variable.startswith("http_"):  # a request header, named as Apache's %{...}i names it
        return _Field(variable.removeprefix("http_"), written)
    return _Field(variable, written)


def _nginx_format(text: str) -> str:
    """The format string of ``text``, or of the ``log_format`` directive ``text`` is."""
    if not text.lstrip().startswith("log_format"):
        return text
    arguments = [
        m[3] if m[3] is not None else re.sub(r"\\(.)", r"\1", m[1] if m[1] is not None else m[2])
        for m in _NGINX_ARGUMENT.finditer(text.strip().removesuffix(";"))
    ]
    strings = arguments[2:]  # log_format, its name, then the strings
    if strings and strings[0].startswith("escape="):
        escape = strings.pop(0).removeprefix("escape=")
        if escape not in ("default", "none"):
            raise ContractError(
                f"log_format: expected escape=default or escape=none, found escape={escape} "
                "(a log of JSON objects is format: jsonl)"
            )
    return "".join(strings)


def _nginx_tokens(text: str) -> list[str | _Field]:
    tokens: list[str | _Field] = []
    end = 0
    for match in _NGINX_VARIABLE.finditer(text):
        tokens += [text[end : match.start()], _nginx_field(match[1] or match[2] or "")]
        end = match.end()
    return [*tokens, text[end:]]


# --- Apache: LogFormat directives ----------------------------------------------------------

_APACHE_FIELDS = {
    "a": "client_ip", "A": "server_addr", "b": "bytes_sent", "B": "bytes_sent",
    "f": "filename", "h": "client_ip", "H": "server_protocol", "k": "keepalive_requests",
    "l": "ident", "L": "log_id", "m": "request_method", "p": "server_port", "P": "pid",
    "q": "query_string", "r": "request", "R": "handler", "s": "status", "u": "user_name",
    "U": "uri", "v": "virtual_host", "V": "server_name", "X": "connection_status",
    "I": "bytes_received", "O": "total_bytes_sent", "S": "bytes_transferred",
    "D": "request_time_us", "T": "request_time",
}  # fmt: skip
"""Directives without an argument; the names are nginx's where it has the same value."""
_APACHE_ARGUMENT_FIELDS = {
    ("a", "c"): "peer_ip", ("h", "c"): "peer_host", ("p", "canonical"): "server_port",
    ("p", "local"): "server_port", ("p", "remote"): "remote_port", ("P", "pid"): "pid",
    ("P", "tid"): "tid", ("P", "hextid"): "tid", ("T", "s"): "request_time",
    ("T", "ms"): "request_time_ms", ("T", "us"): "request_time_us",
}  # fmt: skip
_APACHE_NAMED = {"i": "", "o": "sent_http_", "C": "cookie_", "e": "", "n": ""}
"""Directives whose argument names a header, cookie, variable or note: column prefixes."""
_HEADER_FIELDS = {"referer": "referrer", "user_agent": "user_agent"}
_APACHE_TOKEN = re.compile(r"\\(.)|%([!<>,0-9]*)(?:\{([^}]*)\})?(\^t[io]|.?)", re.DOTALL)
"""An escaped character, or a directive: status codes and ``<``/``>``, an argument, a letter."""


def _apache_field(letter: str, argument: str | None, written: str) -> _Field:
    if letter == "t" and argument is not None:
        strftime = re.sub(r"^(?:begin|end):", "", argument)
        if strftime in _EPOCH_TIMES:
            return _Field("timestamp", written, "[0-9]+")
        return _Field("timestamp", written, _time_pattern(strftime, written))
    if argument is None and letter in _APACHE_FIELDS:
        return _Field(_APACHE_FIELDS[letter], written)
    if argument is not None and (letter, argument) in _APACHE_ARGUMENT_FIELDS:
        return _Field(_APACHE_ARGUMENT_FIELDS[(letter, argument)], written)
    if argument and letter in _APACHE_NAMED:
        name = _column_name(argument)
        if letter == "i":
            name = _HEADER_FIELDS.get(name, name)
        return _Field(_APACHE_NAMED[letter] + name, written)
    known = "%% %a %A %b %B %{...}C %D %{...}e %f %h %H %{...}i %k %l %L %m %{...}n %{...}o"
    known += " %p %P %q %r %R %s %t %{...}t %T %{ms|us|s}T %u %U %v %V %X %I %O %S"
    raise ContractError(f"expected Apache LogFormat directives ({known}), found {written!r}")


def _apache_format(text: str) -> str:
    """The format string of ``text``, or of the ``LogFormat`` directive ``text`` is."""
    stripped = text.strip()
    if not stripped.startswith("LogFormat"):
        return text
    quoted = re.match(r'LogFormat\s+"((?:[^"\\]|\\.)*)"', stripped)
    if quoted is None:
        raise ContractError(
            f"LogFormat: expected the format string in double quotes, found {stripped!r}"
        )
    return quoted[1]


def _apache_tokens(text: str) -> list[str | _Field]:
    tokens: list[str | _Field] = []
    literal, end = "", 0
    for match in _APACHE_TOKEN.finditer(text):
        literal += text[end : match.start()]
        end = match.end()
        escaped, argument, letter = match[1], match[3], match[4]
        if escaped is not None:  # \" \\ and C escapes, as mod_log_config reads them
            literal += {"n": "\n", "t": "\t"}.get(escaped, escaped)
        elif letter == "%":
            literal += "%"
        elif letter == "t" and argument is None:  # [10/Oct/2000:13:55:36 -0700]
            tokens += [literal + "[", _Field("timestamp", match[0])]
            literal = "]"
        elif letter == "t" and _continues_time(tokens, literal):
            # "%{%d/%b/%Y %T}t.%{msec_frac}t %{%z}t" is one time, in pieces (Apache's example)
            before, piece = tokens.pop(), _apache_field(letter, argument, match[0])
            assert isinstance(before, _Field)
            written = before.written + literal + piece.written
            pattern = before.pattern + _literal_pattern(literal) + piece.pattern
            tokens.append(_Field("timestamp", written, pattern))
            literal = ""
        else:
            tokens += [literal, _apache_field(letter, argument, match[0])]
            literal = ""
    return [*tokens, literal + text[end:]]


def _continues_time(tokens: list[str | _Field], literal: str) -> bool:
    """Whether a ``%{...}t`` after ``literal`` continues the time before it."""
    before = tokens[-1] if tokens else None
    return (
        isinstance(before, _Field)
        and before.written.endswith("}t")
        and not set(literal) & set('"[]')
    )


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
    text = layout.text.strip("\r\n")  # a YAML block ends with one; the server adds its own
    if layout.server == "nginx":
        tokens = _nginx_tokens(_nginx_format(text))
    else:
        tokens = _apache_tokens(_apache_format(text))
    tokens = [t for t in tokens if t != ""]
    fields = [t for t in tokens if isinstance(t, _Field)]
    _check_fields(fields, tokens)
    pieces = [piece for t in tokens for piece in _pieces(t)]
    parts, quoted, bracketed = [], False, False
    for i, piece in enumerate(pieces):
        if isinstance(piece, _Field):
            pattern = _QUOTED if quoted else _BRACKETED if bracketed else _pattern(piece)
            parts.append(Part(_what(piece), f"(?P<{piece.name}>{pattern})"))
            continue
        before = pieces[i - 1] if i else None
        after = pieces[i + 1] if i + 1 < len(pieces) else None
        parts.append(Part(_literal_what(piece, before, after, quoted), _literal_pattern(piece)))
        quoted ^= piece == '"'
        bracketed = (bracketed or piece == "[") and piece != "]" and not quoted
    parts.append(Part("the end of the line", "$"))
    return CompiledLayout(title, tuple(parts), tuple(f.name for f in fields))


def _check_fields(fields: list[_Field], tokens: list[str | _Field]) -> None:
    if not fields:
        raise ContractError("expected at least one variable in the format, found none")
    for name in {f.name for f in fields}:
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
        if isinstance(before, _Field) and isinstance(after, _Field):
            raise ContractError(
                f"expected text between {before.written} and {after.written}, found none "
                "(a line cannot be split where nothing separates them)"
            )


def _pieces(token: str | _Field) -> list[str | _Field]:
    """A field, or literal text cut at quotes, brackets and spaces (each named in reasons)."""
    if isinstance(token, _Field):
        return [token]
    return [piece for piece in re.split(r'([" \[\]])', token) if piece]


def _pattern(field: _Field) -> str:
    """A field's pattern outside quotes and brackets: ports are digits (``%v:%p`` splits at
    the last ``:`` before them)."""
    return "[0-9]+" if field.name in ("server_port", "remote_port") else field.pattern


def _what(field: _Field) -> str:
    return _WELL_KNOWN_WHAT.get(field.name, field.written)


def _literal_what(
    text: str, before: str | _Field | None, after: str | _Field | None, quoted: bool
) -> str:
    if text == " ":
        return "a space"
    if text in ('"', "[") and isinstance(after, _Field) and not (text == '"' and quoted):
        return f"{text!r} opening {_what(after)}"
    if text in ('"', "]") and isinstance(before, _Field) and (text == "]" or quoted):
        return f"{text!r} closing {_what(before)}"
    if isinstance(after, _Field):
        return f"{text!r} before {_what(after)}"
    return repr(text)


def _literal_pattern(text: str) -> str:
    return re.escape(text).replace("\\ ", " ")
