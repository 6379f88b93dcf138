"""The access-log summaries (sql/5x_access_*.sql) against plain-Python sums of the same lines.

A seeded combined-format log of a few thousand lines (several days, time zones from -1200
to +1400, '-' sizes, TLS and timed-out request lines answered 400 and 408, 404s, statuses
outside 200-599, a garbage line) is written to a file, loaded through the real loader
(``local.ingest.ingest_file``: validation, then the pipeline) into a DuckDB warehouse and
cooked. Every expected number is computed here from the text of the lines, parsed with
``re`` and ``datetime``, never with Sluice's parser. The warehouse runs with the process
time zone at UTC+14, so a summary bucketing by the session zone would put rows on wrong days.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from local.ingest import ingest_file
from sluice.contracts import Contract
from sluice.cook.summaries import cook
from sluice.dashboard.page import render_dashboard
from sluice.settings import Settings, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.cook.test_summaries import Row, assert_matches, grouped, keyed
from tests.sluice.dashboard.test_page import Elements

FIRST_DAY = datetime(2026, 11, 23, tzinfo=UTC)
BUSY_DAYS = 4
TIE_DAY = FIRST_DAY + timedelta(days=6)  # a quiet day whose busiest hours tie
ZONES = [timezone(timedelta(minutes=m)) for m in (0, -7 * 60, 5 * 60 + 30, 60, 14 * 60, -12 * 60)]
# User agents and whether each is a bot (labelled by hand): browsers are people; crawlers,
# command-line tools and a missing agent ('-') are not.
BOTS = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0": False,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36": False,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1": False,
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": True,
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)": True,
    "curl/8.5.0": True,
    "-": True,
}
AGENTS = list(BOTS)
# Address blocks and the country each is allocated to by its registry (labelled by hand):
# Google's, APNIC's research block, RIPE NCC's, NIC.br's, SAKURA's, SWITCH's, Telecom
# Namibia's ('NA', not NULL), and blocks no country holds (documentation, private).
BLOCKS = {
    "8.8.8.": "US",
    "1.1.1.": "AU",
    "193.0.6.": "NL",
    "200.160.2.": "BR",
    "133.242.0.": "JP",
    "130.59.31.": "CH",
    "41.182.0.": "NA",
    "2001:620::": "CH",
    "2001:200::": "JP",
    "198.51.100.": None,
    "10.20.0.": None,
    "2001:db8::": None,
}
# Paths by popularity; "/Blog/" sorts before "/about" byte-wise, as both warehouses compare.
PATHS = ["/", "/index.html", "/Blog/", "/about", "/static/app.css", "/static/app.js"] + [
    f"/blog/post-{n:03d}" for n in range(150)
]
MISSING = ["/wp-login.php", "/.env", "/old-page", "/favicon.ico", "/blog/post-999"]
REFERRERS = (
    ["-"] * 6
    + [
        "https://www.google.com/",
        "https://duckduckgo.com/",
        "https://news.ycombinator.com/item?id=42",
        "https://shop.example/",
        "https://shop.example/blog/",
    ]
    + [f"https://shop.example/blog/post-{n:03d}" for n in range(30)]
)
STATUSES = [200] * 40 + [206, 301, 302, 304, 304, 403, 404, 500, 502, 503, 101, 999]
# Request lines that are not METHOD TARGET PROTOCOL, as servers log them (status, size).
NOT_HTTP = [
    (r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03", 400, "157"),  # TLS sent to port 80
    ("-", 408, "0"),  # a connection that timed out before sending a request
    ("GET /../../etc/passwd", 400, "226"),  # a scanner's line without a protocol
]
GARBAGE = "PHP Warning:  Undefined variable $x in /var/www/index.php on line 3"
TOP = 100  # the top-N cut-off of the ranked summaries
INT64_MAX = 2**63 - 1

# The combined layout, read independently: host ident user [time] "request" status size
# "referrer" "agent".
LINE = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d+) (?P<size>\d+|-) "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)"$'
)
REQUEST = re.compile(r"^(?P<method>[A-Z]+) (?P<target>\S+) (?P<protocol>HTTP/\d(?:\.\d)?)$")


def log_line(rng: random.Random, at: datetime, ip: str, agent: str, request: str,
             status: int, size: str, referrer: str) -> str:  # fmt: skip
    """One combined-format line, its time written in a random zone."""
    local = at.astimezone(rng.choice(ZONES)).strftime("%d/%b/%Y:%H:%M:%S %z")
    user = "alice" if rng.random() < 0.03 else "-"
    return f'{ip} - {user} [{local}] "{request}" {status} {size} "{referrer}" "{agent}"'


def access_log(seed: int = 20261203) -> list[str]:
    """A few thousand lines over four busy days and a quiet one, not in time order."""
    rng = random.Random(seed)
    ips = [f"{block}{i}" for block in BLOCKS for i in range(1, 8)]
    # A visitor is (ip, agent): some addresses are shared by two browsers (one NAT).
    clients = [(ip, rng.choice(AGENTS)) for ip in ips] + [(ip, AGENTS[0]) for ip in ips[:10]]
    weights = [1 / (rank + 1) for rank in range(len(PATHS))]
    lines = []
    for day in range(BUSY_DAYS):
        for _ in range(600 + 150 * day):
            hour = min(23, max(0, round(rng.gauss(15, 5))))
            at = FIRST_DAY + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
            ip, agent = rng.choice(clients)
            referrer = rng.choice(REFERRERS)
            if rng.random() < 0.06:
                path, status = rng.choice(MISSING), 404
            else:
                path, status = rng.choices(PATHS, weights)[0], rng.choice(STATUSES)
            target = path + (f"?page={rng.randrange(5)}" if rng.random() < 0.2 else "")
            size = (
                "-" if status in (304, 101) or rng.random() < 0.05 else str(rng.randrange(1 << 20))
            )
            method = rng.choice(["GET", "GET", "GET", "HEAD", "POST"])
            request = f"{method} {target} HTTP/{rng.choice(['1.0', '1.1', '2.0'])}"
            lines.append(log_line(rng, at, ip, agent, request, status, size, referrer))
        for request, status, size in NOT_HTTP * 3:
            at = FIRST_DAY + timedelta(days=day, seconds=rng.randrange(86_400))
            ip, agent = rng.choice(clients)
            lines.append(log_line(rng, at, ip, agent, request, status, size, "-"))
    # 09:00, 12:00 (with the two below) and 17:00 tie: 09:00 is the peak.
    for hour, count in ((17, 3), (12, 1), (9, 3)):
        for minute in range(count):
            at = TIE_DAY + timedelta(hours=hour, minutes=minute)
            lines.append(log_line(rng, at, ips[0], AGENTS[1], "GET / HTTP/1.1", 200, "512", "-"))
    for second in range(2):  # two of the largest sizes: their sum overflows an INT64
        at = TIE_DAY + timedelta(hours=12, minutes=30, seconds=second)
        big = str(INT64_MAX)
        lines.append(log_line(rng, at, ips[0], AGENTS[1], "GET / HTTP/1.1", 200, big, "-"))
    at = TIE_DAY + timedelta(hours=13, minutes=30)  # an hour whose only response has no body
    lines.append(log_line(rng, at, ips[0], AGENTS[1], "GET / HTTP/1.1", 304, "-", "-"))
    rng.shuffle(lines)
    lines.insert(len(lines) // 2, GARBAGE)
    return lines


def parse_line(line: str) -> Row | None:
    """The fields of one line as the contract describes them; None when it is not one."""
    found = LINE.match(line)
    if found is None:
        return None
    request = REQUEST.match(found["request"])
    target = request["target"] if request else None
    return {
        "client_ip": found["ip"],
        "user_agent": None if found["agent"] == "-" else found["agent"],
        "referrer": None if found["referrer"] == "-" else found["referrer"],
        "country_code": next(c for block, c in BLOCKS.items() if found["ip"].startswith(block)),
        "is_bot": BOTS[found["agent"]],
        "timestamp": datetime.strptime(found["time"], "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC),
        "method": request["method"] if request else None,
        "path": target.split("?")[0] if target else None,
        "status": int(found["status"]),
        "bytes_sent": None if found["size"] == "-" else int(found["size"]),
    }


@dataclass
class CookedLog:
    warehouse: DuckDBWarehouse
    settings: Settings
    rows: list[Row]
    """The log's requests, parsed by this module."""
    rows_loaded: int

    def table(self, name: str) -> list[Row]:
        return self.warehouse.query(f"SELECT * FROM {{cooked_dataset}}.{name}")


