"""The web shop's requests, in time order, with the rhythms of real traffic: one model that
server_logs, access_logs and http_requests each write in their own shape.

Requests are spread over the minutes of the period by a daily cycle (quiet at night, a peak
in the evening), a weekly cycle (quieter weekends) and noise, with the exact count fixed by
a multinomial draw. A few error bursts turn most requests of one host into 5xx for some
minutes. Latency is long-tailed (lognormal with a slow tail), sizes depend on the route.
Clients come back (a few heavy ones, a long tail), from real address blocks of their
country; crawlers and scripts (``web_traffic.CRAWLERS``) take their own share, from their
operators' networks. Each request carries the UTC offset of the load balancer that logged
it (so the offsets vary, ``Z`` included).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from local.generate import web_traffic
from local.generate.timefmt import offset_text

BASE_DAY = "2026-11-01"
"""Seed S starts S days (mod 365) after this day: successive seeds read as successive exports."""
ROWS_PER_DAY = 1500
"""Small files span rows / ROWS_PER_DAY days (a 5,000-row file: four days) ..."""
MAX_DAYS = 28
"""... and big ones four weeks, more requests per minute instead of more days."""
BLOCK_ROWS = 20_000
STREAM_TRAFFIC, STREAM_CLIENTS, STREAM_BLOCKS, STREAM_CRAWLERS = 6, 7, 8, 9
MINUTE_MS = 60_000
# Requests per hour of the day in the main market's time (UTC+1), relative.
_HOURLY = np.array([0.30, 0.20, 0.15, 0.12, 0.12, 0.18, 0.35, 0.60, 0.85, 1.00, 1.10, 1.20,
                    1.30, 1.25, 1.20, 1.20, 1.25, 1.35, 1.50, 1.70, 1.80, 1.60, 1.10,
                    0.60])  # fmt: skip
_WEEKDAY = np.array([1.0, 1.02, 1.0, 0.98, 0.95, 0.78, 0.7])  # Monday first
_MARKET_OFFSET_MINUTES = 60
_ERROR_STATUSES, _ERROR_SHARES = np.array([500, 502, 503, 504]), [0.2, 0.3, 0.4, 0.1]
_CRAWL_TARGETS = ("pages", "api")


@dataclass(frozen=True)
class Requests:
    """One block of requests, column-wise, in time order."""

    utc_ms: np.ndarray
    offsets: np.ndarray
    """Minutes east of UTC of the load balancer that logged each request."""
    suffixes: np.ndarray
    """That offset as ISO 8601 writes it (``+01:00``, ``Z``)."""
    hosts: np.ndarray
    methods: np.ndarray
    paths: np.ndarray
    statuses: np.ndarray
    bytes_sent: np.ndarray
    latency_ms: np.ndarray
    timed: np.ndarray
    """False where the balancer lost the upstream timing."""
    client_ips: np.ndarray
    countries: np.ndarray
    """The client's country ("" when the geo lookup failed, and for internal clients)."""
    user_agents: np.ndarray
    referrers: np.ndarray
    """"" when the request named none."""
    crawled: np.ndarray
    """True for crawlers' and scripts' requests."""

    def __len__(self) -> int:
        return len(self.utc_ms)


@dataclass(frozen=True)
class _Clients:
    ips: np.ndarray
    countries: np.ndarray
    agents: np.ndarray
    offsets: np.ndarray
    suffixes: np.ndarray
    cdf: np.ndarray


