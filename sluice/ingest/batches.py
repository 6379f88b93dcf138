"""Files bound for the pipeline share jobs: a queue per batch group, flushed into batches.

A Dataflow job takes minutes to start and a project runs 25 at once, so a file too big for
the fast lane does not launch a job of its own. ``queue_file`` (called by ``on_upload``)
writes a queue marker and moves the file's claim to ``batched``; ``flush_batches`` cuts each
group's queue into batches by ``sluice.ingest.batch_plan.plan_batches`` (count, bytes, age)
and launches one job per batch. The queue, open batches and manifests are objects in the
pipeline bucket (``sluice.ingest.batch_store``). Flushing a batch is
a sequence of idempotent steps, so a crash at any point is resumed by the next flush, which
first finishes every ``open`` batch:

1. the ``open`` record is created if absent (its id comes from its candidates' event keys);
2. each candidate's claim is compare-and-swapped to ``batched`` with ``batch=<id>``, only from
   ``claimed`` or from ``batched`` without a batch: a file joins exactly one batch, and a
   candidate another batch took first is left out;
3. the manifest of the files that joined is created if absent (a retry reads the stored one);
4. their queue markers are deleted;
5. the job is launched under the batch's job name (a second launch gets 409, "already
   running"); when the job budget is spent the ``open`` record stays and the next flush
   launches it, oldest first;
6. the claims move to ``launched`` with the job's name and id, and ``open`` is deleted.

A resumed batch launches only while one of its files is still ``batched`` in it: once its
files are launched (by this batch, or on their own by the sweep) or settled, nothing is
launched again. Dataflow's 409 holds only while a job runs, so a job that died before its
claims said ``launched`` is launched again whole: a file it had loaded is loaded again, to
the same rows, since a load replaces its source's rows.

The pipeline (``beam.pipeline --batch``) loads each file of the manifest in its own
replacing transaction, one after another, with its own ingestion-log row (``job_id``: the
batch's job) and dead letters, and settles each file's claim. A dead batch job's files are
relaunched one by one by the cook's sweep, like any dead job's.

``flush_batches`` runs on a schedule (the ``flush`` function, every minute) and, for a batch
that has just filled, inside ``on_upload`` (``inline``: only new batches, and one another
delivery is already forming is left to it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sluice.contracts import load_contract_set
from sluice.errors import PermanentError
from sluice.gcs import gs_uri
from sluice.ingest import launch
from sluice.ingest.batch_plan import Member, batch_id, batch_job_name, plan_batches
from sluice.ingest.batch_store import (
    SWAP_ATTEMPTS,
    delete_if_there,
    dumps,
    list_groups,
    list_open,
    list_queue,
    manifest_name,
    marker_name,
    open_name,
    read_manifest,
    write_once,
)
from sluice.ingest.claims import (
    BATCHED,
    CLAIMED,
    LAUNCHED,
    REJECTED,
    SETTLED_STATES,
    ClaimStateError,
    read_claim,
    set_claim_state,
    swap_claim,
)
from sluice.logs import log_event
from sluice.schema import SourceRef
from sluice.settings import Settings

if TYPE_CHECKING:
    from google.cloud import storage

LOG = logging.getLogger(__name__)


@dataclass
class FlushReport:
    """What one flush did, in batches and files."""

    batches: int = 0
    """Batches launched (or found already running) by this flush."""
    files: int = 0
    """Files in those batches."""
    waiting: int = 0
    """Batches formed that wait for a job slot (the job budget was spent)."""
    queued: int = 0
    """Files left in a queue: their batch is not due yet."""
    failed: int = 0
    """Batches (or groups) whose flush failed otherwise (logged); the next flush resumes
    them."""
    unsettled: dict[str, float] = field(default_factory=dict)
    """Dataset -> seconds its longest-waiting file still queued or in an unlaunched batch
    has waited, for the ``unprocessed_files`` alert."""
    launched: dict[str, str] = field(default_factory=dict)
    """Event key -> runner job id of every file launched by this flush."""
    rejected: dict[str, str] = field(default_factory=dict)
    """Event key -> reason of every file whose batch's launch was refused for good."""

    def as_dict(self) -> dict[str, Any]:
        """The counts, for an answer and its log line."""
        data = asdict(self)
        del data["launched"]
        data["rejected"] = len(self.rejected)  # files whose launch was refused for good
        return data

    def note_waiting(self, members: Iterable[Member], now: datetime) -> None:
        """Count members still waiting towards their dataset's longest wait."""
        for member in members:
            waited = (now - member.queued_at).total_seconds()
            self.unsettled[member.dataset] = max(self.unsettled.get(member.dataset, 0.0), waited)


