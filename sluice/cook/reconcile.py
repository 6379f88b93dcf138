"""Reconciliation: every file in the landing bucket is ingested, whether or not its event came.

Exactly-once holds for every event that arrives, but some files never get a useful one:
Eventarc gives up after a day of retries (a day-long outage), events older than
``max_event_age_seconds`` are dropped on purpose, a misconfigured trigger or a redeploy
loses deliveries, and a function killed between its claim and its launch leaves the claim
``claimed`` with no redelivery to take it over. Like the BigQuery Data Transfer Service,
the cook therefore also polls the bucket (``reconcile_bucket``, with every cook):

1. it lists the landing objects under each usable contract's prefix (a broken contract's
   files wait, alerted as ``broken_contract``, and are reconciled once it is fixed), at
   most ``reconcile_max_objects`` per run, going on from a cursor kept in the pipeline
   bucket (``CURSOR_OBJECT``) and starting with the prefix the last run stopped in, so a
   bucket of any size is covered over several runs and no prefix starves the others; the
   cursor is kept after each prefix, so a pass cut short goes on from there;
2. an object generation younger than ``reconcile_grace_seconds`` is left to its event;
3. one whose claim is settled (launched, loaded, rejected, superseded), or settled for now
   (``waiting_for_quota``: accepted, waiting for a Dataflow job slot), is done here: the sweep
   (``sluice.cook.sweep``) looks after launched pipelines that died, ``sluice.cook.waiting``
   launches the waiting files as jobs end;
4. any other (no claim at all, or ``claimed`` past its lease) goes through the door
   exactly as its event would have (``sluice.ingest.door.handle_object``): the same claim,
   so a late event, a second cook or a retry finds it settled and does nothing. A claim
   within its lease is left to its holder. An accepted file is always launched, whatever
   its size: the cook does not load files in its own function (no fast lane).

The counts go into the cook's answer; ``waiting`` and ``oldest_waiting_seconds`` say how
many files had no settled claim when listed, and how long the oldest of them had waited.
``unsettled`` names the datasets whose files this pass could not settle either, with the
oldest wait: past ``SLUICE_UNPROCESSED_ALERT_SECONDS`` that opens the dataset's
``unprocessed_files`` alert (``sluice.cook.alerts``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sluice.contracts import ContractSet, load_contract_set
from sluice.gcs import gcs_faults, gs_uri
from sluice.ingest.claims import CLAIMED, ClaimInProgress, event_key, read_claim
from sluice.ingest.door import handle_object
from sluice.logs import log_event
from sluice.settings import Settings

if TYPE_CHECKING:
    from google.cloud import storage

LOG = logging.getLogger(__name__)

CURSOR_OBJECT = "reconcile/cursor.json"
"""In the pipeline bucket: where the listing goes on from (prefix -> last object name seen)
and the last pass's counts, which ``sluice status`` shows."""
WAITING = "waiting"
"""The state of a landing object without a claim: its event has not been handled (yet)."""


@dataclass
class ReconcileReport:
    """What one reconciliation pass saw and did, in landing objects."""

    listed: int = 0
    """Objects listed this run (at most ``reconcile_max_objects``)."""
    settled: int = 0
    """Their claim is settled: nothing to do."""
    too_new: int = 0
    """Younger than the grace: left to their event."""
    ignored: int = 0
    """Not files the door takes (a folder placeholder ending in '/'), or ones it ignored."""
    ingested: int = 0
    """Handed to the door: no claim, or a ``claimed`` claim past its lease."""
    in_progress: int = 0
    """A delivery holds the claim within its lease."""
    failed: int = 0
    """The door failed (logged with the object); the next run tries again."""
    waiting: int = 0
    """Objects past the grace without a settled claim when listed."""
    oldest_waiting_seconds: float | None = None
    """How long the oldest of them had been in the bucket."""
    unsettled: dict[str, float] = field(default_factory=dict)
    """Dataset -> seconds its oldest file left unsettled by this pass (held within a lease,
    or the door failed) has waited: what the ``unprocessed_files`` alert reads."""
    wrapped: bool = False
    """The listing reached the end of every prefix: the next run starts over."""
    error: str | None = None
    """Why the pass stopped (Cloud Storage unreachable, say); the cook still cooks."""

    def as_dict(self) -> dict[str, Any]:
        """The counts, for the cook's answer and its log line."""
        return asdict(self)