def iter_request_blocks(rows: int, seed: int) -> Iterator[tuple[int, Requests]]:
    """(requests done so far, the block's requests) per block of about ``BLOCK_ROWS``."""
    first_day = np.datetime64(BASE_DAY, "D") + seed % 365
    days = int(min(MAX_DAYS, max(1, math.ceil(rows / ROWS_PER_DAY))))
    rng = np.random.default_rng([seed, STREAM_TRAFFIC])
    per_minute = rng.multinomial(rows, _minute_weights(first_day, days, rng))
    burst_rate, burst_host = _error_bursts(days * 1440, rng)
    tables = _route_tables(web_traffic.load_routes(rng, str(first_day)))
    clients = _client_pool(rows, np.random.default_rng([seed, STREAM_CLIENTS]))
    start_ms = int(first_day.astype("datetime64[ms]").astype(np.int64))
    done, first_minute = 0, 0
    for index, last_minute in enumerate(_block_edges(per_minute)):
        counts = per_minute[first_minute:last_minute]
        minute = np.repeat(np.arange(first_minute, last_minute), counts)
        block_rng = np.random.default_rng([seed, STREAM_BLOCKS, index])
        utc_ms = np.sort(
            start_ms + minute * MINUTE_MS + block_rng.integers(0, MINUTE_MS, len(minute))
        )
        minute = (utc_ms - start_ms) // MINUTE_MS
        burst = (burst_rate[minute], burst_host[minute])
        crawl_rng = np.random.default_rng([seed, STREAM_CRAWLERS, index])
        block = _block_requests(utc_ms, burst, tables, clients, block_rng, crawl_rng)
        done += len(block)
        first_minute = last_minute
        yield done, block