def flush_batches(
    client: storage.Client,
    settings: Settings,
    *,
    group: str | None = None,
    now: datetime | None = None,
    force: bool = False,
    inline: bool = False,
    launcher: launch.Launcher | None = None,
) -> FlushReport:
    """Finish the open batches, then form and launch the batches due now (of ``group``, or of
    every group); ``force``: partial batches too. ``inline`` (``on_upload``, after queueing a
    file): full batches only, no resuming, and a batch another delivery is forming is left
    to it."""
    now = now or datetime.now(UTC)
    flush = _Flush(client, settings, launcher, now, inline)
    for name in [group] if group else list_groups(client, settings):
        try:
            flush.group(name, force=force)
        except Exception as exc:  # one group's fault must not stop the others' flush
            if inline:
                raise
            flush.report.failed += 1
            LOG.error("flush of batch group %s failed: %s", name, exc, exc_info=True)
    report = flush.report
    if report.batches or report.waiting or report.failed:
        log_event(LOG, logging.INFO, f"flushed batches: {report.as_dict()}", **report.as_dict())
    return report


class _Flush:
    """One flush: its clock, its launcher (made on first launch) and its report."""

    def __init__(
        self,
        client: storage.Client,
        settings: Settings,
        launcher: launch.Launcher | None,
        now: datetime,
        inline: bool,
    ) -> None:
        self.client = client
        self.settings = settings
        self._launcher = launcher
        self.now = now
        self.inline = inline
        self.budget_spent = False
        self.report = FlushReport()

    def group(self, name: str, *, force: bool) -> None:
        """Finish the group's open batches (not inline), then form and finish those due."""
        opened: set[str] = set()
        if not self.inline:
            for record in list_open(self.client, self.settings, name):
                opened.update(member["event_key"] for member in record["candidates"])
                self.finish(record)
        # A file in an open batch still waiting for a job slot is that batch's, not due again.
        queue = [
            m for m in list_queue(self.client, self.settings, name) if m.event_key not in opened
        ]
        due = plan_batches(queue, self.settings, self.now, force=force, full_only=self.inline)
        for members in due:
            self.form(name, members)
        in_due = {member.event_key for batch in due for member in batch}
        left = [member for member in queue if member.event_key not in in_due]
        self.report.queued += len(left)
        self.report.note_waiting(left, self.now)

    def form(self, group: str, members: list[Member]) -> None:
        """Create the open record of a due batch and finish it."""
        ident = batch_id(members)
        record = {
            "batch_id": ident,
            "group": group,
            "dataset": members[0].dataset,
            "test": members[0].test,
            "job_name": batch_job_name(members[0].dataset, ident),
            "created_at": self.now.isoformat(),
            "candidates": [member.to_dict() for member in members],
        }
        blob = self._blob(open_name(group, ident))
        if not write_once(blob, dumps(record), f"opening batch {ident}") and self.inline:
            return  # another delivery is forming this very batch
        self.finish(record)

    def finish(self, record: dict[str, Any]) -> None:
        """Steps 2-6 for one open batch; each may have been done before a crash."""
        candidates = [Member.from_dict(data) for data in record["candidates"]]
        if self.budget_spent:
            self._still_waiting(candidates)
            return
        try:
            members = self._join(record, candidates)
            self._delete_markers(candidates)
            if members:
                self._launch(record, members)
            else:
                self._delete_open(record)
        except launch.JobBudgetSpent as exc:
            self.budget_spent = True
            LOG.warning("batch %s waits for a job slot: %s", record["batch_id"], exc)
            self._still_waiting(candidates)
        except Exception as exc:  # one batch's fault must not stop the others' flush
            self.report.failed += 1
            self.report.note_waiting(candidates, self.now)
            LOG.error("flush of batch %s failed: %s", record["batch_id"], exc, exc_info=True)
            if self.inline:
                raise

    def _join(self, record: dict[str, Any], candidates: list[Member]) -> list[Member]:
        """Move each candidate's claim into this batch; the files its job loads, or none
        when nothing is left to launch (every file launched, settled or in another batch)."""
        ident = record["batch_id"]
        name = manifest_name(record["group"], ident)
        if self._blob(name).exists():
            # Sealed before a crash: the manifest is the job's, whatever the claims say now.
            stored = read_manifest(gs_uri(self.settings.pipeline_bucket, name), self.settings)
            members = [Member.from_dict(data) for data in stored["members"]]
            return members if any([self._join_one(m, ident) for m in members]) else []
        joined = [m for m in candidates if self._join_one(m, ident)]
        if len(joined) < 2:
            return joined  # none, or one: the file's own job
        manifest = {key: record[key] for key in ("batch_id", "dataset", "test", "job_name")}
        manifest["members"] = [member.to_dict() for member in joined]
        if not write_once(self._blob(name), dumps(manifest), f"sealing batch {ident}"):
            return self._join(record, candidates)  # another flush sealed it this instant
        return joined

    def _join_one(self, member: Member, ident: str) -> bool:
        """Whether the file is in this batch and still to be launched (``batched`` with this
        batch), moving its claim in when it is in none; launched or settled: False."""
        for _ in range(SWAP_ATTEMPTS):
            claim = read_claim(self.client, self.settings, member.event_key)
            if claim is None:
                LOG.error(
                    "queued file %s has no claim; left out of batch %s", member.event_key, ident
                )
                return False
            if claim.batch == ident:
                # Launched (by this batch, or by the sweep on its own) or loaded already.
                return claim.state == BATCHED
            if claim.batch is not None or claim.state not in (CLAIMED, BATCHED):
                return False  # in another batch, launched on its own, or settled
            moved = swap_claim(
                self.client, self.settings, claim, state=BATCHED, batch=ident,
                updated_at=self.now,
            )  # fmt: skip
            if moved is not None:
                return True
        raise ClaimStateError(
            f"claim {member.event_key}: expected to join batch {ident}, found contention"
        )

    def _launch(self, record: dict[str, Any], members: list[Member]) -> None:
        ident, job_name = record["batch_id"], record["job_name"]
        uri = gs_uri(self.settings.pipeline_bucket, manifest_name(record["group"], ident))
        if len(members) == 1:
            # A batch of one is the file's own job, as if batching were off (1 file a batch).
            one = members[0]
            request = launch.request_for_event(
                one.dataset, one.bucket, one.name, one.generation, one.event_key,
                started_at=one.queued_at, split_index=one.split_index,
            )  # fmt: skip
            job_name = request.job_name
        else:
            request = launch.LaunchRequest.for_batch(
                record["dataset"], uri, job_name=job_name, test=record["test"],
                started_at=self.now,
            )  # fmt: skip
        try:
            result = self.launcher.launch(request)
        except PermanentError as exc:
            self._reject(record, request, members, f"launch refused: {exc}")
            return
        runner_job_id = result.runner_job_id or result.job_name
        for member in members:
            try:
                set_claim_state(
                    self.client, self.settings, member.event_key, LAUNCHED,
                    runner_job_id=runner_job_id, job_name=job_name,
                )  # fmt: skip
            except ClaimStateError:
                current = read_claim(self.client, self.settings, member.event_key)
                if current is None or current.state not in SETTLED_STATES:
                    raise
            self.report.launched[member.event_key] = runner_job_id
        self._delete_open(record)
        self.report.batches += 1
        self.report.files += len(members)
        verb = "is already running" if result.already_running else "launched"
        log_event(
            LOG, logging.INFO, f"batch job {job_name} {verb}: {len(members)} files",
            outcome=LAUNCHED, runner_job_id=runner_job_id, batch=ident,
        )  # fmt: skip

    def _reject(
        self,
        record: dict[str, Any],
        request: launch.LaunchRequest,
        members: list[Member],
        reason: str,
    ) -> None:
        """A launch refused for good: each file is recorded rejected (it stays in landing)."""
        from sluice.ingest.quarantine import record_rejected_source

        contract = load_contract_set(self.settings.contracts_dir).contract(record["dataset"])
        dataset = request.warehouse_dataset(self.settings)
        log_settings = replace(self.settings, warehouse_dataset=dataset)
        for member in members:
            claim = read_claim(self.client, self.settings, member.event_key)
            if claim is None or claim.state in SETTLED_STATES:
                continue  # loaded (or rejected) already: its log row stays
            source = SourceRef(gs_uri(member.bucket, member.name), member.generation)
            record_rejected_source(
                contract, source, reason, self.now, log_settings, job_name=request.job_name
            )
            set_claim_state(self.client, self.settings, member.event_key, REJECTED, reason=reason)
            self.report.rejected[member.event_key] = reason
        self._delete_open(record)
        LOG.error("batch %s: %s", record["batch_id"], reason)

    def _still_waiting(self, candidates: list[Member]) -> None:
        self.report.waiting += 1
        self.report.note_waiting(candidates, self.now)

    def _delete_markers(self, members: list[Member]) -> None:
        for member in members:
            delete_if_there(
                self._blob(marker_name(member)), f"removing queue marker of {member.event_key}"
            )

    def _delete_open(self, record: dict[str, Any]) -> None:
        blob = self._blob(open_name(record["group"], record["batch_id"]))
        delete_if_there(blob, f"closing batch {record['batch_id']}")

    @property
    def launcher(self) -> launch.Launcher:
        if self._launcher is None:
            self._launcher = launch.launcher_from_settings(self.settings)
        return self._launcher

    def _blob(self, name: str) -> storage.Blob:
        return self.client.bucket(self.settings.pipeline_bucket).blob(name)
