"""Cook the summaries: run every ``sql/*.sql`` file, in order, against the warehouse.

Each file is one BigQuery-dialect ``CREATE OR REPLACE TABLE {cooked_dataset}.<table> AS
SELECT ...`` reading the processed tables in ``{dataset}``; ``<table>`` is the file stem
without its numeric prefix (``30_server_requests_per_hour.sql`` builds
``server_requests_per_hour``). Summaries run in dependency order: each file is parsed by
sqlglot (BigQuery dialect) and every table it names under ``{cooked_dataset}`` (not a CTE, not
a processed table) is a dependency; ``graphlib.TopologicalSorter`` orders the files, the
earliest file name going first among those ready, so the order is stable. A cycle (the error
names its files), or a read of a cooked table no file builds, is refused before anything runs.
``CREATE OR REPLACE`` swaps each table atomically:
readers see the previous summary or the new one, never a half-built table, and cooking twice
over the same data gives the same tables.

Sources that were never ingested: before any SQL runs, ``cook`` ensures every contract's
tables (and the ingestion log) exist, created empty when missing. A summary of a dataset that
has not arrived yet is therefore an empty table rather than an error that would stop the
summaries of the datasets that did arrive. Any other failure stops the run at that file (its
name is added to the exception) and is raised as is, so a transient warehouse fault reaches
the scheduler as a retry; later files may depend on the failed one, so they do not run.

After the summaries, ``cook_and_check_alerts`` checks every contract's freshness and
dead-letter rules (``sluice.cook.alerts``): the scheduled ``cook`` function and ``sluice cook``
report both the tables and the open alerts. The check depends only on the ingestion log and
the time, so cooking twice at the same time gives the same report.
"""

from __future__ import annotations

import graphlib
import heapq
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlglot
from sqlglot import exp

from sluice.contracts import load_contracts
from sluice.cook.alerts import Alert, check_alerts
from sluice.errors import ConfigError
from sluice.settings import Settings
from sluice.warehouse import Warehouse

log = logging.getLogger(__name__)

_SUMMARY_NAME = re.compile(r"^(\d+)_([a-z][a-z0-9_]*)\.sql$")
_COOKED = "sluice_cooked_dataset"
"""What ``{cooked_dataset}`` becomes for parsing: a plain identifier sqlglot can read."""
_PROCESSED = "sluice_processed_dataset"


@dataclass
class CookedTable:
    """One rebuilt summary table: its name, its row count and the seconds it took."""

    table: str
    rows: int
    seconds: float


@dataclass
class CookReport:
    """What one cook did: the rebuilt tables, then the data alerts open after it."""

    tables: list[CookedTable]
    alerts: list[Alert]


def summary_files(sql_dir: Path) -> list[Path]:
    """The summary SQL files of ``sql_dir`` in run (lexical) order."""
    paths = sorted(Path(sql_dir).glob("*.sql"), key=lambda p: p.name)
    for path in paths:
        if not _SUMMARY_NAME.match(path.name):
            raise ConfigError(
                f"{path}: expected a summary file named like '10_table_name.sql'"
                f" (digits, underscore, lower-case table name), found {path.name!r}"
            )
    return paths


def table_name(path: Path) -> str:
    """The cooked table a summary file builds: its stem without the numeric prefix."""
    match = _SUMMARY_NAME.match(path.name)
    if match is None:
        raise ConfigError(f"{path}: expected a name like '10_table_name.sql', found {path.name!r}")
    return match.group(2)


def read_summary(path: Path) -> str:
    """The SQL of one summary file, checked to build the table its name promises."""
    sql = path.read_text(encoding="utf-8")
    target = f"{{cooked_dataset}}.{table_name(path)}"
    # A copied file that still builds its template's table would silently overwrite it.
    if not re.search(rf"CREATE\s+OR\s+REPLACE\s+TABLE\s+{re.escape(target)}\b", sql, re.I):
        raise ConfigError(
            f"{path}: expected 'CREATE OR REPLACE TABLE {target} AS ...', found no such statement"
        )
    return sql


def cooked_reads(path: Path, table: str, sql: str) -> set[str]:
    """The cooked tables a summary reads: sqlglot's table walk over the BigQuery parse.

    Only tables qualified by ``{cooked_dataset}`` count; CTE names, processed tables and the
    table the file builds do not.
    """
    parsable = sql.replace("{cooked_dataset}", _COOKED).replace("{dataset}", _PROCESSED)
    try:
        statements = sqlglot.parse(parsable, read="bigquery")
    except sqlglot.errors.ParseError as exc:
        raise ConfigError(f"{path}: expected BigQuery SQL, found a parse error: {exc}") from exc
    reads: set[str] = set()
    for statement in statements:
        if statement is None:  # an empty statement, e.g. after a trailing ';'
            continue
        for found in statement.find_all(exp.Table):
            if found.db == _COOKED and not found.catalog:
                reads.add(found.name)
    return reads - {table}


