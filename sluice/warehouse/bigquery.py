"""The BigQuery adapter: load jobs into staging tables, then one multi-statement transaction.

``load_replacing_source`` loads the staged rows, the dead letters and the one-row ingestion
record into three staging tables of ``<dataset>_staging`` (a dataset whose tables expire
after a day, so an abandoned attempt cleans itself up), with job ids derived from the load
key so that a retry reuses jobs instead of loading twice. One script then deletes the
source's rows, dead letters and earlier ``loaded`` log row and inserts the staged ones
between ``BEGIN TRANSACTION`` and ``COMMIT TRANSACTION``: all or nothing. The deletes of
rows and dead letters run only for a file the log has seen, on tables clustered by
``_source_uri`` first: a new file's load reads none of the processed table, a replay only
the blocks that can hold the file (README, "Scale on paper").

BigQuery queues at most 22 mutating DML statements per table. The transaction runs holding a
load slot of each table it changes (``sluice.warehouse.table_slots``, at most
``SLUICE_TABLE_LOAD_SLOTS`` loads per table across every process), so Sluice alone never
fills a queue; a queue someone else filled is tried again with backoff
(``bigquery_jobs.run_dml_job``).

The script carries no values at all: the source uri and generation are script variables
read from the staged record table. Query parameters would do as well on BigQuery itself,
but the BigQuery emulator used in tests binds no parameters inside scripts, and values in
data files keep the one code path testable end to end. ``gs://`` staged files load with
``load_table_from_uri``; local files (emulator, laptop) are uploaded as one Parquet file.

The client is created on first use; with ``bq_endpoint`` set (an emulator) it uses anonymous
credentials. Every API call has a timeout and a bounded retry.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sluice.contracts import Contract
from sluice.errors import ConfigError, MissingTable, WarehouseError
from sluice.gcs import storage_client
from sluice.schema import (
    DEAD_LETTER_COLUMNS,
    INGESTION_LOG_COLUMNS,
    INGESTION_LOG_TABLE,
    IngestionRecord,
    SourceRef,
    dead_letter_schema,
    ingestion_log_schema,
    processed_schema,
    table_columns,
)
from sluice.settings import Settings
from sluice.warehouse.bigquery_jobs import (
    bigquery_errors,
    make_client,
    query_parameter,
    run_dml_job,
    start_job_once,
    table_exists,
    wait_for,
)
from sluice.warehouse.bigquery_staging import (
    bigquery_schema,
    load_config,
    local_parquet,
    replace_script,
)
from sluice.warehouse.dialect import check_dataset_name, render
from sluice.warehouse.evolution import BIGQUERY_API_TYPES, columns_to_add, contract_type
from sluice.warehouse.loads import check_counts, check_load_record, check_staged_files, load_key
from sluice.warehouse.state import StateTables
from sluice.warehouse.table_slots import TableSlots

if TYPE_CHECKING:
    from google.cloud import bigquery

log = logging.getLogger(__name__)

MISSING = re.compile(r"Not found: (Table|Dataset) ([^\s]+)")
"""BigQuery's 404 text for a table or dataset that does not exist."""
STAGING_EXPIRATION_MS = 24 * 3600 * 1000
UPLOAD_RETRIES = 3
"""Retries of a local file upload (the client's default, 6, backs off for over a minute)."""
SLOT_LEASE_MARGIN = 300.0
"""Seconds a load slot's lease adds to the longest a transaction may take (its busy retries,
then its wait): the API calls around them, with room to spare."""