def reconcile_bucket(
    client: storage.Client,
    settings: Settings,
    contract_set: ContractSet | None = None,
    now: datetime | None = None,
) -> ReconcileReport:
    """List the next ``reconcile_max_objects`` landing objects and ingest every one whose
    event was lost; what it saw and did, as counts."""
    now = now or datetime.now(UTC)
    contract_set = contract_set or load_contract_set(settings.contracts_dir)
    # Usable contracts only: a broken contract's files wait, alerted as broken_contract,
    # and are reconciled once it is fixed.
    datasets = {c.landing_prefix: c.name for c in contract_set.contracts.values()}
    state = _read_state(client, settings)
    after_names = state.get("after")
    cursor = (
        {str(k): str(v) for k, v in after_names.items()} if isinstance(after_names, dict) else {}
    )
    prefixes = sorted(datasets)
    # Each run starts where the last one stopped, so a big prefix cannot starve the others.
    first = prefixes.index(state["start"]) if state.get("start") in prefixes else 0
    report = ReconcileReport(wrapped=True)
    budget, start = settings.reconcile_max_objects, prefixes[0] if prefixes else ""
    for prefix in prefixes[first:] + prefixes[:first]:
        if budget <= 0:
            report.wrapped, start = False, prefix
            break
        after = cursor.get(prefix, "")
        blobs = _listed(client, settings, prefix, after, budget + 1)
        if len(blobs) > budget:
            blobs, report.wrapped, start = blobs[:budget], False, prefix
            cursor[prefix] = blobs[-1].name if blobs else after
        else:
            cursor[prefix] = ""  # the end of the prefix: the next listing starts over
        budget -= len(blobs)
        for blob in blobs:
            _reconcile_one(client, settings, blob, datasets[prefix], now, report)
        # Kept after each prefix: a pass cut short by the function's time limit goes on.
        _write_state(client, settings, cursor, prefix, {**report.as_dict(), "at": now.isoformat()})
    _write_state(client, settings, cursor, start, {**report.as_dict(), "at": now.isoformat()})
    level = logging.WARNING if report.ingested or report.failed else logging.INFO
    log_event(LOG, level, f"reconciliation of the landing bucket: {report.as_dict()}")
    return report


def _reconcile_one(
    client: storage.Client,
    settings: Settings,
    blob: storage.Blob,
    dataset: str,
    now: datetime,
    report: ReconcileReport,
) -> None:
    report.listed += 1
    if blob.name.endswith("/"):
        report.ignored += 1  # a folder placeholder: no file, no event to miss
        return
    age = now - blob.updated
    if age < timedelta(seconds=settings.reconcile_grace_seconds):
        report.too_new += 1
        return
    key = event_key(settings.landing_bucket, blob.name, blob.generation)
    with gcs_faults(f"reading the claim of {key}"):
        claim = read_claim(client, settings, key)
    if claim is not None and claim.state != CLAIMED:
        report.settled += 1
        return
    report.waiting += 1
    waited = age.total_seconds()
    report.oldest_waiting_seconds = max(report.oldest_waiting_seconds or 0.0, waited)
    # Through the pipeline always (no fast lane): the cook function is sized and permitted to
    # launch jobs and run summaries, not to load files itself (infra/functions.tf).
    door_settings = replace(settings, fast_lane_max_bytes=0)
    try:  # the door takes over a ``claimed`` claim past its lease, or says it is held
        outcome = handle_object(
            settings.landing_bucket, blob.name, blob.generation, settings=door_settings
        )
    except ClaimInProgress:
        report.in_progress += 1
        _still_waiting(report, dataset, waited)
        return
    except Exception as exc:  # one file's failure must not stop the pass (nor the cook)
        report.failed += 1
        _still_waiting(report, dataset, waited)
        LOG.error("reconciling %s failed: %s", key, exc, exc_info=True)
        return
    if outcome.status == "ignored":
        report.ignored += 1
        return
    report.ingested += 1
    LOG.warning(
        "reconciled %s after %.0f s without a settled claim: %s", key, waited, outcome.status
    )


