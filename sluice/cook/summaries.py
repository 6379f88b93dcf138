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

Sources that were never ingested: before any SQL runs, ``cook`` ensures every usable
contract's tables (and the ingestion log) exist, created empty when missing. A summary of a
dataset that has not arrived yet is therefore an empty table rather than an error.

One bad file never stops the others (``cook_every_summary``): a summary that cannot be named,
read, parsed or ordered (a cycle, a read of a cooked table no file builds), that divides with
a bare ``/`` instead of ``SAFE_DIVIDE`` (``sluice.cook.division``), or whose SQL the
warehouse refuses, is reported as failed, in one line naming its file and the reason; the
summaries that read it, directly or not, are skipped; every other summary is built. Files
whose name starts with ``.`` (an editor's lock file) are not summaries. ``cook`` is the
all-or-nothing form: it raises the first failure, its file named in a note.

After the summaries, ``cook_and_check_alerts`` checks every contract's freshness and
dead-letter rules (``sluice.cook.alerts``), even when summaries failed: the scheduled ``cook``
function and ``sluice cook`` report the tables, the failed and skipped summaries, the broken
contracts (``sluice.contracts.load_contract_set``) and the open alerts. The check depends
only on the ingestion log and the time, so cooking twice at the same time gives the same
report.
"""

from __future__ import annotations

import graphlib
import heapq
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from sluice.contracts import BrokenContract, load_contract_set
from sluice.cook.alerts import Alert, check_alerts
from sluice.cook.division import refuse_bare_division
from sluice.errors import ConfigError, SluiceError, TransientError
from sluice.settings import Settings
from sluice.warehouse import Warehouse, ensure_usable_tables

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
class FailedSummary:
    """A summary that could not be built: its file and why, in one line."""

    file: str
    reason: str
    table: str | None = None
    """The table it builds, when its file name says."""
    error: SluiceError | None = field(default=None, repr=False, compare=False)
    """The exception, for the all-or-nothing ``cook`` to raise."""

    @property
    def transient(self) -> bool:
        """True when a retry may succeed (a warehouse fault, not the file)."""
        return isinstance(self.error, TransientError)

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of ``sluice cook --json`` and the cook function."""
        return {"file": self.file, "table": self.table, "reason": self.reason}


@dataclass
class SkippedSummary:
    """A summary not built because a cooked table it reads failed or was skipped."""

    file: str
    table: str
    reads: list[str]
    """The failed or skipped tables it reads."""

    def __str__(self) -> str:
        return f"{self.file}: skipped, it reads {', '.join(self.reads)}, which was not built"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of ``sluice cook --json`` and the cook function."""
        return {"file": self.file, "table": self.table, "reads": self.reads}


@dataclass
class CookResult:
    """The summaries of one cook: built, failed, and skipped because of a failure."""

    tables: list[CookedTable]
    failed: list[FailedSummary] = field(default_factory=list)
    skipped: list[SkippedSummary] = field(default_factory=list)


@dataclass
class CookReport:
    """What one cook did: the summaries (built, failed, skipped), the contracts it could not
    use, then the data alerts open after it."""

    tables: list[CookedTable]
    alerts: list[Alert]
    failed: list[FailedSummary] = field(default_factory=list)
    skipped: list[SkippedSummary] = field(default_factory=list)
    broken_contracts: list[BrokenContract] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of the cook function and ``sluice cook --json``."""
        return {
            "tables": [asdict(table) for table in self.tables],
            "failed": [failure.as_dict() for failure in self.failed],
            "skipped": [skipped.as_dict() for skipped in self.skipped],
            "broken_contracts": [broken.as_dict() for broken in self.broken_contracts],
            "alerts": [alert.as_dict() for alert in self.alerts],
        }


def sql_files(sql_dir: Path) -> list[Path]:
    """The ``*.sql`` files of ``sql_dir`` by name, without ``.``-files (an editor's lock)."""
    paths = Path(sql_dir).glob("*.sql")
    return sorted((p for p in paths if not p.name.startswith(".")), key=lambda p: p.name)


def summary_files(sql_dir: Path) -> list[Path]:
    """The summary SQL files of ``sql_dir`` in run (lexical) order."""
    paths = sql_files(sql_dir)
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


def parse_summary(path: Path, sql: str) -> list[exp.Expr]:
    """The statements of a summary file, parsed as BigQuery with its placeholders as names."""
    parsable = sql.replace("{cooked_dataset}", _COOKED).replace("{dataset}", _PROCESSED)
    try:
        trees = sqlglot.parse(parsable, read="bigquery")
    except sqlglot.errors.ParseError as exc:
        raise ConfigError(f"{path}: expected BigQuery SQL, found a parse error: {exc}") from exc
    statements: list[exp.Expr] = []
    for statement in trees:
        if statement is None:  # an empty statement, e.g. after a trailing ';'
            continue
        if isinstance(statement, exp.Command):  # sqlglot's fallback for what it cannot parse
            first = " ".join(statement.sql(dialect="bigquery").split())[:80]
            raise ConfigError(
                f"{path}: expected BigQuery SQL, found a statement sqlglot cannot parse: {first}"
            )
        statements.append(statement)
    return statements


def cooked_reads(path: Path, table: str, sql: str) -> set[str]:
    """The cooked tables a summary reads: sqlglot's table walk over the BigQuery parse.

    Only tables qualified by ``{cooked_dataset}`` count; CTE names, processed tables and the
    table the file builds do not.
    """
    return _cooked_reads(parse_summary(path, sql), table)


def _cooked_reads(statements: list[exp.Expr], table: str) -> set[str]:
    reads = {
        found.name
        for statement in statements
        for found in statement.find_all(exp.Table)
        if found.db == _COOKED and not found.catalog
    }
    return reads - {table}


def dependency_order(scripts: list[tuple[Path, str, str]]) -> list[tuple[Path, str, str]]:
    """(path, table, sql) sorted so every summary runs after the cooked tables it reads.

    ``graphlib.TopologicalSorter`` over sqlglot's table walk; of the summaries ready to run,
    the earliest in ``scripts`` (file-name order) goes first, so the order is stable.
    """
    built = {table for _, table, _ in scripts}
    needs: dict[str, set[str]] = {}
    for path, table, sql in scripts:
        reads = cooked_reads(path, table, sql)
        unknown = sorted(reads - built)
        if unknown:
            raise ConfigError(
                f"{path}: reads cooked table(s) {', '.join(unknown)}, expected tables that"
                f" a summary file builds ({', '.join(sorted(built))})"
            )
        needs[table] = reads
    return _in_order(scripts, needs)


def _in_order(
    scripts: list[tuple[Path, str, str]], needs: dict[str, set[str]]
) -> list[tuple[Path, str, str]]:
    """``scripts`` topologically sorted by ``needs`` (table -> the cooked tables it waits
    for), ties in ``scripts`` order; ``_CycleFound`` names a cycle's files."""
    built = {table: path for path, table, _ in scripts}
    position = {table: i for i, (_, table, _) in enumerate(scripts)}
    sorter = graphlib.TopologicalSorter(needs)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        error = _cycle_error(exc.args[1], needs, built, position)
        members = [(built[table], table) for table in set(exc.args[1])]
        raise _CycleFound(error, members) from None
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


def plan_summaries(
    sql_dir: Path,
) -> tuple[list[tuple[Path, str, str, set[str]]], list[FailedSummary]]:
    """Every summary file of ``sql_dir`` checked on its own, without a warehouse: the ones
    that can run as (path, table, sql, cooked reads) in dependency order, and the failures
    (a bad name, a wrong target table, a parse error, a bare ``a / b``, a read of a cooked
    table no file builds, a cycle). ``sluice check`` reports the failures;
    ``cook_every_summary`` runs the rest."""
    failed: list[FailedSummary] = []
    checked: list[tuple[Path, str, str, set[str]]] = []
    named: set[str] = set()
    for path in sql_files(sql_dir):
        match = _SUMMARY_NAME.match(path.name)
        table = match.group(2) if match else None
        if table:
            named.add(table)
        try:
            if table is None:
                table_name(path)  # raises the naming error
            sql = read_summary(path)
            statements = parse_summary(path, sql)
            refuse_bare_division(path, statements)
            checked.append((path, str(table), sql, _cooked_reads(statements, str(table))))
        except (ConfigError, OSError, UnicodeDecodeError) as exc:
            failed.append(_failure(path, table, exc))
    usable: list[tuple[Path, str, str, set[str]]] = []
    for path, table, sql, reads in checked:
        unknown = sorted(reads - named)
        if unknown:
            error = ConfigError(
                f"{path}: reads cooked table(s) {', '.join(unknown)}, expected tables that"
                f" a summary file builds ({', '.join(sorted(named))})"
            )
            failed.append(_failure(path, table, error))
        else:
            usable.append((path, table, sql, reads))
    while True:
        try:
            # Reads of tables that will not be built order nothing: their readers are
            # skipped when they come up.
            not_built = named - {table for _, table, _, _ in usable}
            scripts = [(path, table, sql) for path, table, sql, _ in usable]
            needs = {table: reads - not_built for _, table, _, reads in usable}
            ordered = _in_order(scripts, needs)
        except _CycleFound as cycle:
            failed.extend(_failure(path, table, cycle.error) for path, table in cycle.members)
            usable = [u for u in usable if (u[0], u[1]) not in cycle.members]
            continue
        reads_of = {table: reads for _, table, _, reads in usable}
        return [(path, table, sql, reads_of[table]) for path, table, sql in ordered], failed


class _CycleFound(ConfigError):
    """A dependency cycle's error, with the (path, table) of each member."""

    def __init__(self, error: ConfigError, members: list[tuple[Path, str]]) -> None:
        super().__init__(str(error))
        self.error = error
        self.members = members


def cook_every_summary(warehouse: Warehouse, settings: Settings) -> CookResult:
    """Build every summary of ``settings.sql_dir`` that can be built, in dependency order;
    a failure (logged at ERROR, one line naming its file) skips only what reads it. The
    caller has made sure of the contracts' tables (``ensure_usable_tables``)."""
    scripts, failed = plan_summaries(settings.sql_dir)
    # ensure_tables is about the processed dataset; make sure the cooked one exists too.
    warehouse.run_script("CREATE SCHEMA IF NOT EXISTS {cooked_dataset}")
    not_built = {failure.table for failure in failed if failure.table}
    skipped: list[SkippedSummary] = []
    seconds: dict[str, float] = {}
    for path, table, sql, reads in scripts:
        missing = sorted(reads & not_built)
        if missing:
            skipped.append(SkippedSummary(str(path), table, missing))
            not_built.add(table)
            continue
        started = time.perf_counter()
        try:
            warehouse.run_script(sql)
        except SluiceError as exc:
            exc.add_note(f"while cooking {table} from {path}")
            failed.append(_failure(path, table, exc))
            not_built.add(table)
            continue
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
    for failure in failed:
        log.error("summary failed: %s", failure, extra={"labels": {"table": failure.table}})
    for skip in skipped:
        log.error("summary skipped: %s", skip, extra={"labels": {"table": skip.table}})
    return CookResult(cooked, failed, skipped)


def cook(warehouse: Warehouse, settings: Settings) -> list[CookedTable]:
    """Rebuild every cooked table from ``settings.sql_dir``, all or nothing: the first
    failure is raised (its file named); one entry per table, in order."""
    ensure_usable_tables(warehouse, load_contract_set(settings.contracts_dir))
    result = cook_every_summary(warehouse, settings)
    if result.failed:
        first = result.failed[0]
        raise first.error or ConfigError(str(first))
    return result.tables


def _failure(path: Path, table: str | None, exc: Exception) -> FailedSummary:
    """One line naming the file: the message without its own copy of the path, lines joined."""
    message = " ".join(str(exc).split())
    message = message.removeprefix(f"{path}: ").removeprefix(f"{path.name}: ")
    error = exc if isinstance(exc, SluiceError) else ConfigError(f"{path}: {message}")
    return FailedSummary(str(path), message, table, error)


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
    warehouse: Warehouse,
    settings: Settings,
    now: datetime | None = None,
    unprocessed: Mapping[str, float] | None = None,
) -> CookReport:
    """Rebuild every cooked table that can be built, then check every usable contract's
    alert rules at ``now``, whatever failed; broken contracts are logged at ERROR and listed.
    ``unprocessed``: the reconciliation's files left waiting, by dataset (``check_alerts``)."""
    # A contract its table cannot take (a breaking change) is broken like a bad file.
    contract_set = ensure_usable_tables(warehouse, load_contract_set(settings.contracts_dir))
    for broken in contract_set.broken:
        log.error("broken contract, dataset %s skipped: %s", broken.dataset, broken)
    result = cook_every_summary(warehouse, settings)
    # Every usable contract's tables, which the check reads, were made sure of above.
    alerts = check_alerts(
        warehouse,
        contract_set.contracts,
        now,
        contract_set.broken,
        unprocessed,
        settings.unprocessed_alert_seconds,
    )
    return CookReport(
        result.tables, alerts, result.failed, result.skipped, list(contract_set.broken)
    )
