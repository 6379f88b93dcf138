"""The sweep: files whose pipeline died after its launch are finished, relaunched or given up.

Once a launch succeeds, ``on_upload`` acknowledges the event: no redelivery comes, and the
claim's lease covers only ``claimed``. A pipeline that dies afterwards (its process killed,
an exception, a held DuckDB lock, a Dataflow job failed or cancelled) would leave the claim
``launched`` for ever. ``sweep_stuck_claims`` runs with every cook (``main.cook``, which
Cloud Scheduler and the local stack's cook loop call) and looks at each claim object under
``claims/`` whose state (kept as object metadata, so the listing tells) is ``launched`` and
that has not changed for ``settings.job_check_after_seconds``. For each one, in this order:

1. its job still runs (``Launcher.is_running``: the local pid file, or Dataflow's job state):
   left alone. Asked first, so that a job finishing during the sweep is never relaunched: a
   job writes its ingestion-log row before it exits;
2. the ingestion log holds this job's row for the file's generation: the job finished but
   did not settle the claim; the claim is settled from the row (``loaded`` or ``rejected``);
3. fewer than ``settings.max_pipeline_attempts`` runs so far: relaunched with the request
   ``on_upload`` built (same job name, event key, test flag, split index, replay id). The
   attempt is counted in the claim first, by compare-and-swap on the generation this sweep
   read, so of two sweeps at once only one relaunches. When Dataflow's job budget is spent
   (``launch.JobBudgetSpent``) the claim moves to ``waiting_for_quota`` and the cook's
   ``sluice.cook.waiting`` starts that run once a job ends;
4. otherwise: a ``rejected`` ingestion-log row ("pipeline failed N times; see job <name>
   log"), then the claim ``rejected``. The landing file stays where it is, never quarantined:
   nothing says it is a bad file. ``sluice replay`` ingests it again once the cause is fixed.

A fault on one claim is logged with its event key and counted (``failed``); the sweep goes on.
Only listing the claims may raise (``TransientError`` from Cloud Storage), so the scheduler
retries the whole cook.

The local stack also sweeps once at its start with ``check_after_seconds=0``: every job of
its previous run has stopped by then (or still runs, which step 1 tells), so a file that run
left mid-pipeline resumes at once instead of after the check delay and the next cook.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sluice.contracts import Contract, ContractSet, load_contract_set
from sluice.errors import MissingTable
from sluice.gcs import gcs_faults, gs_uri
from sluice.ingest import launch
from sluice.ingest.claims import (
    CLAIMS_PREFIX,
    LAUNCHED,
    REJECTED,
    STATE_METADATA,
    WAITING_FOR_QUOTA,
    Claim,
    ClaimStateError,
    read_claim_object,
    set_claim_state,
    split_index_name,
    swap_claim,
)
from sluice.ingest.quarantine import record_rejected_source
from sluice.logs import event_labels, log_event
from sluice.schema import IngestionRecord
from sluice.settings import Settings
from sluice.warehouse import connected_warehouse

if TYPE_CHECKING:
    from google.cloud import storage

LOG = logging.getLogger(__name__)

SPLITS_SUFFIX = ".splits.json"
"""Split indexes live beside the claims (``sluice.ingest.claims.split_index_name``): not claims."""
RUNNING, SETTLED, RELAUNCHED, WAITING, GAVE_UP, UNCHANGED = (
    "running", "settled", "relaunched", "waiting", "gave_up", "unchanged",
)  # fmt: skip


@dataclass
class SweepReport:
    """What one sweep did, in claims."""

    checked: int = 0
    """``launched`` claims old enough to check."""
    running: int = 0
    """Left alone: their job still runs."""
    settled: int = 0
    """Their job had finished (an ingestion-log row) without settling the claim."""
    relaunched: int = 0
    waiting: int = 0
    """Due a relaunch, but Dataflow's job budget was spent: now ``waiting_for_quota``."""
    gave_up: int = 0
    """Out of attempts: recorded ``rejected``."""
    failed: int = 0
    """The check itself failed (logged with the event key); the next sweep tries again."""

    def as_dict(self) -> dict[str, int]:
        """The counts, for the cook's answer and its log line."""
        return asdict(self)


