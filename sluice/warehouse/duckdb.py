"""The DuckDB adapter: the whole warehouse in one local file.

Datasets are DuckDB schemas in ``settings.duckdb_file``. DuckDB lets one process at a time
open the file for writing, so every operation opens its own connection, does its work in a
short transaction and closes it; opening retries with backoff while another process holds
the lock and gives up with a TransientError after ``lock_timeout`` seconds. Each connection
runs ``SET TimeZone='UTC'`` so ``DATE(ts)`` means the UTC date, as in BigQuery. Inside
``session()`` the operations share one connection instead: a load's three (ensure the
tables, load, read its log row back) open the file and checkpoint it once, not three times.

Identifiers come only from contracts and settings and are always double-quoted; every value
travels as a parameter.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from sluice.contracts import Contract
from sluice.errors import MissingTable, TransientError, WarehouseError
from sluice.schema import (
    DEAD_LETTER_COLUMNS,
    DUCKDB_TYPES,
    INGESTION_LOG_COLUMNS,
    INGESTION_LOG_TABLE,
    IngestionRecord,
    SourceRef,
    dead_letter_schema,
    processed_schema,
    table_columns,
)
from sluice.settings import Settings
from sluice.warehouse.dialect import (
    CatalogTypes,
    check_dataset_name,
    reads_column_types,
    render,
    split_statements,
    to_duckdb,
)
from sluice.warehouse.evolution import DUCKDB_CATALOG_TYPES, columns_to_add, contract_type
from sluice.warehouse.loads import (
    SUPERSEDED,
    check_counts,
    check_load_record,
    check_staged_files,
    superseded_record,
)
from sluice.warehouse.state import StateTables
from sluice.warehouse.write_modes import newer_load, write_rows

log = logging.getLogger(__name__)

LOCK_MESSAGE = "Could not set lock on file"
MISSING = re.compile(r"(Table|Schema) with name (\S+?)!? does not exist")
"""DuckDB's CatalogException text for a table (or schema, our dataset) that does not exist."""
"""Start of DuckDB's IOException text when another process holds the file (DuckDB 1.x-2.0)."""


