"""The shapes of every warehouse table, as Arrow schemas, and the type mappings.

The pipeline stages Arrow tables of exactly these schemas as Parquet; each warehouse adapter
creates its tables from the same schemas. Processed tables carry the contract's columns
followed by lineage columns (``_source_uri`` ... ``_ingested_at``) that say where each row came
from; loading a source replaces every row whose ``_source_uri`` matches.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import datetime

import pyarrow as pa

from sluice.contracts import Contract

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
BIGQUERY_TYPES = {
    "string": "STRING",
    "integer": "INT64",
    "float": "FLOAT64",
    "boolean": "BOOL",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
}

INGESTION_LOG_TABLE = "ingestion_log"
INGESTION_STATUSES = ("loaded", "rejected", "superseded")
"""How a file's load ended: its rows are in, it failed (the reason says why), or a newer
generation of it (a newer snapshot, for ``write: replace_dataset``) was already loaded."""
ALERTS_TABLE = "alerts"
"""Data alerts by (dataset, rule), in the processed dataset; checked by ``sluice.cook.alerts``,
read and written only through ``sluice.warehouse.state``."""

# (name, contract-style type) of the lineage columns appended to every processed table.
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_uri", "string"),
    ("_source_generation", "integer"),
    ("_source_line", "integer"),
    ("_contract_version", "integer"),
    ("_ingested_at", "timestamp"),
)
DEAD_LETTER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_uri", "string"),
    ("source_generation", "integer"),
    ("line", "integer"),
    ("raw_text", "string"),
    ("reason", "string"),
    ("contract_version", "integer"),
    ("ingested_at", "timestamp"),
)
INGESTION_LOG_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dataset", "string"),
    ("source_uri", "string"),
    ("source_generation", "integer"),
    ("status", "string"),
    ("rows_in", "integer"),
    ("rows_loaded", "integer"),
    ("rows_dead", "integer"),
    ("reason", "string"),
    ("job_id", "string"),
    ("started_at", "timestamp"),
    ("finished_at", "timestamp"),
    ("enrichment", "string"),
)

# One row per (dataset, rule) that has ever breached: status 'open' or 'cleared'. A breach
# that persists keeps its opened_at; checked_at is the last check that saw the row's status.
ALERT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dataset", "string"),
    ("rule", "string"),
    ("alert", "string"),
    ("status", "string"),
    ("message", "string"),
    ("observed", "float"),
    ("threshold", "float"),
    ("opened_at", "timestamp"),
    ("checked_at", "timestamp"),
    ("cleared_at", "timestamp"),
)


@dataclass(frozen=True)
class SourceRef:
    """The landing object a row came from: its URI and its generation."""

    uri: str
    """``gs://bucket/name`` in the cloud, an absolute local path for ``sluice ingest``."""
    generation: int
    """GCS object generation; for local files, the modification time in microseconds."""


JOB_NAME_PREFIX = "sluice-"
"""How every pipeline job name starts: how Sluice's jobs are told from others in a project."""


def job_name_for(dataset: str, source: SourceRef) -> str:
    """A deterministic id for ingesting one file generation, valid as a Dataflow job name
    (lowercase ``[-a-z0-9]``, starts with a letter, at most 63 characters)."""
    key = f"{dataset}\n{source.uri}\n{source.generation}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = re.sub(r"[^a-z0-9]+", "-", dataset.lower()).strip("-") or "data"
    prefix = f"{JOB_NAME_PREFIX}{slug}"[: 63 - len(digest) - 1].rstrip("-")
    return f"{prefix}-{digest}"


@dataclass(frozen=True)
class IngestionRecord:
    """One row of the ingestion log: the outcome of one file generation."""

    dataset: str
    source_uri: str
    source_generation: int
    status: str
    """One of ``INGESTION_STATUSES``."""
    rows_in: int
    rows_loaded: int
    rows_dead: int
    reason: str | None
    job_id: str
    started_at: datetime
    finished_at: datetime
    enrichment: str | None = None
    """The look-up data a load's enriched columns came from (``package version; ...``,
    ``sluice.records.enrich.enrichment_versions``); None without enrichment."""

    def __post_init__(self) -> None:
        if self.status not in INGESTION_STATUSES:
            raise ValueError(
                f"status: expected one of {', '.join(INGESTION_STATUSES)}, found {self.status!r}"
            )
        if self.rows_in != self.rows_loaded + self.rows_dead:
            raise ValueError(
                f"rows_in ({self.rows_in}) must equal rows_loaded ({self.rows_loaded})"
                f" + rows_dead ({self.rows_dead})"
            )

    def as_dict(self) -> dict[str, object]:
        """Column name -> value, in table order."""
        return asdict(self)


@dataclass(frozen=True)
class AlertRecord:
    """One row of the alerts table: one rule of one dataset that has breached at some time."""

    dataset: str
    rule: str
    alert: str
    """The alert kind: ``missing_data`` or ``dead_letter_rate``."""
    status: str
    """``open`` or ``cleared``."""
    message: str
    observed: float | None
    threshold: float
    opened_at: datetime
    checked_at: datetime
    cleared_at: datetime | None


def _schema(columns: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> pa.Schema:
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in columns])


def table_columns(contract: Contract) -> list[tuple[str, str]]:
    """(name, type) of a contract's processed table: its columns, then lineage."""
    return [(c.name, c.type) for c in contract.columns] + list(LINEAGE_COLUMNS)


def processed_schema(contract: Contract) -> pa.Schema:
    """Arrow schema of a contract's processed table."""
    return _schema(table_columns(contract))


def dead_letter_schema() -> pa.Schema:
    """Arrow schema of every ``<dataset>_dead_letter`` table."""
    return _schema(DEAD_LETTER_COLUMNS)


def ingestion_log_schema() -> pa.Schema:
    """Arrow schema of the ``ingestion_log`` table."""
    return _schema(INGESTION_LOG_COLUMNS)