class BigQueryWarehouse(StateTables):
    """Warehouse adapter over BigQuery (or an emulator at ``settings.bq_endpoint``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        api_timeout: float = 60.0,
        job_timeout: float = 1800.0,
        busy_timeout: float = 900.0,
        busy_delay: float = 1.0,
    ) -> None:
        if not settings.bq_project:
            raise ConfigError("SLUICE_BQ_PROJECT: expected a project id, found none")
        self.settings = settings
        self.project = settings.bq_project
        self.dataset = check_dataset_name(settings.warehouse_dataset, "SLUICE_WAREHOUSE_DATASET")
        self.cooked_dataset = check_dataset_name(
            settings.cooked_warehouse_dataset, "SLUICE_COOKED_WAREHOUSE_DATASET"
        )
        self.staging_dataset = f"{self.dataset}_staging"
        self.api_timeout = api_timeout
        self.job_timeout = job_timeout
        self.busy_timeout = busy_timeout
        """How long a load waits for a full table: for a free load slot, then again while
        its DML queue is full (``TableBusy``)."""
        self.busy_delay = busy_delay
        """The first backoff after either; it doubles, up to 32 times this."""
        self._client: bigquery.Client | None = None
        self._slots: TableSlots | None = None

    @property
    def client(self) -> bigquery.Client:
        """The BigQuery client, created on first use."""
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    @property
    def load_slots(self) -> TableSlots:
        """The per-table load slots in the pipeline bucket (client created on first use)."""
        if self._slots is None:
            self._slots = TableSlots(
                storage_client(self.settings),
                self.settings.pipeline_bucket,
                count=self.settings.table_load_slots,
                lease_seconds=self.busy_timeout + self.job_timeout + SLOT_LEASE_MARGIN,
                wait_seconds=self.busy_timeout,
                first_delay=self.busy_delay,
            )
        return self._slots

    @property
    def _retry(self) -> Any:
        """Retry of one API call (429, 5xx, dropped connections), bounded by api_timeout."""
        from google.cloud import bigquery

        return bigquery.DEFAULT_RETRY.with_timeout(self.api_timeout)

    @property
    def _limits(self) -> dict[str, Any]:
        return {"retry": self._retry, "timeout": self.api_timeout}

    def ensure_tables(self, contract: Contract) -> None:
        """Create the datasets and the contract's tables when missing; add new columns.

        A breaking change to an existing processed table raises ContractError (see
        ``sluice.warehouse.evolution``) and leaves that table as it was."""
        from google.cloud import bigquery

        for name in (self.dataset, self.cooked_dataset, self.staging_dataset):
            dataset = bigquery.Dataset(f"{self.project}.{name}")
            dataset.location = self.settings.bq_location
            if name == self.staging_dataset:
                dataset.default_table_expiration_ms = STAGING_EXPIRATION_MS
            with bigquery_errors(f"create dataset {name}"):
                self.client.create_dataset(dataset, exists_ok=True, **self._limits)
        tables = (
            (contract.table, table_columns(contract), contract.partition_by,
             contract.partition_granularity, processed_clustering(contract)),
            (contract.dead_letter_table, list(DEAD_LETTER_COLUMNS), "ingested_at", "DAY",
             ["source_uri"]),
            (INGESTION_LOG_TABLE, list(INGESTION_LOG_COLUMNS), "started_at", "DAY",
             ["dataset", "source_uri"]),
        )  # fmt: skip
        for name, columns, partition_by, granularity, cluster_by in tables:
            processed = contract if name == contract.table else None
            self._ensure_table(name, columns, partition_by, granularity, cluster_by, processed)

    def load_replacing_source(
        self,
        contract: Contract,
        source: SourceRef,
        rows_files: list[str],
        dead_files: list[str],
        record: IngestionRecord,
    ) -> None:
        """Replace every row of ``source.uri`` with the staged files, in one transaction."""
        check_load_record(contract, source, record)
        key = load_key(self.dataset, record)
        staged = {
            "rows": self._stage(key, "rows", rows_files, processed_schema(contract)),
            "dead": self._stage(key, "dead", dead_files, dead_letter_schema()),
            "log": self._stage(key, "log", [], ingestion_log_schema(), record),
        }
        loads = {
            kind: wait_for(job, timeout=self.job_timeout, retry=self._retry)
            for kind, job in staged.items()
        }
        check_counts(source, record, loads["rows"].output_rows, loads["dead"].output_rows)
        targets = _targets(contract)
        script = replace_script(
            contract,
            {kind: self._table(self.dataset, name) for kind, name in targets.items()},
            {kind: f"`{self._staging_table(key, kind)}`" for kind in staged},
        )
        with self.load_slots.held(f"{self.dataset}.{name}" for name in targets.values()):
            run_dml_job(
                self.client,
                f"sluice_tx_{key}",
                lambda job_id: self.client.query(
                    script, job_id=job_id, job_retry=None, **self._limits
                ),
                location=self.settings.bq_location,
                **self._limits,
                job_timeout=self.job_timeout,
                busy_timeout=self.busy_timeout,
                busy_delay=self.busy_delay,
            )
        for kind in staged:
            with bigquery_errors(f"drop staging table {kind}"):
                self.client.delete_table(
                    self._staging_table(key, kind), not_found_ok=True, **self._limits
                )
        log.info(
            "loaded %s: %s rows, %s dead letters",
            source.uri,
            loads["rows"].output_rows,
            loads["dead"].output_rows,
        )

    def record_ingestion(self, record: IngestionRecord) -> None:
        """Write one ingestion-log row, replacing the row of the same uri and generation."""
        values = record.as_dict()
        names = ", ".join(values)
        source = ", ".join(f"@{name} AS {name}" for name in values)
        updates = ", ".join(f"{name} = S.{name}" for name in values)
        inserts = ", ".join(f"S.{name}" for name in values)
        # One MERGE is atomic on its own: update the same uri+generation, else insert.
        sql = (
            f"MERGE {self._table(self.dataset, INGESTION_LOG_TABLE)} AS T"
            f" USING (SELECT {source}) AS S"
            " ON T.source_uri = S.source_uri AND T.source_generation = S.source_generation"
            f" WHEN MATCHED THEN UPDATE SET {updates}"
            f" WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({inserts})"
        )
        self._run(sql, values)

    def run_script(self, sql: str) -> None:
        """Run a (multi-statement) BigQuery script."""
        self._run(render(sql, self.settings), None)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one BigQuery query with named ``@params``; rows as dicts."""
        rows = self._run(render(sql, self.settings), params)
        return [dict(row.items()) for row in rows]

    def session(self) -> AbstractContextManager[None]:
        """Nothing to hold: the client keeps its HTTP session for every operation already."""
        return nullcontext()

    def close(self) -> None:
        """Close the client's HTTP session."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self, sql: str, params: dict[str, Any] | None) -> Any:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[query_parameter(n, v) for n, v in (params or {}).items()]
        )
        with missing_tables(), bigquery_errors("query"):
            job = self.client.query(
                sql,
                job_config=config,
                job_id_prefix="sluice_",
                # No re-run of failed jobs here: a TransientError lets the caller's platform
                # retry with its own backoff, and the client's job retry ignores api_timeout.
                job_retry=None,
                **self._limits,
            )
        with missing_tables():
            return wait_for(job, timeout=self.job_timeout, retry=self._retry)

    def _table(self, dataset: str, table: str) -> str:
        return f"`{self.project}.{dataset}.{table}`"

    def _staging_table(self, key: str, kind: str) -> str:
        return f"{self.project}.{self.staging_dataset}._staging_{key}_{kind}"

    def _ensure_table(
        self,
        name: str,
        columns: list[tuple[str, str]],
        partition_by: str | None,
        granularity: str,
        cluster_by: list[str],
        contract: Contract | None,
    ) -> None:
        """Create ``name`` when missing, add the columns it lacks; with ``contract``, the
        processed table, refuse a breaking change first."""
        from google.cloud import bigquery

        table = bigquery.Table(
            f"{self.project}.{self.dataset}.{name}", schema=bigquery_schema(columns)
        )
        if partition_by:
            table.time_partitioning = bigquery.TimePartitioning(
                type_=granularity, field=partition_by
            )
        table.clustering_fields = cluster_by or None
        with bigquery_errors(f"create table {name}"):
            existing = self.client.create_table(table, exists_ok=True, **self._limits)
        if (existing.clustering_fields or []) != cluster_by:
            # BigQuery clusters new data by the new columns; old blocks keep their layout
            # until rewritten, so old partitions prune less until then.
            log.info(
                "clustering %s.%s by %s (was %s)",
                self.dataset, name, cluster_by, existing.clustering_fields,
            )  # fmt: skip
            existing.clustering_fields = cluster_by or None
            with bigquery_errors(f"cluster table {name}"):
                existing = self.client.update_table(existing, ["clustering_fields"], **self._limits)
        known = {
            field.name: contract_type(field.field_type, BIGQUERY_API_TYPES)
            for field in existing.schema
        }
        if contract is None:
            added = [(col, kind) for col, kind in columns if col not in known]
        else:
            added = columns_to_add(contract, f"{self.dataset}.{name}", known)
        missing = bigquery_schema(added)
        if missing:
            # A newer contract version may add columns; old rows read them as NULL.
            log.info("adding columns %s to %s.%s", [f.name for f in missing], self.dataset, name)
            existing.schema = [*existing.schema, *missing]
            with bigquery_errors(f"add columns to {name}"):
                self.client.update_table(existing, ["schema"], **self._limits)

    def _stage(
        self,
        key: str,
        kind: str,
        files: list[str],
        schema: pa.Schema,
        record: IngestionRecord | None = None,
    ) -> Any:
        config = load_config(schema)
        destination = self._staging_table(key, kind)
        remote = [path for path in files if path.startswith("gs://")]
        if remote and len(remote) != len(files):
            raise WarehouseError(
                f"staged {kind} files: expected all gs:// or all local, found both"
            )

        def submit(job_id: str) -> Any:
            if remote:
                return self.client.load_table_from_uri(
                    remote,
                    destination,
                    job_id=job_id,
                    job_config=config,
                    **self._limits,
                )
            # No size given: the client then uses a resumable upload, which the emulator
            # accepts (it refuses the multipart upload's '*/*' media part).
            with local_parquet(files, schema, record) as data:
                return self.client.load_table_from_file(
                    data,
                    destination,
                    rewind=True,
                    job_id=job_id,
                    job_config=config,
                    num_retries=UPLOAD_RETRIES,
                    timeout=self.api_timeout,
                )

        if not remote:
            check_staged_files(files, schema)
        return start_job_once(
            self.client,
            f"sluice_load_{key}_{kind}",
            submit,
            location=self.settings.bq_location,
            **self._limits,
            still_usable=lambda job: table_exists(self.client, destination, **self._limits),
        )


@contextmanager
def missing_tables() -> Iterator[None]:
    """Re-raise BigQuery's 404 for a missing table or dataset as MissingTable."""
    from google.api_core.exceptions import NotFound

    try:
        yield
    except WarehouseError as exc:
        missing = MISSING.search(str(exc))
        if not isinstance(exc.__cause__, NotFound) or missing is None:
            raise
        kind = missing.group(1).lower()
        raise MissingTable(
            f"BigQuery: expected the {kind} {missing.group(2)} to exist, found none ({exc})"
        ) from exc.__cause__


def processed_clustering(contract: Contract) -> list[str]:
    """The processed table's clustering: ``_source_uri`` first, then the contract's columns.

    The replacing delete of a reloaded file (``_source_uri = <uri>``) then reads only the
    blocks holding that file instead of the whole column; the contract's own columns still
    prune queries filtered on them, after the file (contracts name at most 3, so the four
    fit BigQuery's limit)."""
    return list(dict.fromkeys(["_source_uri", *contract.cluster_by]))


def _targets(contract: Contract) -> dict[str, str]:
    """Staged kind -> the warehouse table it replaces rows of."""
    return {"rows": contract.table, "dead": contract.dead_letter_table, "log": INGESTION_LOG_TABLE}
