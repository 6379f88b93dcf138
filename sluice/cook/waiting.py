"""Files waiting for a Dataflow job slot are launched as jobs end, oldest first.

A project runs at most so many Dataflow jobs at once (25 by default). When ``on_upload``
(or the sweep's relaunch of a dead pipeline) finds that budget spent, the launcher raises
``launch.JobBudgetSpent``, the claim is recorded ``waiting_for_quota`` and the event is
acknowledged: Eventarc's retries, for up to a day, would only meet the same spent budget.
Nothing else would ever launch such a file, so ``launch_waiting_claims`` runs with every cook:

1. it lists the claims whose state (object metadata) is ``waiting_for_quota`` and reads them;
2. oldest wait first (the claim's ``updated_at``: when it began waiting), it launches each with
   the request ``on_upload`` built (``sluice.cook.sweep.relaunch_request``, same job name), until
   the launcher says the budget is spent again; the rest wait for the next cook;
3. before each launch it rewrites the claim unchanged by compare-and-swap on the generation it
   read, so of two cooks at once only one launches a file; a launch that reaches Dataflow but
   dies before ``launched`` is recorded launches again next time and gets 409, "already
   running", which counts as launched. A job name never runs twice at once.

The launch does not count as another pipeline run (``pipeline_attempts``): the wait came before
the run it was counted for. A fault on one claim is logged and counted (``failed``); listing
the claims may raise ``TransientError`` so the scheduler retries the cook.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sluice.cook.sweep import listed_claims, relaunch_request, split_index_uri
from sluice.ingest import launch
from sluice.ingest.claims import (
    LAUNCHED,
    SETTLED_STATES,
    STATE_METADATA,
    WAITING_FOR_QUOTA,
    Claim,
    ClaimStateError,
    read_claim,
    read_claim_object,
    set_claim_state,
    swap_claim,
)
from sluice.logs import event_labels, log_event
from sluice.settings import Settings

if TYPE_CHECKING:
    from google.cloud import storage

LOG = logging.getLogger(__name__)


@dataclass
class WaitingReport:
    """What one pass over the waiting files did, in claims."""

    waiting: int = 0
    """Claims found ``waiting_for_quota``."""
    launched: int = 0
    """Launched this pass (or found already running: a launch that was not recorded)."""
    still_waiting: int = 0
    """Left waiting: the budget was spent again, or another cook took the claim first."""
    failed: int = 0
    """The launch failed otherwise (logged with the event key); the next cook tries again."""
    oldest_waiting_seconds: float | None = None
    """How long the oldest waiting file had waited when this pass began."""
    unsettled: dict[str, float] = field(default_factory=dict)
    """Dataset -> seconds its longest-waiting file still waiting after this pass has waited:
    the cook adds it to the reconciliation's for the ``unprocessed_files`` alert, so jobs that
    never end (and a queue that never moves) page someone."""

    def as_dict(self) -> dict[str, Any]:
        """The counts, for the cook's answer and its log line."""
        return asdict(self)

    def unsettled_with(self, *others: Mapping[str, float]) -> dict[str, float]:
        """``unsettled`` and ``others`` (the reconciliation's, the batch flush's) in one: the
        longest wait of each dataset, for the ``unprocessed_files`` alert."""
        merged = dict(self.unsettled)
        for other in others:
            for dataset, waited in other.items():
                merged[dataset] = max(merged.get(dataset, 0.0), waited)
        return merged


def launch_waiting_claims(
    client: storage.Client,
    settings: Settings,
    launcher: launch.Launcher | None = None,
    now: datetime | None = None,
) -> WaitingReport:
    """Launch ``waiting_for_quota`` files, oldest wait first, while the job budget allows;
    what it did, as counts."""
    now = now or datetime.now(UTC)
    claims = waiting_claims(client, settings)
    report = WaitingReport(waiting=len(claims))
    if claims:
        report.oldest_waiting_seconds = (now - claims[0].updated_at).total_seconds()
        # Only now: a cook with nothing waiting needs no launcher (nor its credentials).
        _launch_in_order(
            client, settings, launcher or launch.launcher_from_settings(settings), claims, now,
            report,
        )  # fmt: skip
    level = logging.WARNING if report.failed else logging.INFO
    log_event(LOG, level, f"launch of files waiting for quota: {report.as_dict()}")
    return report


