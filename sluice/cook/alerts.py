"""Data alerts: expected data that did not arrive, and too many dead letters.

``check_alerts`` reads only ``{dataset}.ingestion_log`` (one parameterised query for every
contract), compares it with each contract's rules and records the result in
``{dataset}.alerts``, one row per (dataset, rule) that has ever breached:

- ``max_hours_without_file`` (alert ``missing_data``): no file of the dataset was *loaded*
  (rejected files do not count: they bring no data) in the last N hours, or ever;
- ``min_rows_per_hour`` (alert ``missing_data``): the files loaded in the last
  ``window_hours`` brought fewer than ``min_rows_per_hour`` rows per hour on average;
- ``dead_letter_rate`` (alert ``dead_letter_rate``): of the rows of the files loaded in the
  last ``dead_letter.window_hours`` (24 by default), the share that became dead letters is
  above ``dead_letter.max_rate``. A window, not "since the last check", so the answer
  depends only on the log and ``now``: checking twice gives the same alerts.

Windows are ``(now - hours, now]`` over the log's ``finished_at``; rows finished after
``now`` are ignored. The table is updated by one MERGE, so a check is idempotent: a breach
still present keeps its ``opened_at``; an open alert whose rule no longer breaches becomes
``cleared`` with ``cleared_at``; a cleared alert that breaches again reopens with a new
``opened_at``. Every open alert is also logged once per check as an ERROR line carrying
``alert`` (``missing_data`` | ``dead_letter_rate``) and the ``dataset`` label: the shape
the log-based metric in infra/monitoring.tf pages on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.contracts import Contract
from sluice.errors import ConfigError
from sluice.logs import event_labels, log_event
from sluice.schema import ALERT_COLUMNS, ALERTS_TABLE, BIGQUERY_TYPES, INGESTION_LOG_TABLE
from sluice.warehouse import Warehouse

log = logging.getLogger(__name__)

RULE_ALERTS = {
    "max_hours_without_file": "missing_data",
    "min_rows_per_hour": "missing_data",
    "dead_letter_rate": "dead_letter_rate",
}
"""Rule -> the ``alert`` kind logged for it (the values infra/monitoring.tf filters on)."""

OPEN_ALERTS_SQL = f"""
SELECT dataset, rule, alert, message, observed, threshold, opened_at, checked_at
FROM {{dataset}}.{ALERTS_TABLE}
WHERE status = 'open'
ORDER BY dataset, rule
"""


@dataclass(frozen=True)
class Alert:
    """One breached rule of one dataset, open since ``opened_at``."""

    dataset: str
    rule: str
    message: str
    observed: float | None
    """What the rule measured: hours without a file (None: never), rows per hour, a share."""
    threshold: float
    opened_at: datetime

    @property
    def alert(self) -> str:
        """The alert kind: ``missing_data`` or ``dead_letter_rate``."""
        return RULE_ALERTS[self.rule]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with the alert kind and ``opened_at`` in ISO 8601."""
        return {
            "dataset": self.dataset,
            "rule": self.rule,
            "alert": self.alert,
            "message": self.message,
            "observed": self.observed,
            "threshold": self.threshold,
            "opened_at": self.opened_at.isoformat(),
        }


@dataclass(frozen=True)
class LoadFacts:
    """What the ingestion log says about one dataset's loaded files up to ``now``."""

    last_loaded_at: datetime | None
    rows_in_row_window: int
    """Rows loaded by files finished within the freshness ``window_hours``."""
    rows_in_dead_window: int
    rows_dead_in_dead_window: int


def check_alerts(
    warehouse: Warehouse, contracts: Mapping[str, Contract], now: datetime | None = None
) -> list[Alert]:
    """Check every contract's rules, record them in the alerts table, log the open ones.

    Returns the open alerts of these contracts' datasets, by dataset and rule. The
    contracts' tables must exist (``warehouse.ensure_tables``); the alerts table is created.
    """
    now = _utc(now or datetime.now(UTC))
    checked = sorted(contracts.values(), key=lambda contract: contract.name)
    ensure_alerts_table(warehouse)
    facts = load_facts(warehouse, checked, now)
    found = [alert for c in checked for alert in breaches(c, facts[c.name], now)]
    alerts, cleared = record_alerts(warehouse, found, [c.name for c in checked], now)
    for alert in alerts:
        with event_labels(dataset=alert.dataset):
            log_event(
                log,
                logging.ERROR,
                alert.message,
                alert=alert.alert,
                rule=alert.rule,
                observed=alert.observed,
                threshold=alert.threshold,
                opened_at=alert.opened_at.isoformat(),
            )
    for dataset, rule in cleared:
        with event_labels(dataset=dataset):
            log_event(log, logging.INFO, f"{dataset}: alert {rule} cleared", cleared=rule)
    return alerts


def ensure_alerts_table(warehouse: Warehouse) -> None:
    """Create ``{dataset}.alerts`` when missing (the dataset itself must exist)."""
    columns = ", ".join(f"{name} {BIGQUERY_TYPES[kind]}" for name, kind in ALERT_COLUMNS)
    warehouse.run_script(f"CREATE TABLE IF NOT EXISTS {{dataset}}.{ALERTS_TABLE} ({columns})")


