"""The SQL that puts one file's staged rows into its table, per the contract's ``write`` mode.

Both adapters run these statements inside the transaction that also replaces the file's dead
letters and log row, so a file's rows change all at once or not at all:

- ``append``: the file's earlier rows (same ``_source_uri``) go, its staged rows come in;
- ``merge``: as ``append``, then one row per ``primary_key``: an older file's row with a key
  the file brings goes, and a staged row whose key a newer file already holds stays out;
- ``replace_dataset``: every row goes, the staged rows come in.

"Newer" orders files by ``(source generation, source uri)``: a Cloud Storage generation is
the time the object was written, in microseconds (a local file's is its modification time),
so it orders files of different names too, and the uri settles a tie. Every decision reads
the table as it is, so running a file's statements again (a replay, a retried job) gives
the same table: the newest version of each key wins whatever order files arrive in.

A load is superseded, and changes nothing, when a newer load makes it pointless: a newer
generation of the same object for ``append`` and ``merge`` (a merge file's keys that no
newer file holds still count, so an older file of another name is never superseded), any
newer file of the dataset for ``replace_dataset``.

Values arrive as SQL expressions (``uri``, ``generation``): query parameters on DuckDB,
script variables read from the staged log row on BigQuery. BigQuery bills a DELETE by the
table it reads, so it runs a file's replacing DELETE only when ``seen_before`` holds;
DuckDB, local and free, always runs it: a file never seen has no rows, so both agree.
Table names arrive quoted; ``quote`` quotes a column name in the adapter's dialect.
"""

from __future__ import annotations

from collections.abc import Callable

from sluice.contracts import Contract
from sluice.schema import processed_schema


def newer_load(contract: Contract, log: str, uri: str, generation: str) -> str:
    """SQL condition: the log already holds a load that supersedes this file's."""
    later = f"source_generation > {generation}"
    if contract.write == "replace_dataset":
        # The dataset name comes from a checked contract: letters, digits and '_'.
        return (
            f"EXISTS (SELECT 1 FROM {log} WHERE dataset = '{contract.name}' AND status = 'loaded'"
            f" AND ({later} OR (source_generation = {generation} AND source_uri > {uri})))"
        )
    return (
        f"EXISTS (SELECT 1 FROM {log} WHERE source_uri = {uri} AND status = 'loaded' AND {later})"
    )


def seen_before(log: str, uri: str) -> str:
    """SQL condition: the log holds a row of the file at ``uri``, so the tables may hold its
    rows and dead letters. A load writes its log row in the transaction that writes its
    rows, and no statement removes a uri's last log row (a reload replaces it), so without
    one the file has nothing to replace: its load skips the replacing deletes."""
    return f"EXISTS (SELECT 1 FROM {log} WHERE source_uri = {uri})"


def write_rows(
    contract: Contract,
    *,
    rows: str,
    staged: str,
    uri: str,
    generation: str,
    quote: Callable[[str], str],
    guard: str = "TRUE",
) -> list[str]:
    """The statements that put the staged rows of the file at ``uri`` into ``rows``.

    ``staged`` is any relation of the staged rows (a table, ``read_parquet(...)``); each
    statement changes nothing unless ``guard`` holds (BigQuery's script passes "not
    superseded", DuckDB decides that first and passes the default)."""
    names = ", ".join(quote(name) for name in processed_schema(contract).names)
    insert = f"INSERT INTO {rows} ({names}) SELECT {names} FROM {staged} AS incoming"
    if contract.write == "replace_dataset":
        return [f"DELETE FROM {rows} WHERE {guard}", f"{insert} WHERE {guard}"]
    own = f"DELETE FROM {rows} WHERE _source_uri = {uri} AND {guard}"
    if contract.write == "append":
        return [own, f"{insert} WHERE {guard}"]
    same_key = " AND ".join(
        f"incoming.{quote(key)} = existing.{quote(key)}" for key in contract.primary_key
    )
    older = (
        f"(existing._source_generation < {generation} OR (existing._source_generation ="
        f" {generation} AND existing._source_uri < {uri}))"
    )
    return [
        own,
        f"DELETE FROM {rows} AS existing WHERE {guard} AND {older}"
        f" AND EXISTS (SELECT 1 FROM {staged} AS incoming WHERE {same_key})",
        # What is left with a staged key after the deletes is a newer file's: it stays.
        f"{insert} WHERE {guard}"
        f" AND NOT EXISTS (SELECT 1 FROM {rows} AS existing WHERE {same_key})",
    ]
