"""What the BigQuery adapter stages and the transaction that swaps staged rows in.

Staged rows, dead letters and the ingestion record sit in three staging tables; the
transaction script reads the source uri and generation from the staged record, so it holds
no values (see ``sluice.warehouse.bigquery``). Table names arrive fully qualified and quoted.
"""

from __future__ import annotations

import tempfile
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.contracts import Contract
from sluice.errors import WarehouseError
from sluice.schema import (
    ARROW_TYPES,
    BIGQUERY_TYPES,
    IngestionRecord,
    dead_letter_schema,
    ingestion_log_schema,
)
from sluice.warehouse.loads import SUPERSEDED
from sluice.warehouse.write_modes import newer_load, seen_before, write_rows


def replace_script(contract: Contract, targets: dict[str, str], staged: dict[str, str]) -> str:
    """The transaction loading a source's staged rows (as the contract's ``write`` mode says,
    ``sluice.warehouse.write_modes``) and replacing its dead letters and log row.

    ``targets`` and ``staged`` map ``rows``, ``dead`` and ``log`` to quoted table names.

    The source uri and generation are script variables read from the staged record: to
    BigQuery a variable is a constant, so ``_source_uri = <variable>`` prunes the blocks of a
    table clustered by ``_source_uri``. The file's earlier rows and dead letters are deleted
    only when the log shows it was loaded before (``write_modes.seen_before``): a new file's
    load then reads nothing of the processed table and queues no DELETE against it.
    """
    uri, generation, seen = "_sluice_uri", "_sluice_generation", "_sluice_seen"
    # Jobs may finish out of order: when a newer load supersedes this one, every statement
    # below is a no-op but the one logging this load as superseded.
    newer = newer_load(contract, targets["log"], uri, generation)
    log_names = ingestion_log_schema().names
    superseded = {"status": "'superseded'", "rows_in": "0", "rows_loaded": "0", "rows_dead": "0"}
    superseded_values = ", ".join(
        superseded.get(name, f"`{name}`") if name != "reason" else f"'{SUPERSEDED}'"
        for name in log_names
    )
    own_rows, *other_rows = write_rows(
        contract,
        rows=targets["rows"],
        staged=staged["rows"],
        uri=uri,
        generation=generation,
        quote=lambda name: f"`{name}`",
        guard=f"NOT {newer}",
    )
    if contract.write != "replace_dataset":  # its first DELETE empties the table: no bound
        own_rows = _when(seen, own_rows)
    statements = [
        f"DECLARE {uri} STRING DEFAULT (SELECT source_uri FROM {staged['log']})",
        f"DECLARE {generation} INT64 DEFAULT (SELECT source_generation FROM {staged['log']})",
        f"DECLARE {seen} BOOL DEFAULT TRUE",
        "BEGIN TRANSACTION",
        # Read inside the transaction, before this script replaces the file's log row.
        f"SET {seen} = {seen_before(targets['log'], uri)}",
        _when(seen, f"DELETE FROM {targets['dead']} WHERE source_uri = {uri} AND NOT {newer}"),
        f"DELETE FROM {targets['log']} WHERE source_uri = {uri}"
        f" AND source_generation = {generation} AND {newer}",
        f"INSERT INTO {targets['log']} ({', '.join(f'`{n}`' for n in log_names)})"
        f" SELECT {superseded_values} FROM {staged['log']} WHERE {newer}",
        f"DELETE FROM {targets['log']} WHERE source_uri = {uri} AND NOT {newer}"
        f" AND (status = 'loaded' OR source_generation = {generation})",
        own_rows,
        *other_rows,
        _insert_select(targets["dead"], staged["dead"], dead_letter_schema().names, f"NOT {newer}"),
        _insert_select(targets["log"], staged["log"], log_names, f"NOT {newer}"),
        "COMMIT TRANSACTION",
    ]
    return ";\n".join(statements) + ";"


def _when(condition: str, statement: str) -> str:
    """``statement`` run only when ``condition`` holds (BigQuery scripting)."""
    return f"IF {condition} THEN\n  {statement};\nEND IF"


def local_parquet(files: list[str], schema: pa.Schema, record: IngestionRecord | None) -> IO[bytes]:
    """One temporary Parquet file holding every local staged file (or the record)."""
    # Returned open (mode "rb+", which the client's upload accepts): the caller closes it.
    out = tempfile.TemporaryFile()  # noqa: SIM115
    with pq.ParquetWriter(out, schema) as writer:
        if record is not None:
            writer.write_table(pa.Table.from_pylist([record.as_dict()], schema=schema))
        for path in files:
            for batch in pq.ParquetFile(path).iter_batches(columns=schema.names):
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))
    return out


def _insert_select(target: str, staged: str, names: list[str], where: str) -> str:
    columns = ", ".join(f"`{name}`" for name in names)
    return f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staged} WHERE {where}"


def load_config(schema: pa.Schema) -> Any:
    """Load job settings for staging Parquet of ``schema``: replace the staging table."""
    from google.cloud import bigquery

    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        schema=bigquery_schema([(field.name, contract_type(field.type)) for field in schema]),
    )


def bigquery_schema(columns: list[tuple[str, str]]) -> list[Any]:
    """BigQuery SchemaFields for (name, contract type) pairs; every column NULLABLE."""
    from google.cloud import bigquery

    return [bigquery.SchemaField(name, BIGQUERY_TYPES[kind]) for name, kind in columns]


def contract_type(arrow_type: pa.DataType) -> str:
    """The contract type of an Arrow type from ``sluice.schema.ARROW_TYPES``."""
    for kind, candidate in ARROW_TYPES.items():
        if candidate == arrow_type:
            return kind
    raise WarehouseError(f"expected an Arrow type of sluice.schema, found {arrow_type}")