@pytest.fixture(scope="module")
def cooked(
    tmp_path_factory: pytest.TempPathFactory, contracts: dict[str, Contract]
) -> Iterator[CookedLog]:
    home = tmp_path_factory.mktemp("access")
    lines = access_log()
    path = home / "access.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Pacific/Kiritimati")
        time.tzset()
        settings = load_settings({}, home=home)
        outcome = ingest_file(path, contracts["access_logs"], settings)
        warehouse = DuckDBWarehouse(settings)
        cook(warehouse, settings)
        rows = [row for row in map(parse_line, lines) if row is not None]
        yield CookedLog(warehouse, settings, rows, outcome.record.rows_loaded)
        warehouse.close()
    time.tzset()


def traffic(requests: list[Row]) -> Row:
    """Requests, bytes (NULL when no response had a body) and 4xx/5xx of some requests."""
    sizes = [r["bytes_sent"] for r in requests if r["bytes_sent"] is not None]
    return {
        "requests": len(requests),
        "bytes_sent": sum(sizes) if sizes else None,
        "errors": sum(400 <= r["status"] <= 599 for r in requests),
    }


def visitors(requests: list[Row]) -> int:
    """Unique visitors as GoAccess counts them: distinct (ip, user agent, day)."""
    return len({(r["client_ip"], r["user_agent"], r["timestamp"].date()) for r in requests})