def quote(name: str) -> str:
    """A DuckDB identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


class DuckDBWarehouse(StateTables):
    """Warehouse adapter over one DuckDB file, with one short connection per operation."""

    def __init__(self, settings: Settings, *, lock_timeout: float = 30.0) -> None:
        self.settings = settings
        self.path = settings.duckdb_file
        self.dataset = check_dataset_name(settings.warehouse_dataset, "SLUICE_WAREHOUSE_DATASET")
        self.cooked_dataset = check_dataset_name(
            settings.cooked_warehouse_dataset, "SLUICE_COOKED_WAREHOUSE_DATASET"
        )
        self.lock_timeout = lock_timeout
        self._session: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def session(self) -> Iterator[None]:
        """Run the operations of a ``with`` block on one connection: the file is opened,
        and checkpointed when closed, once. The write lock is held for the whole block."""
        if self._session is not None:
            yield  # already in one
            return
        with self._connection() as con:
            self._session = con
            try:
                yield
            finally:
                self._session = None

    def ensure_tables(self, contract: Contract) -> None:
        """Create both schemas and the contract's tables when missing; add new columns.

        A breaking change to an existing processed table raises ContractError (see
        ``sluice.warehouse.evolution``) and leaves that table as it was."""
        with self._transaction() as con:
            for schema in (self.dataset, self.cooked_dataset):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            self._ensure_table(con, contract.table, table_columns(contract), contract)
            self._ensure_table(con, contract.dead_letter_table, list(DEAD_LETTER_COLUMNS))
            self._ensure_table(con, INGESTION_LOG_TABLE, list(INGESTION_LOG_COLUMNS))

    def load_replacing_source(
        self,
        contract: Contract,
        source: SourceRef,
        rows_files: list[str],
        dead_files: list[str],
        record: IngestionRecord,
    ) -> None:
        """Load the staged files as the contract's ``write`` mode says, and replace the
        file's dead letters and log row, in one transaction (``sluice.warehouse.write_modes``)."""
        check_load_record(contract, source, record)
        check_staged_files(rows_files, processed_schema(contract))
        check_staged_files(dead_files, dead_letter_schema())
        values = {"uri": source.uri, "generation": source.generation}
        with self._transaction() as con:
            log_table = self._table(INGESTION_LOG_TABLE)
            superseded = newer_load(contract, log_table, "$uri", "$generation")
            if con.execute(f"SELECT {superseded}", values).fetchone()[0]:
                # Jobs may finish out of order: the newest generation's rows stay.
                self._replace_record(con, superseded_record(record))
                log.warning("%s#%d: %s", source.uri, source.generation, SUPERSEDED)
                return
            # A table is a set (BigQuery keeps no order either): letting DuckDB write the
            # rows in any order halves the insert of a big file on 2 cores.
            con.execute("SET preserve_insertion_order = false")
            loaded = self._count_parquet(con, rows_files)
            statements = write_rows(
                contract,
                rows=self._table(contract.table),
                staged=self._staged_rows(contract, rows_files),
                uri="$uri",
                generation="$generation",
                quote=quote,
            )
            for statement in statements:
                con.execute(statement, _used({**values, "files": rows_files}, statement))
            con.execute(
                f"DELETE FROM {self._table(contract.dead_letter_table)} WHERE source_uri = $uri",
                {"uri": source.uri},
            )
            con.execute(
                f"DELETE FROM {log_table} WHERE source_uri = $uri"
                " AND (status = 'loaded' OR source_generation = $generation)",
                values,
            )
            dead = self._insert_parquet(
                con, contract.dead_letter_table, dead_letter_schema(), dead_files
            )
            # The log must never disagree with the staged files: a mismatch rolls back.
            check_counts(source, record, loaded, dead)
            self._insert_record(con, record)
        log.info("loaded %s: %d rows, %d dead letters", source.uri, loaded, dead)

    def record_ingestion(self, record: IngestionRecord) -> None:
        """Write one ingestion-log row, replacing the row of the same uri and generation."""
        with self._transaction() as con:
            self._replace_record(con, record)

    def _replace_record(self, con: duckdb.DuckDBPyConnection, record: IngestionRecord) -> None:
        con.execute(
            f"DELETE FROM {self._table(INGESTION_LOG_TABLE)}"
            " WHERE source_uri = $uri AND source_generation = $generation",
            {"uri": record.source_uri, "generation": record.source_generation},
        )
        self._insert_record(con, record)

    def run_script(self, sql: str) -> None:
        """Run a BigQuery-dialect script, transpiled to DuckDB, in one transaction."""
        with self._transaction() as con:
            # One statement at a time: a later statement may read a table an earlier one made,
            # and the DATE_TRUNC fix needs that table's column types.
            for bigquery_sql in split_statements(render(sql, self.settings)):
                for statement in to_duckdb(bigquery_sql, schema=catalog_types(con)):
                    _execute(con, statement)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one BigQuery-dialect query with ``@name`` parameters; rows as dicts."""
        with self._connection() as con:
            bigquery_sql = render(sql, self.settings)
            schema = catalog_types(con) if reads_column_types(bigquery_sql) else None
            statements = to_duckdb(bigquery_sql, schema=schema)
            if len(statements) != 1:
                raise WarehouseError(f"query: expected one statement, found {len(statements)}")
            cursor = _execute(con, statements[0], params)
            names = [column[0] for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        """Nothing to release: every operation (or session) closes its own connection."""

    def _table(self, name: str) -> str:
        return f"{quote(self.dataset)}.{quote(name)}"

    def _ensure_table(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        columns: list[tuple[str, str]],
        contract: Contract | None = None,
    ) -> None:
        """Create ``name`` when missing, add the columns it lacks; with ``contract``, the
        processed table, refuse a breaking change first."""
        definitions = ", ".join(f"{quote(col)} {DUCKDB_TYPES[kind]}" for col, kind in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {self._table(name)} ({definitions})")
        # DESCRIBE gives information_schema's names and types, without the ~50 ms a fresh
        # connection's first information_schema query spends reading the whole catalog.
        existing = {
            column: contract_type(data_type, DUCKDB_CATALOG_TYPES)
            for column, data_type, *_ in con.execute(f"DESCRIBE {self._table(name)}").fetchall()
        }
        if contract is None:
            missing = [(col, kind) for col, kind in columns if col not in existing]
        else:
            missing = columns_to_add(contract, f"{self.dataset}.{name}", existing)
        # A newer contract version may add columns; old rows read them as NULL.
        for col, kind in missing:
            log.info("adding column %s to %s.%s", col, self.dataset, name)
            con.execute(
                f"ALTER TABLE {self._table(name)} ADD COLUMN {quote(col)} {DUCKDB_TYPES[kind]}"
            )

    def _staged_rows(self, contract: Contract, files: list[str]) -> str:
        """The staged rows as a relation: ``read_parquet($files)``, or none without files."""
        if files:
            return "read_parquet($files)"
        names = ", ".join(quote(name) for name in processed_schema(contract).names)
        return f"(SELECT {names} FROM {self._table(contract.table)} WHERE FALSE)"

    @staticmethod
    def _count_parquet(con: duckdb.DuckDBPyConnection, files: list[str]) -> int:
        """Rows in the staged files, from their footers."""
        if not files:
            return 0
        return int(
            con.execute("SELECT count(*) FROM read_parquet($files)", {"files": files}).fetchone()[0]
        )

    def _insert_parquet(
        self, con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema, files: list[str]
    ) -> int:
        if not files:
            return 0
        names = ", ".join(quote(name) for name in schema.names)
        inserted = con.execute(
            f"INSERT INTO {self._table(table)} ({names}) SELECT {names} FROM read_parquet($files)",
            {"files": [str(path) for path in files]},
        ).fetchone()
        return int(inserted[0]) if inserted else 0

    def _insert_record(self, con: duckdb.DuckDBPyConnection, record: IngestionRecord) -> None:
        values = record.as_dict()
        names = ", ".join(quote(name) for name in values)
        placeholders = ", ".join(f"${name}" for name in values)
        con.execute(
            f"INSERT INTO {self._table(INGESTION_LOG_TABLE)} ({names}) VALUES ({placeholders})",
            values,
        )

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connection() as con:
            con.begin()
            try:
                yield con
            except BaseException as exc:
                con.rollback()
                if isinstance(exc, duckdb.TransactionException):
                    raise TransientError(f"DuckDB transaction conflict, retry: {exc}") from exc
                if isinstance(exc, duckdb.Error):
                    raise WarehouseError(f"DuckDB rolled back: {exc}") from exc
                raise
            try:
                con.commit()
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB commit failed: {exc}") from exc

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._session is not None:
            yield self._session
            return
        con = self._connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.ResourceInUseException as exc:
                # Another thread of this process closing its connection to the same file
                # (DuckDB caches one database per file and process) fails a connect for a
                # moment with "Unique file handle conflict": connect again.
                fault: duckdb.Error = exc
            except duckdb.IOException as exc:
                if LOCK_MESSAGE not in str(exc):
                    raise WarehouseError(
                        f"{self.path}: expected a DuckDB database file, found one DuckDB"
                        f" cannot open ({exc})"
                    ) from exc
                fault = exc
            if time.monotonic() + delay > deadline:
                raise TransientError(
                    f"DuckDB file {self.path}: expected to get the write lock within "
                    f"{self.lock_timeout:g} s, found it still held: {fault}"
                ) from fault
            # Jitter keeps several waiting processes from retrying in lockstep.
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 1.0)


def catalog_types(con: duckdb.DuckDBPyConnection) -> CatalogTypes:
    """Schema -> table -> column -> type of every table in the open database."""
    catalog: dict[str, dict[str, dict[str, str]]] = {}
    rows = con.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_catalog = current_database()"
    ).fetchall()
    for schema, table, column, data_type in rows:
        catalog.setdefault(schema, {}).setdefault(table, {})[column] = data_type
    return catalog


def _used(values: dict[str, Any], statement: str) -> dict[str, Any]:
    """The parameters ``statement`` names: DuckDB refuses any it does not."""
    return {name: value for name, value in values.items() if f"${name}" in statement}


def _execute(
    con: duckdb.DuckDBPyConnection, statement: str, params: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    try:
        return con.execute(statement, params) if params else con.execute(statement)
    except duckdb.CatalogException as exc:
        missing = MISSING.search(str(exc))
        if missing:
            kind = "table" if missing.group(1) == "Table" else "dataset"
            name = missing.group(2).strip('"')
            raise MissingTable(
                f"DuckDB: expected the {kind} {name} to exist, found none ({statement[:200]!r})"
            ) from exc
        raise WarehouseError(f"DuckDB rejected {statement[:200]!r}: {exc}") from exc
    except duckdb.Error as exc:
        raise WarehouseError(f"DuckDB rejected {statement[:200]!r}: {exc}") from exc
