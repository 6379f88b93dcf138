"""Enriched columns: worked out from another column of the same row, never read from a file.

A contract column with ``enrich: <kind>`` and ``from: <column>`` (``ENRICHMENTS`` in
``sluice.contracts``) is filled here, after the file's columns are typed:

- ``country``: the ISO 3166-1 alpha-2 code of an IP address (IPv4 or IPv6), from the
  regional internet registries' allocations that ship inside the ``iptocc`` package (no
  network, no file to download; rebuilt from the registries' data each night and released
  often). NULL for private, reserved or unparsable addresses;
- ``browser``: the browser or client family of a user agent by ua-parser's built-in rules
  (``Chrome``, ``Mobile Safari``, ``Googlebot``, ``curl``); NULL when the rules know none;
- ``bot``: whether a user agent is automated rather than a person's browser or app: one
  ua-parser files as a crawler (its ``Spider`` device), a family in ``AUTOMATED_FAMILIES``
  (command-line tools, HTTP libraries, headless browsers), one the rules know no family of
  (scanners, health checks, home-grown scripts), or no user agent at all. A person's app
  (okhttp on Android, an iOS app's own name) counts as human.

Both look-ups run once per distinct value of a chunk, not once per row: a log has far fewer
distinct addresses and agents than lines. Agents are also remembered across chunks.
``enrichment_versions`` names the data each load used; the load records it in the
ingestion log.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import version

import iptocc
import pyarrow as pa
import pyarrow.compute as pc
from ua_parser import parse_device, parse_user_agent

from sluice.contracts import Contract

AUTOMATED_FAMILIES = frozenset(
    {
        "curl",
        "Wget",
        "Python Requests",
        "Go-http-client",
        "Apache-HttpClient",
        "libwww-perl",
        "HeadlessChrome",
        "PhantomJS",
    }
)
"""Families ua-parser names that are programs rather than people, though it does not file
them as crawlers."""
AGENTS_REMEMBERED = 1 << 16
"""Distinct user agents kept classified across chunks (a few MB at most)."""


def enrich_columns(contract: Contract, columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """The contract's enriched columns, worked out from the typed ``columns`` of a batch."""
    return {
        column.name: _BY_KIND[column.enrich](columns[str(column.enrich_from)])
        for column in contract.enriched_columns
        if column.enrich is not None
    }


def enrichment_versions(contract: Contract) -> str | None:
    """The data the contract's enrichments look up, as ``package version`` pairs (the
    address ranges' and the agent rules' releases); None without enrichment."""
    packages = {_PACKAGES[column.enrich] for column in contract.enriched_columns if column.enrich}
    if not packages:
        return None
    return "; ".join(f"{package} {version(package)}" for package in sorted(packages))


def country_codes(addresses: pa.Array) -> pa.Array:
    """The country each address is allocated to; NULL where none is known."""
    return _per_distinct(addresses, iptocc.country_code, pa.string())


def browser_families(agents: pa.Array) -> pa.Array:
    """The browser or client family of each user agent; NULL where the rules know none."""
    return _per_distinct(agents, _lookup(lambda agent: _agent(agent)[1]), pa.string())


def bot_flags(agents: pa.Array) -> pa.Array:
    """Whether each user agent is automated; true where there is no user agent."""
    flags = _per_distinct(agents, _lookup(lambda agent: _agent(agent)[0]), pa.bool_())
    return pc.if_else(pc.is_null(agents), True, flags)


@functools.lru_cache(maxsize=AGENTS_REMEMBERED)
def _agent(agent: str) -> tuple[bool, str | None]:
    """(automated, family) of one user agent."""
    parsed = parse_user_agent(agent)
    family = parsed.family if parsed is not None and parsed.family != "Other" else None
    device = parse_device(agent)
    crawler = device is not None and device.family == "Spider"
    return crawler or family is None or family in AUTOMATED_FAMILIES, family


def _lookup(one: Callable[[str], object]) -> Callable[[list[str]], list[object]]:
    return lambda values: [one(value) for value in values]


def _per_distinct(
    values: pa.Array, lookup: Callable[[list[str]], list[object]], kind: pa.DataType
) -> pa.Array:
    """``lookup`` of each distinct value, spread back over the rows (NULL stays NULL)."""
    encoded = pc.dictionary_encode(values.cast(pa.string()))
    found = pa.array(lookup(encoded.dictionary.to_pylist()), kind)
    return found.take(encoded.indices)


_BY_KIND: dict[str, Callable[[pa.Array], pa.Array]] = {
    "country": country_codes,
    "browser": browser_families,
    "bot": bot_flags,
}
_PACKAGES = {"country": "iptocc", "browser": "ua-parser-builtins", "bot": "ua-parser-builtins"}