def _minute_weights(first_day: np.datetime64, days: int, rng: np.random.Generator) -> np.ndarray:
    minutes = np.arange(days * 1440)
    local = minutes + _MARKET_OFFSET_MINUTES
    hour = (local / 60.0) % 24
    daily = np.interp(hour, np.arange(25), np.append(_HOURLY, _HOURLY[0]))
    weekday = (int(first_day.astype(np.int64)) + 3 + local // 1440) % 7  # 1970-01-01: Thursday
    weights = daily * _WEEKDAY[weekday] * np.exp(rng.normal(0.0, 0.15, len(minutes)))
    # About one campaign spike a week: two to four times the traffic for up to 90 minutes.
    for _ in range(rng.poisson(days / 7) + 1):
        start = int(rng.integers(len(minutes)))
        weights[start : start + int(rng.integers(20, 90))] *= rng.uniform(2.0, 4.0)
    return weights / weights.sum()


def _error_bursts(minutes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per minute: share of requests failing with 5xx, and the host index hit (-1: all)."""
    rate = np.zeros(minutes)
    host = np.full(minutes, -1)
    hosts = sorted({route[0] for route in web_traffic.ROUTES})
    for _ in range(rng.poisson(0.6 * minutes / 1440) + 1):
        start = int(rng.integers(minutes))
        end = start + int(rng.integers(3, 31))
        rate[start:end] = rng.uniform(0.3, 0.8)
        host[start:end] = int(rng.integers(-1, len(hosts)))
    return rate, host


def _block_edges(per_minute: np.ndarray) -> list[int]:
    """Minute indices ending each block of about BLOCK_ROWS requests (none when no rows)."""
    cumulative = np.cumsum(per_minute)
    total = int(cumulative[-1])
    if total == 0:
        return []
    cuts = np.searchsorted(cumulative, np.arange(BLOCK_ROWS, total, BLOCK_ROWS)) + 1
    return sorted(set(cuts.tolist()) | {len(per_minute)})


def _client_pool(rows: int, rng: np.random.Generator) -> _Clients:
    """Clients that come back (a few heavy ones, a long tail), each with IP, country, agent."""
    size = int(min(200_000, max(50, rows // 12)))
    table = web_traffic.COUNTRIES
    codes = list(table)
    shares = np.array([table[c][0] for c in codes])
    country = rng.choice(len(codes), size=size, p=shares / shares.sum())
    agents = [a for a, _ in web_traffic.USER_AGENTS]
    agent_shares = np.array([s for _, s in web_traffic.USER_AGENTS])
    agent = rng.choice(len(agents), size=size, p=agent_shares / agent_shares.sum())
    ipv6 = rng.random(size) < 0.2
    parts = rng.integers(1, 255, (size, 3))
    ips, offsets, suffixes = [], [], []
    for i in range(size):
        _share, blocks, prefix, offset = table[codes[country[i]]]
        a, b, c = parts[i].tolist()
        if ipv6[i]:
            ips.append(f"{prefix}:{a * 251:x}:{b * 199:x}::{c:x}")
        else:
            ips.append(f"{blocks[(a + b) % len(blocks)]}.{b}.{c}")
        utc = offset == 60 and c < 255 * web_traffic.UTC_SHARE_OF_EU
        offsets.append(0 if utc else offset)
        suffixes.append(offset_text(0, utc_as_z=True) if utc else offset_text(offset))
    country_codes = np.array(codes, dtype=object)[country]
    country_codes[rng.random(size) < 0.01] = ""  # geo lookup failed
    popularity = (np.arange(size) + 5.0) ** -1.1
    return _Clients(
        ips=np.array(ips, dtype=object),
        countries=country_codes,
        agents=np.array(agents, dtype=object)[agent],
        offsets=np.array(offsets),
        suffixes=np.array(suffixes, dtype=object),
        cdf=np.cumsum(popularity) / popularity.sum(),
    )


@dataclass(frozen=True)
class _RouteTables:
    """Per-route lookups for vectorised draws."""

    routes: web_traffic.RouteTable
    cdf: np.ndarray
    crawl_cdf: np.ndarray
    """[target, route]: the routes crawlers of each ``_CRAWL_TARGETS`` fetch."""
    host_index: np.ndarray
    status_values: np.ndarray
    """[route, k]: the k-th status of the route's profile."""
    status_cdf: np.ndarray
    referrer_share: np.ndarray


def _route_tables(routes: web_traffic.RouteTable) -> _RouteTables:
    hosts = sorted(set(routes.hosts.tolist()))
    profiles = [web_traffic.PROFILES[p] for p in routes.profiles]
    width = max(len(p) for p in profiles)
    values = np.zeros((len(profiles), width), dtype=np.int64)
    cdf = np.ones((len(profiles), width))
    for i, profile in enumerate(profiles):
        shares = np.array([s for _, s in profile])
        values[i] = [code for code, _ in profile] + [profile[-1][0]] * (width - len(profile))
        cdf[i, : len(profile)] = np.cumsum(shares) / shares.sum()
        cdf[i, len(profile) - 1 :] = 1.0
    referrer = {"shop.example.com": 0.5, "static.shop.example.com": 0.85}
    return _RouteTables(
        routes=routes,
        cdf=_cumulative(routes.shares),
        crawl_cdf=np.array([_cumulative(_crawled_shares(routes, t)) for t in _CRAWL_TARGETS]),
        host_index=np.array([hosts.index(h) for h in routes.hosts]),
        status_values=values,
        status_cdf=cdf,
        referrer_share=np.array([referrer.get(h, 0.05) for h in routes.hosts]),
    )


def _crawled_shares(routes: web_traffic.RouteTable, target: str) -> np.ndarray:
    """Crawlers of pages read the shop's pages, robots.txt and sitemap; scripts the API."""
    host = "api.shop.example.com" if target == "api" else "shop.example.com"
    profiles = ("api",) if target == "api" else ("page", "static")
    templates = [route[2] for route in web_traffic.ROUTES]
    boost = np.array([web_traffic.CRAWLED_FILES.get(t, 1.0) for t in templates])
    fetched = (
        (routes.hosts == host)
        & (routes.methods == "GET")
        & np.isin(np.array(routes.profiles), profiles)
    )
    return np.where(fetched, routes.shares * boost, 0.0)


def _cumulative(shares: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(shares) / shares.sum()
    cdf[-1] = 1.0
    return cdf


def _block_requests(
    utc_ms: np.ndarray,
    burst: tuple[np.ndarray, np.ndarray],
    tables: _RouteTables,
    clients: _Clients,
    rng: np.random.Generator,
    crawl_rng: np.random.Generator,
) -> Requests:
    size = len(utc_ms)
    routes = tables.routes
    # Crawlers draw from their own stream, so the visitors' requests stay what they were.
    crawler = _crawler_of_each(size, crawl_rng)
    crawled = crawler >= 0
    pick_route = rng.random(size)
    route = np.searchsorted(tables.cdf, pick_route, "right")
    target = np.array([_CRAWL_TARGETS.index(c[2]) for c in web_traffic.CRAWLERS])
    for kind in np.unique(crawler[crawled]).tolist():
        chosen = crawler == kind
        route[chosen] = np.searchsorted(tables.crawl_cdf[target[kind]], pick_route[chosen], "right")
    path = routes.paths[
        routes.path_start[route] + (rng.random(size) * routes.path_count[route]).astype(np.int64)
    ]
    pick = (rng.random(size)[:, None] >= tables.status_cdf[route]).sum(axis=1)
    status = tables.status_values[route, np.minimum(pick, tables.status_values.shape[1] - 1)]
    rate, host = burst
    failing = (
        (rate > 0) & ((host == -1) | (host == tables.host_index[route])) & (rng.random(size) < rate)
    )
    status[failing] = rng.choice(_ERROR_STATUSES, size, p=_ERROR_SHARES)[failing]
    latency = routes.latency_ms[route] * np.exp(rng.normal(0.0, 0.6, size))
    latency *= np.where(rng.random(size) < 0.02, rng.uniform(5, 40, size), 1.0)
    latency[failing] *= rng.uniform(5, 30, size)[failing]
    # The balancer gives up after 60 s and answers 504 itself.
    latency = np.where(status == 504, rng.uniform(30_000, 60_000, size), latency)
    status[latency > 60_000] = 504
    latency = np.minimum(latency, 60_000.0)
    sent = np.rint(routes.size_bytes[route] * np.exp(rng.normal(0.0, 0.5, size))).astype(np.int64)
    sent = np.where(status >= 400, rng.integers(120, 700, size), sent)
    sent[(status == 204) | (status == 304)] = 0
    client = np.searchsorted(clients.cdf, rng.random(size), "right")
    ips, countries, agents = clients.ips[client], clients.countries[client], clients.agents[client]
    offsets, suffixes = clients.offsets[client], clients.suffixes[client]
    # Health checks come from inside the cluster, logged by the UTC balancer.
    probe = route == routes.health
    inside = rng.integers(0, len(web_traffic.HEALTH_CLIENTS), size)
    ips[probe] = np.array([ip for ip, _ in web_traffic.HEALTH_CLIENTS], dtype=object)[inside[probe]]
    agents[probe] = web_traffic.HEALTH_CLIENTS[0][1]
    countries[probe] = ""
    offsets[probe] = 0
    suffixes[probe] = "+00:00"
    referrers = np.array(web_traffic.REFERRERS, dtype=object)[
        rng.integers(0, len(web_traffic.REFERRERS), size)
    ]
    referred = (rng.random(size) < tables.referrer_share[route]) & ~crawled
    timed = rng.random(size) >= 0.002
    _use_crawler_clients(crawler, (ips, countries, agents, offsets, suffixes), crawl_rng)
    return Requests(
        utc_ms=utc_ms,
        offsets=offsets,
        suffixes=suffixes,
        hosts=routes.hosts[route],
        methods=routes.methods[route],
        paths=path,
        statuses=status,
        bytes_sent=sent,
        latency_ms=latency,
        timed=timed,
        client_ips=ips,
        countries=countries,
        user_agents=agents,
        referrers=np.where(referred, referrers, ""),
        crawled=crawled,
    )


def _crawler_of_each(size: int, rng: np.random.Generator) -> np.ndarray:
    """Per request, the index of the crawler that sent it in ``CRAWLERS`` (-1: a visitor)."""
    shares = np.array([c[1] for c in web_traffic.CRAWLERS])
    kind = np.searchsorted(np.cumsum(shares), rng.random(size), "right")
    return np.where(kind < len(shares), kind, -1)


def _use_crawler_clients(
    crawler: np.ndarray, columns: tuple[np.ndarray, ...], rng: np.random.Generator
) -> None:
    """Give crawlers' requests their operator's address, agent and balancer, in place."""
    ips, countries, agents, offsets, suffixes = columns
    last_octet = rng.integers(1, 255, len(crawler))
    pick_block = rng.integers(0, 1 << 16, len(crawler))
    for i in np.flatnonzero(crawler >= 0).tolist():
        agent, _share, _target, country, blocks = web_traffic.CRAWLERS[crawler[i]]
        offset = web_traffic.COUNTRIES[country][3]
        ips[i] = f"{blocks[pick_block[i] % len(blocks)]}.{last_octet[i]}"
        countries[i], agents[i] = country, agent
        offsets[i], suffixes[i] = offset, offset_text(offset)