def sweep_stuck_claims(
    client: storage.Client,
    settings: Settings,
    launcher: launch.Launcher | None = None,
    now: datetime | None = None,
    *,
    check_after_seconds: int | None = None,
) -> SweepReport:
    """Settle, leave, relaunch or give up every ``launched`` claim unchanged for
    ``check_after_seconds`` (default ``settings.job_check_after_seconds``); what it did, as
    counts."""
    now = now or datetime.now(UTC)
    cutoff = check_cutoff(settings, now, check_after_seconds)
    sweep = _Sweep(
        client, settings, launcher or launch.launcher_from_settings(settings), now, cutoff
    )
    report = SweepReport()
    for name in stuck_claim_names(client, settings, now, check_after_seconds=check_after_seconds):
        claim = None
        try:
            claim = read_claim_object(client, settings, name)
            if claim is None or not sweep.is_due(claim):
                continue  # settled or touched since the listing
            report.checked += 1
            with event_labels(event_key=claim.event_key, dataset=claim.dataset):
                outcome = sweep.check(claim)
        except Exception as exc:  # one bad claim must not stop the sweep (nor the cook)
            report.failed += 1
            which = claim.event_key if claim else name
            LOG.error("sweep of claim %s failed: %s", which, exc, exc_info=True)
            continue
        if outcome != UNCHANGED:
            setattr(report, outcome, getattr(report, outcome) + 1)
    level = (
        logging.WARNING if report.relaunched or report.gave_up or report.failed else logging.INFO
    )
    log_event(LOG, level, f"sweep of launched claims: {report.as_dict()}", **report.as_dict())
    return report


def check_cutoff(settings: Settings, now: datetime, check_after_seconds: int | None) -> datetime:
    """The time a ``launched`` claim must be unchanged since to have its job checked."""
    if check_after_seconds is None:
        check_after_seconds = settings.job_check_after_seconds
    return now - timedelta(seconds=check_after_seconds)


def stuck_claim_names(
    client: storage.Client,
    settings: Settings,
    now: datetime,
    *,
    check_after_seconds: int | None = None,
) -> list[str]:
    """Claim objects that may be stuck: ``launched`` (or older than state metadata) and not
    written since ``check_cutoff``; read from one listing."""
    cutoff = check_cutoff(settings, now, check_after_seconds)
    return [
        blob.name
        for blob in listed_claims(client, settings)
        if (blob.metadata or {}).get(STATE_METADATA, LAUNCHED) == LAUNCHED
        and (blob.updated is None or blob.updated <= cutoff)
    ]


def listed_claims(client: storage.Client, settings: Settings) -> list[storage.Blob]:
    """Every claim object (not the split indexes beside them), with its state metadata and
    update time, from one listing; raises ``TransientError`` when Cloud Storage fails."""
    with gcs_faults(f"listing claims in gs://{settings.pipeline_bucket}/{CLAIMS_PREFIX}"):
        blobs = list(
            client.list_blobs(
                settings.pipeline_bucket,
                prefix=CLAIMS_PREFIX,
                fields="items(name,metadata,updated),nextPageToken",
            )
        )
    return [
        blob
        for blob in blobs
        if blob.name.endswith(".json") and not blob.name.endswith(SPLITS_SUFFIX)
    ]


def relaunch_request(claim: Claim, started_at: datetime) -> launch.LaunchRequest:
    """The LaunchRequest on_upload built for this claim (without its split index)."""
    return launch.request_for_event(
        claim.dataset, claim.bucket, claim.name, claim.generation, claim.event_key,
        started_at=started_at,
    )  # fmt: skip


def split_index_uri(client: storage.Client, settings: Settings, claim: Claim) -> str | None:
    """The ``gs://`` URI of the split index validation stored for this claim, if any."""
    name = split_index_name(claim.event_key)
    with gcs_faults(f"looking up the split index of {claim.event_key}"):
        exists = client.bucket(settings.pipeline_bucket).blob(name).exists()
    return gs_uri(settings.pipeline_bucket, name) if exists else None