def dependency_order(scripts: list[tuple[Path, str, str]]) -> list[tuple[Path, str, str]]:
    """(path, table, sql) sorted so every summary runs after the cooked tables it reads.

    ``graphlib.TopologicalSorter`` over sqlglot's table walk; of the summaries ready to run,
    the earliest in ``scripts`` (file-name order) goes first, so the order is stable.
    """
    built = {table: path for path, table, _ in scripts}
    position = {table: i for i, (_, table, _) in enumerate(scripts)}
    needs: dict[str, set[str]] = {}
    for path, table, sql in scripts:
        reads = cooked_reads(path, table, sql)
        unknown = sorted(reads - set(built))
        if unknown:
            raise ConfigError(
                f"{path}: reads cooked table(s) {', '.join(unknown)}, expected tables that"
                f" a summary file builds ({', '.join(sorted(built))})"
            )
        needs[table] = reads
    sorter = graphlib.TopologicalSorter(needs)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise _cycle_error(exc.args[1], needs, built, position) from None
    ready = [(position[table], table) for table in sorter.get_ready()]
    heapq.heapify(ready)
    ordered: list[tuple[Path, str, str]] = []
    while ready:
        _, table = heapq.heappop(ready)
        ordered.append(scripts[position[table]])
        sorter.done(table)
        for table_now_ready in sorter.get_ready():
            heapq.heappush(ready, (position[table_now_ready], table_now_ready))
    return ordered


def _cycle_error(
    cycle: list[str], needs: dict[str, set[str]], built: dict[str, Path], position: dict[str, int]
) -> ConfigError:
    """The error for summaries that read each other in a circle, naming each file."""
    members = sorted(set(cycle), key=position.__getitem__)
    reads = ", ".join(f"{t} <- {', '.join(sorted(needs[t] & set(members)))}" for t in members)
    files = ", ".join(str(built[t]) for t in members)
    return ConfigError(
        f"summaries read each other in a cycle: {reads}; expected no cycle, found one"
        f" through the files {files}"
    )


def cook(warehouse: Warehouse, settings: Settings) -> list[CookedTable]:
    """Rebuild every cooked table from ``settings.sql_dir``; one entry per table, in order."""
    scripts = dependency_order(
        [(path, table_name(path), read_summary(path)) for path in summary_files(settings.sql_dir)]
    )
    for contract in load_contracts(settings.contracts_dir).values():
        warehouse.ensure_tables(contract)
    # ensure_tables is about the processed dataset; make sure the cooked one exists too.
    warehouse.run_script("CREATE SCHEMA IF NOT EXISTS {cooked_dataset}")
    seconds: dict[str, float] = {}
    for path, table, sql in scripts:
        started = time.perf_counter()
        try:
            warehouse.run_script(sql)
        except Exception as exc:
            exc.add_note(f"while cooking {table} from {path}")
            raise
        seconds[table] = time.perf_counter() - started
    rows = count_rows(warehouse, list(seconds))
    cooked = [CookedTable(table, rows[table], spent) for table, spent in seconds.items()]
    for result in cooked:
        log.info(
            "cooked %s: %d rows in %.3f s",
            result.table,
            result.rows,
            result.seconds,
            extra={"labels": {"table": result.table}},
        )
    return cooked


def count_rows(warehouse: Warehouse, tables: list[str]) -> dict[str, int]:
    """Row count of each cooked table, in one query (a BigQuery job costs about a second)."""
    if not tables:
        return {}
    sql = "\nUNION ALL\n".join(
        f"SELECT '{table}' AS cooked_table, COUNT(*) AS row_count FROM {{cooked_dataset}}.{table}"
        for table in tables
    )
    return {row["cooked_table"]: int(row["row_count"]) for row in warehouse.query(sql)}


def cook_and_check_alerts(
    warehouse: Warehouse, settings: Settings, now: datetime | None = None
) -> CookReport:
    """Rebuild every cooked table, then check every contract's alert rules at ``now``."""
    tables = cook(warehouse, settings)
    # cook has ensured every contract's tables, which the check reads.
    alerts = check_alerts(warehouse, load_contracts(settings.contracts_dir), now)
    return CookReport(tables, alerts)
