"""The warehouse's own state tables, ``ingestion_log`` and ``alerts``, behind typed methods.

Every statement that reads or writes those two tables outside the adapters' load
transactions lives here, written once in BigQuery's dialect over the port's ``query`` and
``run_script``; both adapters inherit ``StateTables``, so the DuckDB file and BigQuery answer
the same reads the same way. Callers get ``IngestionRecord`` and ``AlertRecord`` values, never
SQL: which rule breaches and why stays in ``sluice.cook.alerts``, only the table access is
here. A read of a table that does not exist raises ``sluice.errors.MissingTable`` (from the
adapter's ``query``), except ``open_alerts``: no alerts table means no check ran, no alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sluice.errors import MissingTable
from sluice.schema import (
    ALERT_COLUMNS,
    ALERTS_TABLE,
    BIGQUERY_TYPES,
    INGESTION_LOG_TABLE,
    AlertRecord,
    IngestionRecord,
    SourceRef,
)

OPEN_ALERTS_COLUMNS = (
    "dataset", "rule", "alert", "message", "observed", "threshold", "opened_at", "checked_at",
)  # fmt: skip
"""The columns ``open_alerts`` answers, in order (what ``sluice status`` and the page show)."""

_LOG = f"{{dataset}}.{INGESTION_LOG_TABLE}"
_ALERTS = f"{{dataset}}.{ALERTS_TABLE}"
_LOG_COLUMNS = ", ".join(field.name for field in fields(IngestionRecord))
_ALERT_COLUMNS = ", ".join(field.name for field in fields(AlertRecord))


@dataclass(frozen=True)
class LoadWindow:
    """The windows one dataset's alert rules look at: loads finished after these times."""

    dataset: str
    rows_since: datetime
    """Start of the freshness ``window_hours`` (rows per hour)."""
    dead_since: datetime
    """Start of the dead-letter window."""


@dataclass(frozen=True)
class LoadFacts:
    """What the ingestion log says about one dataset's loaded files up to ``now``."""

    last_loaded_at: datetime | None
    rows_in_row_window: int
    """Rows loaded by files finished within the freshness ``window_hours``."""
    rows_in_dead_window: int
    rows_dead_in_dead_window: int


@dataclass(frozen=True)
class Breach:
    """One rule a check found breached: what the alerts table stores about it."""

    dataset: str
    rule: str
    alert: str
    """The alert kind: ``missing_data`` or ``dead_letter_rate``."""
    message: str
    observed: float | None
    threshold: float


