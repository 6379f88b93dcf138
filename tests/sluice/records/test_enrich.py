"""Enriched columns: country from the client address, bot and browser from the user agent."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import iptocc
import pyarrow as pa
import pytest

from sluice.contracts import load_contract
from sluice.records import enrich
from sluice.records.enrich import (
    bot_flags,
    browser_families,
    country_codes,
    enrich_columns,
    enrichment_versions,
)
from tests.sluice.test_contracts import write_contract

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
# (agent, is_bot, browser): people's browsers and apps, then crawlers, tools and scanners.
AGENTS = [
    (CHROME, False, "Chrome"),
    (IPHONE, False, "Mobile Safari"),
    ("okhttp/4.9.0", False, "okhttp"),  # an Android app: a person behind it
    ("Shop/3.2 CFNetwork/1404.0.5 Darwin/22.3.0", False, "Shop"),  # an iOS app
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True, "Googlebot"),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", True, "AhrefsBot"),
    ("curl/8.4.0", True, "curl"),
    ("python-requests/2.31.0", True, "Python Requests"),
    ("Mozilla/5.0 zgrab/0.x", True, None),  # a scanner no rule names
    ("kube-probe/1.28", True, None),
    (None, True, None),  # no user agent ("-" in the log)
]  # fmt: skip


def test_country_codes_of_ipv4_and_ipv6_addresses() -> None:
    addresses = pa.array(
        ["8.8.8.8", "1.0.16.1", "2001:4860:4860::8888", "10.0.0.1", "127.0.0.1", "not-an-ip", None]
    )

    assert country_codes(addresses).to_pylist() == ["US", "JP", "US", None, None, None, None]


@pytest.mark.parametrize(("agent", "is_bot", "browser"), AGENTS)
def test_user_agents_are_told_apart(agent: str | None, is_bot: bool, browser: str | None) -> None:
    agents = pa.array([agent], pa.string())

    assert (bot_flags(agents)[0].as_py(), browser_families(agents)[0].as_py()) == (is_bot, browser)


def test_lookups_run_once_per_distinct_value(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []
    look_up = iptocc.country_code

    def spy(addresses: list[str]) -> list[str | None]:
        asked.append(list(addresses))
        return look_up(addresses)

    monkeypatch.setattr(enrich.iptocc, "country_code", spy)
    addresses = pa.array(["8.8.8.8", "1.0.16.1", None] * 1000)

    codes = country_codes(addresses)

    assert asked == [["8.8.8.8", "1.0.16.1"]]
    assert codes.to_pylist() == ["US", "JP", None] * 1000


def test_enrich_columns_fills_each_enriched_column_from_its_source(tmp_path: Path) -> None:
    contract = load_contract(
        write_contract(
            tmp_path,
            "name: x\nversion: 1\ncolumns:\n  - {name: ip, type: string}\n"
            "  - {name: agent, type: string}\n"
            "  - {name: where, type: string, enrich: country, from: ip}\n"
            "  - {name: robot, type: boolean, enrich: bot, from: agent}\n",
        )
    )
    typed = {"ip": pa.array(["8.8.8.8", "10.1.2.3"]), "agent": pa.array(["curl/8.4.0", CHROME])}

    enriched = enrich_columns(contract, typed)

    assert {name: array.to_pylist() for name, array in enriched.items()} == {
        "where": ["US", None],
        "robot": [True, False],
    }


def test_enrichment_versions_name_the_lookup_data(tmp_path: Path) -> None:
    logs = load_contract(Path("contracts/access_logs.yaml"))
    loans = load_contract(Path("contracts/kiva_loans.yaml"))

    assert enrichment_versions(logs) == (
        f"iptocc {version('iptocc')}; ua-parser-builtins {version('ua-parser-builtins')}"
    )
    assert enrichment_versions(loans) is None