class _Sweep:
    """The decisions about one claim at a time, with what they share (clock, contracts)."""

    def __init__(
        self,
        client: storage.Client,
        settings: Settings,
        launcher: launch.Launcher,
        now: datetime,
        cutoff: datetime,
    ) -> None:
        self.client = client
        self.settings = settings
        self.launcher = launcher
        self.now = now
        self.cutoff = cutoff
        self._contracts: ContractSet | None = None

    def is_due(self, claim: Claim) -> bool:
        """A ``launched`` claim unchanged since the cutoff."""
        return claim.state == LAUNCHED and claim.updated_at <= self.cutoff

    def check(self, claim: Claim) -> str:
        """Decide about one due claim and act; the outcome (a SweepReport field or UNCHANGED)."""
        request = relaunch_request(claim, datetime.now(UTC))
        # A batch member's job is its batch's; a relaunch is the file's own job again.
        job_name = claim.job_name or request.job_name
        if self.launcher.is_running(job_name, claim.runner_job_id):
            return RUNNING
        record = self._log_row(claim, request)
        if record is not None and record.job_id == job_name:
            found = {"runner_job_id": record.job_id, "reason": record.reason}
            settled = {k: v for k, v in found.items() if v is not None}
            set_claim_state(self.client, self.settings, claim.event_key, record.status, **settled)
            message = (
                f"job {job_name} ended {record.status} without settling its claim;"
                " settled it from the ingestion-log row"
            )
            log_event(LOG, logging.WARNING, message, outcome=record.status)
            return SETTLED
        if claim.pipeline_attempts >= self.settings.max_pipeline_attempts:
            return self._give_up(claim, request, record)
        return self._relaunch(claim, request)

    def _relaunch(self, claim: Claim, request: launch.LaunchRequest) -> str:
        attempts = claim.pipeline_attempts + 1
        counted = swap_claim(
            self.client, self.settings, claim, pipeline_attempts=attempts, updated_at=self.now
        )
        if counted is None:
            return UNCHANGED  # another sweep (or the job) changed the claim first: it decides
        request = replace(request, split_index=split_index_uri(self.client, self.settings, claim))
        try:
            result = self.launcher.launch(request)
        except launch.JobBudgetSpent as exc:
            # Counted as a run already: it starts when the cook launches the waiting files.
            set_claim_state(
                self.client, self.settings, claim.event_key, WAITING_FOR_QUOTA, reason=str(exc)
            )
            log_event(LOG, logging.WARNING, f"relaunch waits: {exc}", outcome=WAITING_FOR_QUOTA)
            return WAITING
        # The new job's id; after a 409 only its name, so the next check looks it up by name.
        runner_job_id = result.runner_job_id or result.job_name
        try:
            set_claim_state(
                self.client, self.settings, claim.event_key, LAUNCHED,
                runner_job_id=runner_job_id, job_name=request.job_name,
            )  # fmt: skip
        except ClaimStateError:
            LOG.info("relaunched job %s finished before its launch was recorded", runner_job_id)
        if result.already_running:
            return RUNNING
        message = (
            f"relaunched job {request.job_name} for {request.source.uri} (run {attempts} of"
            f" {self.settings.max_pipeline_attempts}): it had ended without an ingestion-log row"
        )
        log_event(LOG, logging.WARNING, message, outcome=RELAUNCHED, runner_job_id=runner_job_id)
        return RELAUNCHED

    def _give_up(
        self, claim: Claim, request: launch.LaunchRequest, record: IngestionRecord | None
    ) -> str:
        reason = f"pipeline failed {claim.pipeline_attempts} times; see job {request.job_name} log"
        # The log row first: if the claim write is lost, the next sweep settles from the row.
        # Another job's 'loaded' row (a replay of a loaded file) stays: those rows are in.
        if record is None or record.status != "loaded":
            record_rejected_source(
                self._contract(claim.dataset), request.source, reason, request.started_at,
                self._log_settings(request), job_name=request.job_name,
            )  # fmt: skip
        given_up = swap_claim(
            self.client, self.settings, claim, state=REJECTED, reason=reason, updated_at=self.now
        )
        if given_up is None:
            return UNCHANGED
        message = f"gave up on {request.source.uri}: {reason}"
        log_event(LOG, logging.ERROR, message, outcome=REJECTED, reason=reason)
        return GAVE_UP

    def _log_row(self, claim: Claim, request: launch.LaunchRequest) -> IngestionRecord | None:
        """The newest ingestion-log row of the file's generation (any job), if any."""
        self._contract(claim.dataset)  # a dataset without a contract fails this claim here
        with connected_warehouse(self._log_settings(request)) as warehouse:
            try:
                return warehouse.latest_ingestion(request.source)
            except MissingTable:
                return None  # nothing logged to this dataset yet

    def _log_settings(self, request: launch.LaunchRequest) -> Settings:
        """Settings whose dataset is the one this run logs to (the test dataset for tests)."""
        return replace(self.settings, warehouse_dataset=request.warehouse_dataset(self.settings))

    def _contract(self, dataset: str) -> Contract:
        if self._contracts is None:
            self._contracts = load_contract_set(self.settings.contracts_dir)
        return self._contracts.contract(dataset)