class StateTables:
    """Typed access to ``ingestion_log`` and ``alerts``; mixed into both warehouse adapters."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Provided by the adapter: one BigQuery-dialect query, rows as dicts."""
        raise NotImplementedError

    def run_script(self, sql: str) -> None:
        """Provided by the adapter: a BigQuery-dialect script."""
        raise NotImplementedError

    def latest_ingestion(
        self, source: SourceRef, job_name: str | None = None
    ) -> IngestionRecord | None:
        """The newest ingestion-log row of this source generation (of the job ``job_name``
        only, when given), or None. MissingTable when the log does not exist yet."""
        sql = (
            f"SELECT {_LOG_COLUMNS} FROM {_LOG}"
            " WHERE source_uri = @source_uri AND source_generation = @generation"
        )
        params: dict[str, Any] = {"source_uri": source.uri, "generation": source.generation}
        if job_name is not None:
            sql += " AND job_id = @job_id"
            params["job_id"] = job_name
        rows = self.query(sql + " ORDER BY finished_at DESC LIMIT 1", params)
        return _ingestion_record(rows[0]) if rows else None

    def ingestion_log(self, limit: int) -> list[IngestionRecord]:
        """The ``limit`` newest ingestion-log rows, newest (by ``finished_at``) first."""
        rows = self.query(
            f"SELECT {_LOG_COLUMNS} FROM {_LOG}"
            " ORDER BY finished_at DESC, source_uri, source_generation LIMIT @limit",
            {"limit": int(limit)},
        )
        return [_ingestion_record(row) for row in rows]

    def load_facts(self, windows: Sequence[LoadWindow], now: datetime) -> dict[str, LoadFacts]:
        """Per window's dataset: its last load up to ``now`` and the rows loaded within each
        window ``(since, now]``, from the ``loaded`` log rows only, in one query."""
        if not windows:
            return {}
        params: dict[str, Any] = {"now": now}
        selects = []
        for i, window in enumerate(windows):
            params |= {
                f"dataset_{i}": window.dataset,
                f"rows_since_{i}": window.rows_since,
                f"dead_since_{i}": window.dead_since,
            }
            selects.append(
                f"SELECT @dataset_{i} AS dataset,"
                f" CAST(@rows_since_{i} AS TIMESTAMP) AS rows_since,"
                f" CAST(@dead_since_{i} AS TIMESTAMP) AS dead_since"
            )
        union = "\n  UNION ALL ".join(selects)
        sql = f"""
WITH windows AS (
  {union}
),
loads AS (
  SELECT dataset, finished_at, rows_in, rows_loaded, rows_dead
  FROM {_LOG}
  WHERE status = 'loaded' AND finished_at <= @now
)
SELECT
  windows.dataset,
  MAX(loads.finished_at) AS last_loaded_at,
  COALESCE(SUM(IF(loads.finished_at > windows.rows_since, loads.rows_loaded, 0)), 0)
    AS rows_in_row_window,
  COALESCE(SUM(IF(loads.finished_at > windows.dead_since, loads.rows_in, 0)), 0)
    AS rows_in_dead_window,
  COALESCE(SUM(IF(loads.finished_at > windows.dead_since, loads.rows_dead, 0)), 0)
    AS rows_dead_in_dead_window
FROM windows
LEFT JOIN loads ON loads.dataset = windows.dataset
GROUP BY windows.dataset
"""
        return {
            row["dataset"]: LoadFacts(
                last_loaded_at=_utc(row["last_loaded_at"]),
                rows_in_row_window=int(row["rows_in_row_window"]),
                rows_in_dead_window=int(row["rows_in_dead_window"]),
                rows_dead_in_dead_window=int(row["rows_dead_in_dead_window"]),
            )
            for row in self.query(sql, params)
        }

    def ensure_alerts_table(self) -> None:
        """Create ``{dataset}.alerts`` when missing (the dataset itself must exist)."""
        columns = ", ".join(f"{name} {BIGQUERY_TYPES[kind]}" for name, kind in ALERT_COLUMNS)
        self.run_script(f"CREATE TABLE IF NOT EXISTS {_ALERTS} ({columns})")

    def record_alerts(
        self, breaches: Sequence[Breach], datasets: Sequence[str], now: datetime
    ) -> list[AlertRecord]:
        """Merge one check of ``datasets`` at ``now`` into the alerts table (created when
        missing); the rows of those datasets now open or cleared by this check.

        One MERGE, so a check is idempotent: a breach still open keeps its ``opened_at``; an
        open alert of a checked dataset missing from ``breaches`` becomes ``cleared``; a
        cleared one that breaches again reopens at ``now``. Other datasets' rows stay.
        """
        if not datasets:
            return []
        self.ensure_alerts_table()
        params: dict[str, Any] = {"now": now}
        rows = []
        for i, breach in enumerate(breaches):
            params |= {
                f"dataset_{i}": breach.dataset,
                f"rule_{i}": breach.rule,
                f"alert_{i}": breach.alert,
                f"message_{i}": breach.message,
                f"observed_{i}": None if breach.observed is None else float(breach.observed),
                f"threshold_{i}": float(breach.threshold),
            }
            rows.append(
                f"SELECT @dataset_{i} AS dataset, @rule_{i} AS rule, @alert_{i} AS alert,"
                f" @message_{i} AS message, CAST(@observed_{i} AS FLOAT64) AS observed,"
                f" CAST(@threshold_{i} AS FLOAT64) AS threshold"
            )
        if not rows:  # nothing breached: an empty source still clears what was open
            rows.append(
                "SELECT CAST(NULL AS STRING) AS dataset, CAST(NULL AS STRING) AS rule,"
                " CAST(NULL AS STRING) AS alert, CAST(NULL AS STRING) AS message,"
                " CAST(NULL AS FLOAT64) AS observed, CAST(NULL AS FLOAT64) AS threshold LIMIT 0"
            )
        checked_params = {f"checked_{i}": dataset for i, dataset in enumerate(datasets)}
        checked = ", ".join(f"@{name}" for name in checked_params)
        params |= checked_params
        source = "\n  UNION ALL ".join(rows)
        merge = f"""
MERGE {_ALERTS} AS T
USING (
  {source}
) AS S
ON T.dataset = S.dataset AND T.rule = S.rule
WHEN MATCHED THEN UPDATE SET
  alert = S.alert, status = 'open', message = S.message, observed = S.observed,
  threshold = S.threshold, opened_at = IF(T.status = 'open', T.opened_at, @now),
  checked_at = @now, cleared_at = NULL
WHEN NOT MATCHED BY TARGET THEN
  INSERT (dataset, rule, alert, status, message, observed, threshold, opened_at, checked_at)
  VALUES (S.dataset, S.rule, S.alert, 'open', S.message, S.observed, S.threshold, @now, @now)
WHEN NOT MATCHED BY SOURCE AND T.status = 'open' AND T.dataset IN ({checked}) THEN
  UPDATE SET status = 'cleared', checked_at = @now, cleared_at = @now
"""
        self.query(merge, params)
        current = self.query(
            f"SELECT {_ALERT_COLUMNS} FROM {_ALERTS}"
            f" WHERE dataset IN ({checked}) AND (status = 'open' OR cleared_at = @now)"
            " ORDER BY dataset, rule",
            {"now": now, **checked_params},
        )
        return [_alert_record(row) for row in current]

    def open_alerts(self) -> list[dict[str, Any]]:
        """Every open alert, by dataset and rule, as rows of ``OPEN_ALERTS_COLUMNS``; none
        when no check has created the alerts table yet."""
        try:
            return self.query(
                f"SELECT {', '.join(OPEN_ALERTS_COLUMNS)} FROM {_ALERTS}"
                " WHERE status = 'open' ORDER BY dataset, rule"
            )
        except MissingTable:
            return []


def _ingestion_record(row: dict[str, Any]) -> IngestionRecord:
    values = {field.name: row[field.name] for field in fields(IngestionRecord)}
    return IngestionRecord(
        **values | {"started_at": _utc(row["started_at"]), "finished_at": _utc(row["finished_at"])}
    )


def _alert_record(row: dict[str, Any]) -> AlertRecord:
    times = {name: _utc(row[name]) for name in ("opened_at", "checked_at", "cleared_at")}
    return AlertRecord(**{field.name: row[field.name] for field in fields(AlertRecord)} | times)


def _utc(moment: datetime | None) -> Any:
    """A warehouse timestamp in UTC (both adapters answer zone-aware times); None stays."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