def hour_of(row: Row) -> datetime:
    return row["timestamp"].replace(minute=0, second=0, microsecond=0)


def ranked(groups: dict[str | None, list[Row]]) -> list[tuple[str | None, list[Row]]]:
    """Groups by requests, most first; a tie to the key that sorts first, NULL last."""
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0] is None, kv[0] or ""))


def test_access_log_loads_every_line_but_the_garbage(cooked: CookedLog) -> None:
    assert cooked.rows_loaded == len(cooked.rows) > 3000
    assert sum(r["method"] is None for r in cooked.rows) == BUSY_DAYS * len(NOT_HTTP) * 3


def test_cook_access_requests_per_hour(cooked: CookedLog) -> None:
    expected = {
        hour: traffic(g) | {"server_errors": sum(500 <= r["status"] <= 599 for r in g)}
        for hour, g in grouped(cooked.rows, hour_of).items()
    }

    actual = keyed(cooked.table("access_requests_per_hour"), "hour")

    assert_matches(actual, expected)
    assert any(row["bytes_sent"] is None for row in actual.values())  # only '-' sizes
    assert actual[TIE_DAY + timedelta(hours=12)]["bytes_sent"] == 2 * INT64_MAX + 512  # exact


def test_cook_access_requests_per_day(cooked: CookedLog) -> None:
    expected = {}
    for day, g in grouped(cooked.rows, lambda r: r["timestamp"].date()).items():
        classes = Counter(
            f"requests_{r['status'] // 100}xx" if 200 <= r["status"] <= 599 else "requests_other"
            for r in g
        )
        counts = traffic(g)
        expected[day] = {
            "requests": counts["requests"],
            "bytes_sent": counts["bytes_sent"],
            "unique_visitors": visitors(g),
            **{f"requests_{c}xx": classes[f"requests_{c}xx"] for c in range(2, 6)},
            "requests_other": classes["requests_other"],
            "invalid_requests": sum(r["method"] is None for r in g),
            "error_rate": counts["errors"] / len(g),
        }

    actual = keyed(cooked.table("access_requests_per_day"), "day")

    assert_matches(actual, expected)
    # UTC days: the busy days, the quiet one, and a day the zones spill into.
    assert TIE_DAY.date() in actual and FIRST_DAY.date() in actual
    assert all(row["requests_other"] > 0 for day, row in actual.items() if day != TIE_DAY.date())


def test_cook_access_peak_hour_per_day(cooked: CookedLog) -> None:
    per_hour = Counter(map(hour_of, cooked.rows))
    expected = {}
    for day, hours in grouped(list(per_hour), lambda h: h.date()).items():
        peak = min(hours, key=lambda h: (-per_hour[h], h))
        expected[day] = {
            "peak_hour": peak,
            "requests": per_hour[peak],
            "share_of_day": per_hour[peak] / sum(per_hour[h] for h in hours),
        }

    actual = keyed(cooked.table("access_peak_hour"), "day")

    assert_matches(actual, expected)
    assert actual[TIE_DAY.date()]["peak_hour"] == TIE_DAY + timedelta(hours=9)


