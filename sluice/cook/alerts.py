"""Data alerts: expected data that did not arrive, and too many dead letters.

``check_alerts`` reads only ``{dataset}.ingestion_log`` (``warehouse.load_facts``: one query
for every contract), compares it with each contract's rules and records the result in
``{dataset}.alerts`` (``warehouse.record_alerts``), one row per (dataset, rule) that has
ever breached. The rules live here, the table access in ``sluice.warehouse.state``:

- ``max_hours_without_file`` (alert ``missing_data``): no file of the dataset was *loaded*
  (rejected files do not count: they bring no data) in the last N hours, or ever;
- ``min_rows_per_hour`` (alert ``missing_data``): the files loaded in the last
  ``window_hours`` brought fewer than ``min_rows_per_hour`` rows per hour on average;
- ``dead_letter_rate`` (alert ``dead_letter_rate``): of the rows of the files loaded in the
  last ``dead_letter.window_hours`` (24 by default), the share that became dead letters is
  above ``dead_letter.max_rate``. A window, not "since the last check", so the answer
  depends only on the log and ``now``: checking twice gives the same alerts;
- a broken contract file (alert ``broken_contract``): the dataset is out of service, its
  files are quarantined with the reason, until the file is fixed;
- ``unprocessed_files`` (alert ``unprocessed_files``): a landing file of the dataset has
  waited longer than ``SLUICE_UNPROCESSED_ALERT_SECONDS`` without a settled claim, and the
  cook's reconciliation (``sluice.cook.reconcile``) could not settle it either.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.contracts import BrokenContract, Contract
from sluice.errors import ConfigError
from sluice.logs import event_labels, log_event
from sluice.warehouse import Warehouse
from sluice.warehouse.state import Breach, LoadFacts, LoadWindow

log = logging.getLogger(__name__)

RULE_ALERTS = {
    "max_hours_without_file": "missing_data",
    "min_rows_per_hour": "missing_data",
    "dead_letter_rate": "dead_letter_rate",
    "broken_contract": "broken_contract",
    "unprocessed_files": "unprocessed_files",
}
"""Rule -> the ``alert`` kind logged for it (the values infra/monitoring.tf filters on)."""


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


def check_alerts(
    warehouse: Warehouse,
    contracts: Mapping[str, Contract],
    now: datetime | None = None,
    broken: Sequence[BrokenContract] = (),
    unprocessed: Mapping[str, float] | None = None,
    unprocessed_after_seconds: float = 7200,
) -> list[Alert]:
    """Check every contract's rules, record them in the alerts table, log the open ones;
    each ``broken`` contract is an open ``broken_contract`` alert of its dataset, and each
    dataset in ``unprocessed`` (dataset -> seconds its oldest unsettled file has waited,
    ``ReconcileReport.unsettled``) past ``unprocessed_after_seconds`` an open
    ``unprocessed_files`` alert.

    Returns the open alerts of these datasets, by dataset and rule. The contracts' tables
    must exist (``warehouse.ensure_tables``); the alerts table is created.
    """
    now = _utc(now or datetime.now(UTC))
    checked = sorted(contracts.values(), key=lambda contract: contract.name)
    facts = load_facts(warehouse, checked, now)
    found = [alert for c in checked for alert in breaches(c, facts[c.name], now)]
    found += [
        Alert(b.dataset, "broken_contract",
              f"{b.dataset}: contract {b.path} is broken, its files are quarantined: {b.reason}",
              None, 0.0, now)
        for b in broken
    ]  # fmt: skip
    found += [
        Alert(dataset, "unprocessed_files",
              f"{dataset}: a landing file has waited {seconds / 3600:.1f} h without being "
              f"loaded or rejected; expected each settled within "
              f"{unprocessed_after_seconds / 3600:g} h (see the cook's reconcile counts)",
              seconds / 3600, unprocessed_after_seconds / 3600, now)
        for dataset, seconds in sorted((unprocessed or {}).items())
        if seconds > unprocessed_after_seconds
    ]  # fmt: skip
    datasets = sorted({c.name for c in checked} | {b.dataset for b in broken})
    alerts, cleared = record_alerts(warehouse, found, datasets, now)
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


def open_alerts(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Every open alert in the alerts table, by dataset and rule (``warehouse.open_alerts``)."""
    return warehouse.open_alerts()


def load_facts(
    warehouse: Warehouse, contracts: list[Contract], now: datetime
) -> dict[str, LoadFacts]:
    """Per dataset: the last load and the rows of each rule's window, in one query."""
    windows = [
        LoadWindow(
            contract.name,
            rows_since=now - timedelta(hours=contract.freshness.window_hours),
            dead_since=now - timedelta(hours=contract.dead_letter_window_hours),
        )
        for contract in contracts
    ]
    return warehouse.load_facts(windows, now)


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
    breached = [
        Breach(a.dataset, a.rule, a.alert, a.message, a.observed, float(a.threshold)) for a in found
    ]
    current = warehouse.record_alerts(breached, datasets, now)
    alerts = [
        Alert(row.dataset, row.rule, row.message, row.observed, row.threshold,
              _utc(row.opened_at))
        for row in current
        if row.status == "open"
    ]  # fmt: skip
    cleared = [(row.dataset, row.rule) for row in current if row.status == "cleared"]
    return alerts, cleared


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ConfigError(f"expected a time zone aware time, found {moment.isoformat()}")
    return moment.astimezone(UTC)
