"""The servers' own log format strings, read into literal text and variables.

nginx writes a line by its ``log_format`` (``$remote_addr - $remote_user [$time_local] ...``),
Apache by its ``LogFormat`` (``%h %l %u %t \\"%r\\" ...``); a contract may hold either string,
or the whole directive pasted from the config (``log_format main '...' '...';``,
``LogFormat "..." nickname``). Each variable is the column it fills: well-known ones the
fields every layout shares (``$remote_addr`` and ``%h`` both give ``client_ip``), any other
one a column named after it (``$upstream_response_time``; ``%{X-Forwarded-For}i`` and
``$http_x_forwarded_for`` both ``x_forwarded_for``), with the pattern of its value where
that is not one word (``$time_local``, ``%{...}t``, ``$upstream_*`` lists).
``sluice.records.log_layouts`` compiles the result into the parts of a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sluice.errors import ContractError

SERVERS = ("nginx", "apache")


@dataclass(frozen=True)
class ServerLogFormat:
    """A layout in a server's own syntax: ``server`` is ``nginx`` or ``apache``."""

    server: str
    text: str


@dataclass(frozen=True)
class Variable:
    """A variable of the format: the column it fills, as written, and its value's pattern."""

    name: str
    written: str
    """The variable as the format string writes it (``$request_time``, ``%>s``)."""
    pattern: str = r"\S+"
    """Its pattern outside quotes and brackets."""


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
            pattern.append(literal_pattern(piece))
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


def _nginx_field(variable: str) -> Variable:
    written = f"${variable}"
    if not re.fullmatch(r"[A-Za-z_]\w*", variable):
        raise ContractError(f"expected an nginx variable name after '$', found {written!r}")
    if variable == "time_local":
        return Variable("timestamp", written, _time_pattern("%d/%b/%Y:%H:%M:%S %z", written))
    if variable.startswith("upstream_"):
        return Variable(variable, written, _UPSTREAM_LIST)
    if variable in _NGINX_FIELDS:
        return Variable(_NGINX_FIELDS[variable], written)
    if variable.startswith("http_"):  # a request header, named as Apache's %{...}i names it
        return Variable(variable.removeprefix("http_"), written)
    return Variable(variable, written)


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


def _nginx_tokens(text: str) -> list[str | Variable]:
    tokens: list[str | Variable] = []
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


def _apache_field(letter: str, argument: str | None, written: str) -> Variable:
    if letter == "t" and argument is not None:
        strftime = re.sub(r"^(?:begin|end):", "", argument)
        if strftime in _EPOCH_TIMES:
            return Variable("timestamp", written, "[0-9]+")
        return Variable("timestamp", written, _time_pattern(strftime, written))
    if argument is None and letter in _APACHE_FIELDS:
        return Variable(_APACHE_FIELDS[letter], written)
    if argument is not None and (letter, argument) in _APACHE_ARGUMENT_FIELDS:
        return Variable(_APACHE_ARGUMENT_FIELDS[(letter, argument)], written)
    if argument and letter in _APACHE_NAMED:
        name = _column_name(argument)
        if letter == "i":
            name = _HEADER_FIELDS.get(name, name)
        return Variable(_APACHE_NAMED[letter] + name, written)
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


def _apache_tokens(text: str) -> list[str | Variable]:
    tokens: list[str | Variable] = []
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
            tokens += [literal + "[", Variable("timestamp", match[0])]
            literal = "]"
        elif letter == "t" and _continues_time(tokens, literal):
            # "%{%d/%b/%Y %T}t.%{msec_frac}t %{%z}t" is one time, in pieces (Apache's example)
            before, piece = tokens.pop(), _apache_field(letter, argument, match[0])
            assert isinstance(before, Variable)
            written = before.written + literal + piece.written
            pattern = before.pattern + literal_pattern(literal) + piece.pattern
            tokens.append(Variable("timestamp", written, pattern))
            literal = ""
        else:
            tokens += [literal, _apache_field(letter, argument, match[0])]
            literal = ""
    return [*tokens, literal + text[end:]]


def _continues_time(tokens: list[str | Variable], literal: str) -> bool:
    """Whether a ``%{...}t`` after ``literal`` continues the time before it."""
    before = tokens[-1] if tokens else None
    return (
        isinstance(before, Variable)
        and before.written.endswith("}t")
        and not set(literal) & set('"[]')
    )


def format_tokens(layout: ServerLogFormat) -> list[str | Variable]:
    """``layout`` as literal texts (none empty) and variables, in line order; a ContractError
    names a variable or directive that cannot be read."""
    text = layout.text.strip("\r\n")  # a YAML block ends with one; the server adds its own
    if layout.server == "nginx":
        tokens = _nginx_tokens(_nginx_format(text))
    else:
        tokens = _apache_tokens(_apache_format(text))
    return [token for token in tokens if token != ""]


def literal_pattern(text: str) -> str:
    """``text`` matched as written."""
    return re.escape(text).replace("\\ ", " ")