def _still_waiting(report: ReconcileReport, dataset: str, waited: float) -> None:
    report.unsettled[dataset] = max(report.unsettled.get(dataset, 0.0), waited)


def _listed(
    client: storage.Client, settings: Settings, prefix: str, after: str, limit: int
) -> list[storage.Blob]:
    """Up to ``limit`` landing objects under ``prefix`` named after ``after``, in name order."""
    with gcs_faults(f"listing gs://{settings.landing_bucket}/{prefix}"):
        listed = client.list_blobs(
            settings.landing_bucket,
            prefix=prefix,
            start_offset=after or None,
            max_results=limit + 1,  # start_offset includes ``after`` itself
        )
        return [blob for blob in listed if blob.name != after][:limit]


def _read_state(client: storage.Client, settings: Settings) -> dict[str, Any]:
    """What the last pass left in ``CURSOR_OBJECT``: ``after`` (prefix -> last name seen),
    ``start`` (the prefix the next pass begins with) and ``last_run`` (its counts, with
    ``at``); empty before the first pass."""
    from google.api_core.exceptions import NotFound

    blob = client.bucket(settings.pipeline_bucket).blob(CURSOR_OBJECT)
    with gcs_faults("reading the reconciliation cursor"):
        try:
            raw = blob.download_as_bytes()
        except NotFound:
            return {}
    try:
        state = json.loads(raw)
    except ValueError:
        LOG.warning("reconciliation cursor %s is not JSON: starting over", CURSOR_OBJECT)
        return {}
    return state if isinstance(state, dict) else {}


def last_run(client: storage.Client, settings: Settings) -> dict[str, Any] | None:
    """The counts of the last reconciliation pass, with its time ``at``; None before any."""
    run = _read_state(client, settings).get("last_run")
    return run if isinstance(run, dict) else None


def _write_state(
    client: storage.Client,
    settings: Settings,
    cursor: dict[str, str],
    start: str,
    run: dict[str, Any],
) -> None:
    blob = client.bucket(settings.pipeline_bucket).blob(CURSOR_OBJECT)
    state = json.dumps({"after": cursor, "start": start, "last_run": run}, sort_keys=True)
    with gcs_faults("writing the reconciliation cursor"):
        blob.upload_from_string(state, content_type="application/json")


@dataclass(frozen=True)
class LandingFile:
    """One landing object and where it stands (``sluice status``)."""

    dataset: str
    uri: str
    generation: int
    updated: datetime
    state: str
    """Its claim's state, or ``waiting``: no claim yet (its event has not been handled)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {**asdict(self), "updated": self.updated.isoformat()}


def landing_files(
    client: storage.Client, settings: Settings, contract_set: ContractSet, limit: int
) -> list[LandingFile]:
    """The ``limit`` most recently written landing objects under the contracts' prefixes
    (among the first ``reconcile_max_objects`` of each prefix), newest first, each with its
    state."""
    datasets = contract_set.datasets_by_prefix()
    listed = [
        (blob, datasets[prefix])
        for prefix in sorted(datasets)
        for blob in _listed(client, settings, prefix, "", settings.reconcile_max_objects)
    ]
    listed.sort(key=lambda pair: (pair[0].updated, pair[0].name), reverse=True)
    files = []
    for blob, dataset in listed[:limit]:
        key = event_key(settings.landing_bucket, blob.name, blob.generation)
        with gcs_faults(f"reading the claim of {key}"):
            claim = read_claim(client, settings, key)
        uri = gs_uri(settings.landing_bucket, blob.name)
        state = WAITING if claim is None else claim.state
        files.append(LandingFile(dataset, uri, int(blob.generation), blob.updated, state))
    return files
