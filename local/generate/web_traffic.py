# ruff: noqa: E501  (user agents and routes are data, one per line)
"""What a small web shop's servers see: routes, status mixes, clients, user agents, referrers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# fmt: off
# Status mixes: (status, share).
PROFILES: dict[str, tuple[tuple[int, float], ...]] = {
    "page": ((200, 0.955), (304, 0.02), (301, 0.005), (404, 0.012), (500, 0.004), (503, 0.004)),
    "write": ((200, 0.5), (201, 0.42), (400, 0.04), (409, 0.02), (422, 0.015), (500, 0.005)),
    "payment": ((201, 0.88), (402, 0.04), (400, 0.03), (409, 0.01), (500, 0.025), (502, 0.015)),
    "auth": ((200, 0.85), (401, 0.12), (429, 0.02), (500, 0.01)),
    "api": ((200, 0.95), (304, 0.01), (404, 0.03), (429, 0.005), (500, 0.005)),
    "static": ((200, 0.8), (304, 0.185), (404, 0.015)),
    "scanner": ((404, 0.9), (403, 0.1)),
    "head": ((200, 0.97), (404, 0.03)),
    "delete": ((204, 0.95), (404, 0.04), (500, 0.01)),
    "preflight": ((204, 1.0),),
    "health": ((200, 0.998), (503, 0.002)),
    "slow": ((200, 0.93), (504, 0.05), (500, 0.02)),
}

# (host, method, path template, share of requests, median latency ms, median bytes, profile)
ROUTES: tuple[tuple[str, str, str, float, float, float, str], ...] = (
    ("shop.example.com", "GET", "/", 8, 45, 18000, "page"),
    ("shop.example.com", "GET", "/products", 6, 80, 42000, "page"),
    ("shop.example.com", "GET", "/products/{product}", 14, 65, 36000, "page"),
    ("shop.example.com", "GET", "/search?q={query}", 5, 180, 30000, "page"),
    ("shop.example.com", "GET", "/cart", 3, 50, 12000, "page"),
    ("shop.example.com", "POST", "/cart/items", 2, 90, 800, "write"),
    ("shop.example.com", "GET", "/checkout", 1.2, 120, 15000, "page"),
    ("shop.example.com", "POST", "/checkout", 0.6, 450, 2000, "payment"),
    ("shop.example.com", "GET", "/login", 1, 30, 9000, "page"),
    ("shop.example.com", "POST", "/login", 0.8, 220, 600, "auth"),
    ("shop.example.com", "GET", "/account/orders", 0.7, 140, 20000, "page"),
    ("shop.example.com", "GET", "/blog/{slug}", 1.5, 40, 25000, "page"),
    ("shop.example.com", "GET", "/favicon.ico", 2, 2, 1150, "static"),
    ("shop.example.com", "GET", "/robots.txt", 0.3, 2, 120, "static"),
    ("shop.example.com", "GET", "/sitemap.xml", 0.2, 15, 48000, "static"),
    ("shop.example.com", "GET", "/wp-login.php", 0.3, 3, 150, "scanner"),
    ("shop.example.com", "GET", "/.env", 0.15, 2, 150, "scanner"),
    ("shop.example.com", "HEAD", "/", 0.5, 10, 0, "head"),
    ("api.shop.example.com", "GET", "/api/v1/products", 5, 35, 8500, "api"),
    ("api.shop.example.com", "GET", "/api/v1/products/{product}", 6, 18, 2100, "api"),
    ("api.shop.example.com", "GET", "/api/v1/products?ids={ids}", 1, 60, 6000, "api"),
    ("api.shop.example.com", "GET", "/api/v1/cart", 3, 20, 900, "api"),
    ("api.shop.example.com", "POST", "/api/v1/cart/items", 2, 45, 400, "write"),
    ("api.shop.example.com", "PATCH", "/api/v1/cart/items/{product}", 0.5, 40, 300, "write"),
    ("api.shop.example.com", "DELETE", "/api/v1/cart/items/{product}", 0.5, 30, 0, "delete"),
    ("api.shop.example.com", "POST", "/api/v1/orders", 0.8, 380, 1200, "payment"),
    ("api.shop.example.com", "GET", "/api/v1/orders/{order}", 1, 55, 1800, "api"),
    ("api.shop.example.com", "PUT", "/api/v1/users/me", 0.2, 70, 700, "write"),
    ("api.shop.example.com", "POST", "/api/v1/auth/token", 1.5, 150, 500, "auth"),
    ("api.shop.example.com", "OPTIONS", "/api/v1/products", 0.8, 1, 0, "preflight"),
    ("api.shop.example.com", "GET", "/healthz", 4, 1, 2, "health"),
    ("static.shop.example.com", "GET", "/static/js/app.{hash}.js", 6, 4, 240000, "static"),
    ("static.shop.example.com", "GET", "/static/css/main.{hash}.css", 5, 3, 52000, "static"),
    ("static.shop.example.com", "GET", "/images/products/{product}.jpg", 12, 6, 85000, "static"),
    ("static.shop.example.com", "GET", "/static/fonts/inter-var.woff2", 2, 3, 98000, "static"),
    ("admin.shop.example.com", "GET", "/admin/reports/sales?from={day}&to={day}", 0.1, 2500, 150000, "slow"),
    ("admin.shop.example.com", "POST", "/admin/export", 0.05, 8000, 5_000_000, "slow"),
)

HEALTH_ROUTE = "/healthz"
HEALTH_CLIENTS = (("10.0.3.17", "kube-probe/1.29"), ("10.0.4.22", "kube-probe/1.29"))
QUERIES = ("shoes", "red+dress", "caf%C3%A9", "t-shirt", "shoes,red", "gift+card", "socks&size=m",
           "\"running shoes\"", "jeans", "sale")
SLUGS = ("black-friday-2026", "how-we-source-cotton", "care-guide", "new-arrivals", "returns")
HASHES = ("3f9a1c", "8b2e77")

# (user agent, share); some hold commas, one holds double quotes, one is empty.
USER_AGENTS: tuple[tuple[str, float], ...] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36", 30),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1", 20),
    ("Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36", 15),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Safari/605.1.15", 10),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0", 5),
    ("ShopApp/4.12.0 (iOS 18.6; iPhone15,2; Scale/3.00)", 6),
    ("okhttp/4.12.0", 3),
    ("python-requests/2.32.5", 1.5),
    ("curl/8.14.1", 1),
    ("Go-http-client/2.0", 1),
    ('Mozilla/5.0 (compatible; "SiteAuditBot" 1.0; +https://audit.example.net/bot)', 0.5),
    ("", 1),
)

REFERRERS = ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/",
             "https://shop.example.com/", "https://shop.example.com/products",
             "https://shop.example.com/search?q=shoes,red", "https://t.co/Xy12aBc",
             "android-app://com.google.android.gm/", "https://www.instagram.com/")

# country -> (share of clients, IPv4 /16 blocks allocated to the country's ISPs, IPv6 /32
# of one of them, UTC offset minutes of the load balancer that serves it; the offset's text
# is "Z" when written as utc_as_z). Every block is the country's in the RIRs' delegations.
COUNTRIES: dict[str, tuple[float, tuple[str, ...], str, int]] = {
    "US": (30, ("23.89", "64.139", "98.127", "174.144"), "2600:1700", -300),
    "DE": (9, ("46.90", "84.155", "91.37"), "2a02:8108", 60),
    "GB": (8, ("51.120", "81.134", "86.143"), "2a00:23c5", 60),
    "IN": (7, ("49.46", "117.222"), "2401:4900", 330),
    "FR": (5, ("78.212", "90.63", "176.159"), "2a01:cb00", 60),
    "BR": (5, ("177.115", "187.68", "201.55"), "2804:14c", -300),
    "NL": (3, ("77.168", "145.108"), "2a02:a440", 60),
    "CA": (3, ("24.83", "99.231", "142.123"), "2607:fea8", -300),
    "ES": (3, ("79.150", "83.49", "88.16"), "2a0c:5a80", 60),
    "IT": (3, ("79.32", "93.56", "151.48"), "2001:b07", 60),
    "JP": (3, ("126.124", "133.128", "153.188"), "2400:4050", 330),
    "PL": (2, ("31.174", "83.16", "89.75"), "2a02:a31a", 60),
    "SE": (2, ("78.72", "85.228", "90.144"), "2001:2002", 60),
    "MX": (2, ("187.193", "189.191", "201.132"), "2806:2f0", -300),
    "AU": (2, ("1.137", "101.171", "120.148"), "2001:8003", 330),
    "KE": (1, ("41.89", "102.5", "105.61"), "2c0f:fe38", 60),
    "PH": (1, ("49.148", "112.205"), "2001:4450", 330),
    "NG": (1, ("41.184", "102.92", "105.120"), "2c0f:f5c0", 60),
    "NA": (0.3, ("41.182", "105.232"), "2c0f:f778", 60),
    "SG": (1, ("8.168", "42.61", "116.86"), "2406:3003", 330),
}

# Crawlers and scripts, from their operators' own networks: (user agent, share of all
# requests, what they fetch: "pages" of the shop or its "api", country of their addresses,
# IPv4 /24 blocks they crawl from).
CRAWLERS: tuple[tuple[str, float, str, str, tuple[str, ...]], ...] = (
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.02, "pages", "US", ("66.249.66", "66.249.68", "66.249.79")),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.7444.175 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.025, "pages", "US", ("66.249.66", "66.249.68", "66.249.79")),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 0.012, "pages", "US", ("40.77.167", "157.55.39", "207.46.13")),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 0.01, "pages", "FR", ("54.36.148", "54.36.149")),
    ("python-requests/2.32.5", 0.008, "api", "DE", ("88.198.54", "136.243.91", "148.251.12")),
    ("curl/8.14.1", 0.005, "api", "US", ("3.90.12", "18.204.7", "34.82.140")),
)
CRAWLED_FILES = {"/robots.txt": 40.0, "/sitemap.xml": 20.0}
"""How much more often crawlers fetch these than visitors do."""
# fmt: on

UTC_SHARE_OF_EU = 0.25  # one European balancer exports in UTC, written "Z"


@dataclass(frozen=True)
class RouteTable:
    """Every route, column-wise."""

    hosts: np.ndarray
    methods: np.ndarray
    shares: np.ndarray
    latency_ms: np.ndarray
    size_bytes: np.ndarray
    profiles: tuple[str, ...]
    paths: np.ndarray
    """Concrete paths of every route, flat; route i has ``path_count[i]`` from ``path_start[i]``."""
    path_start: np.ndarray
    path_count: np.ndarray
    health: int
    """Index of the health-check route."""


def load_routes(rng: np.random.Generator, day: str) -> RouteTable:
    """The routes, each with a pool of concrete paths (popular products repeat)."""
    paths: list[str] = []
    starts, counts = [], []
    for _host, _method, template, *_ in ROUTES:
        variants = [_fill(template, rng, day) for _ in range(256 if "{" in template else 1)]
        starts.append(len(paths))
        counts.append(len(variants))
        paths.extend(variants)
    shares = np.array([r[3] for r in ROUTES])
    return RouteTable(
        hosts=np.array([r[0] for r in ROUTES], dtype=object),
        methods=np.array([r[1] for r in ROUTES], dtype=object),
        shares=shares / shares.sum(),
        latency_ms=np.array([r[4] for r in ROUTES], dtype=np.float64),
        size_bytes=np.array([r[5] for r in ROUTES], dtype=np.float64),
        profiles=tuple(r[6] for r in ROUTES),
        paths=np.array(paths, dtype=object),
        path_start=np.array(starts),
        path_count=np.array(counts),
        health=[r[2] for r in ROUTES].index(HEALTH_ROUTE),
    )


def _fill(template: str, rng: np.random.Generator, day: str) -> str:
    product = int(min(rng.zipf(1.25), 4000))
    ids = ",".join(str(int(i)) for i in rng.integers(1, 4000, int(rng.integers(2, 6))))
    return template.format(
        product=product,
        order=int(rng.integers(100_000, 1_000_000)),
        query=QUERIES[int(rng.integers(len(QUERIES)))],
        ids=ids,
        slug=SLUGS[int(rng.integers(len(SLUGS)))],
        hash=HASHES[int(rng.integers(len(HASHES)))],
        day=day,
    )
