"""The warehouse port: one small interface, a DuckDB adapter and a BigQuery adapter behind it.

Going local or to the cloud is the ``SLUICE_WAREHOUSE`` setting, never a code path. Table
names come only from contracts and ``sluice.schema``; values always travel as parameters.
SQL handed to ``run_script``/``query`` is BigQuery dialect; ``{dataset}`` and
``{cooked_dataset}`` in it are replaced by the configured dataset names first.

The port owns its state tables, ``ingestion_log`` and ``alerts``: they are read and written
through typed methods (``latest_ingestion``, ``ingestion_log``, ``load_facts``,
``record_alerts``, ``open_alerts``; both adapters inherit them from
``sluice.warehouse.state``), never with SQL from outside this package. A query that names a
table or dataset that does not exist raises ``sluice.errors.MissingTable``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sluice.contracts import BrokenContract, Contract, ContractSet
from sluice.errors import ContractError
from sluice.schema import AlertRecord, IngestionRecord, SourceRef
from sluice.settings import Settings
from sluice.warehouse.state import Breach, LoadFacts, LoadWindow


class Warehouse(Protocol):
    """What Sluice needs from a warehouse."""

    def ensure_tables(self, contract: Contract) -> None:
        """Create the dataset(s), the contract's processed and dead-letter tables and the
        ingestion log when missing (idempotent); add the columns of a newer contract and
        raise ContractError for a breaking change (a type changed, a column removed)."""

    def load_replacing_source(
        self,
        contract: Contract,
        source: SourceRef,
        rows_files: list[str],
        dead_files: list[str],
        record: IngestionRecord,
    ) -> None:
        """In one transaction: put the staged rows in as the contract's ``write`` mode says
        (``sluice.warehouse.write_modes``), replace the dead letters of ``source.uri`` with
        the staged ones, and write ``record`` to the ingestion log (replacing the source's
        earlier ``loaded`` row; a superseded load logs only that). All or nothing."""

    def record_ingestion(self, record: IngestionRecord) -> None:
        """Write one ingestion-log row on its own (a rejected file), replacing any earlier
        row for the same source uri and generation."""

    def run_script(self, sql: str) -> None:
        """Run a (multi-statement) BigQuery-dialect script."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one BigQuery-dialect query with named ``@params``; rows as dicts.

        Raises MissingTable (naming it) when a table or dataset it reads does not exist."""

    def latest_ingestion(
        self, source: SourceRef, job_name: str | None = None
    ) -> IngestionRecord | None:
        """The newest ingestion-log row of this source generation (of the job ``job_name``
        only, when given), or None; MissingTable before the log exists."""

    def ingestion_log(self, limit: int) -> list[IngestionRecord]:
        """The ``limit`` newest ingestion-log rows, newest first."""

    def load_facts(self, windows: Sequence[LoadWindow], now: datetime) -> dict[str, LoadFacts]:
        """Per dataset: its last load up to ``now`` and the rows loaded in its windows."""

    def record_alerts(
        self, breaches: Sequence[Breach], datasets: Sequence[str], now: datetime
    ) -> list[AlertRecord]:
        """Merge one alert check of ``datasets`` into the alerts table; their open rows and
        the rows this check cleared."""

    def open_alerts(self) -> list[dict[str, Any]]:
        """Every open alert, by dataset and rule (none before the first check)."""

    def session(self) -> AbstractContextManager[None]:
        """Run the operations of a ``with`` block on one connection, for a few in a row
        (a load); never around a long job: DuckDB holds its file's write lock for the block."""

    def close(self) -> None:
        """Release connections."""


@contextmanager
def connected_warehouse(settings: Settings) -> Iterator[Warehouse]:
    """The configured warehouse for the length of a ``with`` block, closed after it."""
    warehouse = open_warehouse(settings)
    try:
        yield warehouse
    finally:
        warehouse.close()


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse adapter chosen by ``settings.warehouse``."""
    return warehouse_class(settings)(settings)


def warehouse_class(settings: Settings) -> type[Warehouse]:
    """The adapter class ``settings.warehouse`` names, imported (its client library too)."""
    if settings.warehouse == "bigquery":
        from sluice.warehouse.bigquery import BigQueryWarehouse

        return BigQueryWarehouse
    try:
        from sluice.warehouse.duckdb import DuckDBWarehouse
    except ModuleNotFoundError as exc:  # the functions' archive leaves the adapter out
        from sluice.errors import ConfigError

        raise ConfigError(
            f"SLUICE_WAREHOUSE=duckdb: expected the DuckDB adapter and the duckdb package,"
            f" found {exc.name} missing; the deployed functions run SLUICE_WAREHOUSE=bigquery"
        ) from exc
    return DuckDBWarehouse


def ensure_usable_tables(warehouse: Warehouse, contract_set: ContractSet) -> ContractSet:
    """``contract_set`` with every usable contract's tables made sure of; a contract whose
    change its table cannot take (``ensure_tables`` raises) joins the broken ones with that
    reason, so only its own dataset is out of service."""
    usable: dict[str, Contract] = {}
    refused: list[BrokenContract] = []
    for name, contract in contract_set.contracts.items():
        try:
            warehouse.ensure_tables(contract)
        except ContractError as exc:
            path = contract.source_path or Path(f"{name}.yaml")
            refused.append(BrokenContract(path, str(exc), name, contract.landing_prefix))
            continue
        usable[name] = contract
    return ContractSet(usable, (*contract_set.broken, *refused))