def test_cook_access_top_paths(cooked: CookedLog) -> None:
    order = ranked(grouped(cooked.rows, lambda r: r["path"]))
    expected = {
        rank: {
            "path": path,
            "requests": len(g),
            "share_of_requests": len(g) / len(cooked.rows),
            "bytes_sent": traffic(g)["bytes_sent"],
        }
        for rank, (path, g) in enumerate(order[:TOP], 1)
    }

    actual = keyed(cooked.table("access_top_paths"), "path_rank")

    assert_matches(actual, expected)
    assert len(order[TOP - 1][1]) == len(order[TOP][1])  # the cut-off falls inside a tie
    assert None in {row["path"] for row in actual.values()}  # non-HTTP lines, together


def test_cook_access_top_not_found(cooked: CookedLog) -> None:
    missing = [r for r in cooked.rows if r["status"] == 404]
    order = ranked(grouped(missing, lambda r: r["path"]))
    expected = {
        rank: {
            "path": path,
            "requests": len(g),
            "share_of_not_found": len(g) / len(missing),
            "last_seen_at": max(r["timestamp"] for r in g),
        }
        for rank, (path, g) in enumerate(order[:TOP], 1)
    }

    actual = keyed(cooked.table("access_top_not_found"), "path_rank")

    assert_matches(actual, expected)
    assert {row["path"] for row in actual.values()} >= set(MISSING)


def test_cook_access_top_referrers_leave_out_requests_without_one(cooked: CookedLog) -> None:
    referred = [r for r in cooked.rows if r["referrer"] is not None]
    expected = {
        rank: {
            "referrer": referrer,
            "requests": len(g),
            "share_of_referred": len(g) / len(referred),
            "unique_visitors": visitors(g),
        }
        for rank, (referrer, g) in enumerate(ranked(grouped(referred, lambda r: r["referrer"])), 1)
    }

    actual = keyed(cooked.table("access_top_referrers"), "referrer_rank")

    assert_matches(actual, expected)
    assert len(referred) < len(cooked.rows)


def test_cook_access_traffic_by_country(cooked: CookedLog) -> None:
    expected = {
        country: {
            "requests": len(g),
            "share_of_requests": len(g) / len(cooked.rows),
            "bytes_sent": traffic(g)["bytes_sent"],
            "unique_visitors": visitors(g),
        }
        for country, g in grouped(cooked.rows, lambda r: r["country_code"]).items()
    }

    actual = keyed(cooked.table("access_traffic_by_country"), "country_code")

    assert_matches(actual, expected)
    assert "NA" in actual and None in actual  # Namibia beside the unknown


def test_cook_access_bots_per_day(cooked: CookedLog) -> None:
    expected = {}
    for day, g in grouped(cooked.rows, lambda r: r["timestamp"].date()).items():
        bots = sum(r["is_bot"] for r in g)
        expected[day] = {
            "requests": len(g),
            "human_requests": len(g) - bots,
            "bot_requests": bots,
            "unclassified_requests": 0,
            "human_share": (len(g) - bots) / len(g),
            "bot_share": bots / len(g),
        }

    actual = keyed(cooked.table("access_bots_per_day"), "day")

    assert_matches(actual, expected)
    assert actual[TIE_DAY.date()]["bot_share"] == 0.0


def test_dashboard_web_traffic_section_draws_the_cooked_access_tables(cooked: CookedLog) -> None:
    per_hour = Counter(map(hour_of, cooked.rows))
    per_day = grouped(cooked.rows, lambda r: r["timestamp"].date())

    page = Elements(render_dashboard(cooked.warehouse, cooked.settings))

    hours = {datetime.fromisoformat(b["data-web-hour"]): b for b in page.marks("web-hour", "rect")}
    assert {h: int(b["data-requests"]) for h, b in hours.items()} == per_hour
    busiest = min(per_hour, key=lambda h: (-per_hour[h], h))
    assert [h for h, b in hours.items() if b.get("data-peak") == "overall"] == [busiest]
    rates = {b["data-web-day"]: b["data-web-error-rate"] for b in page.marks("web-error-rate")}
    assert {day: float(rate) for day, rate in rates.items()} == {
        day.isoformat(): pytest.approx(traffic(g)["errors"] / len(g)) for day, g in per_day.items()
    }
    countries = Counter(r["country_code"] or "" for r in cooked.rows)
    bars = {b["data-web-country"]: int(b["data-requests"]) for b in page.marks("web-country")}
    assert bars == countries and "Web traffic (access logs)" in page.text
    # The top path's wide byte sum reads as a whole number, not as DECIMAL(38, 5) text.
    top_path = max(grouped(cooked.rows, lambda r: r["path"]).values(), key=len)
    assert f"{traffic(top_path)['bytes_sent']:,}" in page.text