def open_alerts(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Every open alert in the alerts table, by dataset and rule."""
    ensure_alerts_table(warehouse)
    return warehouse.query(OPEN_ALERTS_SQL)


def load_facts(
    warehouse: Warehouse, contracts: list[Contract], now: datetime
) -> dict[str, LoadFacts]:
    """Per dataset: the last load and the rows of each rule's window, in one query."""
    if not contracts:
        return {}
    params: dict[str, Any] = {"now": now}
    windows = []
    for i, contract in enumerate(contracts):
        params[f"dataset_{i}"] = contract.name
        params[f"rows_since_{i}"] = now - timedelta(hours=contract.freshness.window_hours)
        params[f"dead_since_{i}"] = now - timedelta(hours=contract.dead_letter_window_hours)
        windows.append(
            f"SELECT @dataset_{i} AS dataset, CAST(@rows_since_{i} AS TIMESTAMP) AS rows_since,"
            f" CAST(@dead_since_{i} AS TIMESTAMP) AS dead_since"
        )
    union = "\n  UNION ALL ".join(windows)
    sql = f"""
WITH windows AS (
  {union}
),
loads AS (
  SELECT dataset, finished_at, rows_in, rows_loaded, rows_dead
  FROM {{dataset}}.{INGESTION_LOG_TABLE}
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
            last_loaded_at=_utc(row["last_loaded_at"]) if row["last_loaded_at"] else None,
            rows_in_row_window=int(row["rows_in_row_window"]),
            rows_in_dead_window=int(row["rows_in_dead_window"]),
            rows_dead_in_dead_window=int(row["rows_dead_in_dead_window"]),
        )
        for row in warehouse.query(sql, params)
    }


def breaches(contract: Contract, facts: LoadFacts, now: datetime) -> list[Alert]:
    """The rules of ``contract`` that ``facts`` breach at ``now`` (opened at ``now``)."""
    name, rule = contract.name, contract.freshness
    found: list[Alert] = []
    if rule.max_hours_without_file is not None:
        limit = rule.max_hours_without_file
        if facts.last_loaded_at is None:
            found.append(
                Alert(name, "max_hours_without_file",
                      f"{name}: no file loaded yet; expected one at least every {limit:g} h",
                      None, limit, now)
            )  # fmt: skip
        else:
            hours = (now - facts.last_loaded_at).total_seconds() / 3600
            if hours > limit:
                found.append(
                    Alert(name, "max_hours_without_file",
                          f"{name}: no file loaded for {hours:.1f} h (last at "
                          f"{facts.last_loaded_at.isoformat()}); expected one at least every "
                          f"{limit:g} h", hours, limit, now)
                )  # fmt: skip
    if rule.min_rows_per_hour is not None:
        per_hour = facts.rows_in_row_window / rule.window_hours
        if per_hour < rule.min_rows_per_hour:
            found.append(
                Alert(name, "min_rows_per_hour",
                      f"{name}: {facts.rows_in_row_window:,} rows loaded in the last "
                      f"{rule.window_hours:g} h ({per_hour:g} per hour); expected at least "
                      f"{rule.min_rows_per_hour:g} per hour", per_hour, rule.min_rows_per_hour,
                      now)
            )  # fmt: skip
    rows_in, dead = facts.rows_in_dead_window, facts.rows_dead_in_dead_window
    # Compared as integers so a rate exactly at the threshold never fires on rounding.
    if rows_in and dead > contract.dead_letter_max_rate * rows_in:
        rate = dead / rows_in
        found.append(
            Alert(name, "dead_letter_rate",
                  f"{name}: {dead:,} of {rows_in:,} rows ({rate:.2%}) loaded in the last "
                  f"{contract.dead_letter_window_hours:g} h were dead letters; expected at most "
                  f"{contract.dead_letter_max_rate:.2%}", rate, contract.dead_letter_max_rate,
                  now)
        )  # fmt: skip
    return found


def record_alerts(
    warehouse: Warehouse, found: list[Alert], datasets: list[str], now: datetime
) -> tuple[list[Alert], list[tuple[str, str]]]:
    """Merge this check into the alerts table; (open alerts, (dataset, rule) cleared now).

    Open alerts come back from the table, so a breach that was already open carries the
    ``opened_at`` of the check that first saw it.
    """
    if not datasets:
        return [], []
    params: dict[str, Any] = {"now": now}
    rows = []
    for i, alert in enumerate(found):
        params |= {
            f"dataset_{i}": alert.dataset,
            f"rule_{i}": alert.rule,
            f"alert_{i}": alert.alert,
            f"message_{i}": alert.message,
            f"observed_{i}": alert.observed,
            f"threshold_{i}": float(alert.threshold),
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
    checked = ", ".join(f"@checked_{i}" for i in range(len(datasets)))
    params |= {f"checked_{i}": dataset for i, dataset in enumerate(datasets)}
    source = "\n  UNION ALL ".join(rows)
    merge = f"""
MERGE {{dataset}}.{ALERTS_TABLE} AS T
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
    warehouse.query(merge, params)
    current = warehouse.query(
        f"SELECT dataset, rule, status, message, observed, threshold, opened_at"
        f" FROM {{dataset}}.{ALERTS_TABLE}"
        f" WHERE dataset IN ({checked}) AND (status = 'open' OR cleared_at = @now)"
        f" ORDER BY dataset, rule",
        {"now": now, **{f"checked_{i}": dataset for i, dataset in enumerate(datasets)}},
    )
    alerts = [
        Alert(row["dataset"], row["rule"], row["message"], row["observed"],
              row["threshold"], _utc(row["opened_at"]))
        for row in current
        if row["status"] == "open"
    ]  # fmt: skip
    cleared = [(row["dataset"], row["rule"]) for row in current if row["status"] == "cleared"]
    return alerts, cleared


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ConfigError(f"expected a time zone aware time, found {moment.isoformat()}")
    return moment.astimezone(UTC)