def _launch_in_order(
    client: storage.Client,
    settings: Settings,
    launcher: launch.Launcher,
    claims: list[Claim],
    now: datetime,
    report: WaitingReport,
) -> None:
    """Launch ``claims`` in their order until the budget is spent; count what happened."""
    for index, claim in enumerate(claims):
        with event_labels(event_key=claim.event_key, dataset=claim.dataset):
            try:
                launched = _launch_waiting(client, settings, launcher, claim, now)
            except launch.JobBudgetSpent as exc:
                LOG.info("job budget spent; %d file(s) wait: %s", len(claims) - index, exc)
                for waiting in claims[index:]:
                    _still_waiting(report, waiting, now)
                return
            except Exception as exc:  # one claim's fault must not stop the others (nor the cook)
                report.failed += 1
                _note_wait(report, claim, now)
                LOG.error("launch of waiting %s failed: %s", claim.event_key, exc, exc_info=True)
                continue
        if launched:
            report.launched += 1
        else:
            _still_waiting(report, claim, now)


def _still_waiting(report: WaitingReport, claim: Claim, now: datetime) -> None:
    """Count ``claim`` as left waiting, and note its wait."""
    report.still_waiting += 1
    _note_wait(report, claim, now)


def _note_wait(report: WaitingReport, claim: Claim, now: datetime) -> None:
    """Keep the longest wait of ``claim``'s dataset among files still waiting."""
    waited = (now - claim.updated_at).total_seconds()
    report.unsettled[claim.dataset] = max(report.unsettled.get(claim.dataset, 0.0), waited)


def waiting_claims(client: storage.Client, settings: Settings) -> list[Claim]:
    """The ``waiting_for_quota`` claims, the longest waiting first."""
    claims = []
    for blob in listed_claims(client, settings):
        if (blob.metadata or {}).get(STATE_METADATA) != WAITING_FOR_QUOTA:
            continue
        claim = read_claim_object(client, settings, blob.name)
        if claim is not None and claim.state == WAITING_FOR_QUOTA:
            claims.append(claim)
    return sorted(claims, key=lambda claim: (claim.updated_at, claim.event_key))


def _launch_waiting(
    client: storage.Client,
    settings: Settings,
    launcher: launch.Launcher,
    claim: Claim,
    now: datetime,
) -> bool:
    """Launch one waiting file; False when another cook took it first. Raises
    ``JobBudgetSpent`` when the budget is spent (the claim stays as it was)."""
    # Rewritten unchanged (its wait keeps its place in line): the compare-and-swap on the
    # generation read is the token that lets one cook, not two, launch it.
    mine = swap_claim(client, settings, claim)
    if mine is None:
        return False
    request = relaunch_request(claim, now)
    request = replace(request, split_index=split_index_uri(client, settings, claim))
    result = launcher.launch(request)
    runner_job_id = result.runner_job_id or result.job_name
    try:
        set_claim_state(
            client, settings, claim.event_key, LAUNCHED,
            runner_job_id=runner_job_id, job_name=request.job_name,
        )  # fmt: skip
    except ClaimStateError:
        current = read_claim(client, settings, claim.event_key)
        if current is None or current.state not in SETTLED_STATES:
            raise
        LOG.info("job %s finished before its launch was recorded", runner_job_id)
    verb = "is already running" if result.already_running else "launched"
    waited = (now - claim.updated_at).total_seconds()
    message = f"job {request.job_name} {verb} after {waited:.0f} s waiting for a job slot"
    log_event(LOG, logging.INFO, message, outcome=LAUNCHED, runner_job_id=runner_job_id)
    return True
