"""``on_upload``'s logic: one finalized landing object in, one claimed outcome out.

``handle_storage_event`` filters: only ``google.cloud.storage.object.v1.finalized`` events
for objects in the landing bucket (never the pipeline bucket: what we write cannot trigger
us), under a known contract's landing prefix, not folder placeholders, younger than
``settings.max_event_age_seconds``. Anything else is logged once and acknowledged.

``handle_object`` claims the event key (``sluice.ingest.claims``), streams exactly that generation
through ``validate_stream`` and either quarantines the file (``sluice.ingest.quarantine``),
loads it right here when it is small (at most ``settings.fast_lane_max_bytes`` decompressed:
``sluice.ingest.fast_lane``, the pipeline's own parse and load) or queues it for a batch job
(``sluice.ingest.batches``), after storing the split points validation found
(``sluice.records.splits``) beside the claim so the pipeline parses the file in parallel. A
queued file's claim is ``batched`` and its event acknowledged; when its batch is full the
batch is launched here at once, else the scheduled ``flush`` launches it when it is due.
Failures split as DESIGN.md decision 9 says:

- the file's fault or a vanished generation: logged, recorded as ``rejected`` (claim and
  ingestion log) and acknowledged: a retry cannot help;
- anything else before the file is queued (GCS 5xx/429, a held DuckDB lock,
  ``TransientError``): our claim is released and the error raised, so the platform
  redelivers and the redelivery claims afresh. If the process dies instead, the claim stays
  ``claimed``; redeliveries get ``ClaimInProgress`` (HTTP 503 from ``main.on_upload``: retry
  later) until the lease runs out, then one takes it over (or a flush takes the queued file
  into its batch).

A test-marked object (a ``_test`` path segment, ``sluice.testmark``) takes the same path, but
its batch, its load and its rejection row target ``settings.test_warehouse_dataset``.

Launching, Dataflow's job budget and the launch's own failures are the flush's
(``sluice.ingest.batches``): once queued, a file is never released back to the platform.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sluice.contracts import BrokenContract, Contract, contract_for_object, load_contract_set
from sluice.errors import TransientError
from sluice.gcs import gcs_faults, gs_uri, open_object, storage_client
from sluice.ingest import launch
from sluice.ingest.batch_plan import Member
from sluice.ingest.batch_store import queue_file
from sluice.ingest.batches import flush_batches
from sluice.ingest.chunk_staging import ChunkStager
from sluice.ingest.claims import (
    BATCHED,
    LAUNCHED,
    REJECTED,
    Claim,
    ClaimInProgress,
    claim_event,
    event_key,
    release_claim,
    set_claim_state,
    split_index_name,
)
from sluice.ingest.fast_lane import early_stager, load_in_function, takes_fast_lane
from sluice.ingest.quarantine import quarantine_details, quarantine_object, record_rejected_source
from sluice.ingest.validation import ValidationReport, validate_stream
from sluice.logs import event_labels, log_event
from sluice.schema import SourceRef
from sluice.settings import Settings
from sluice.testmark import is_test_object

if TYPE_CHECKING:
    from google.cloud import storage

LOG = logging.getLogger(__name__)

FINALIZED = "google.cloud.storage.object.v1.finalized"
VANISHED = "object generation no longer exists"
_FRACTION = re.compile(r"(\.\d{6})\d+")  # RFC 3339 allows nanoseconds; datetime holds micro


@dataclass(frozen=True)
class UploadOutcome:
    """What ``on_upload`` did with one event."""

    status: str
    """``ignored``, ``duplicate``, ``rejected``, ``batched`` (queued for a batch job) or
    ``launched`` (its batch filled and was launched); a file loaded in the function (the fast
    lane): ``loaded``, ``rejected`` or ``superseded``."""
    bucket: str
    name: str
    generation: int | None
    event_key: str | None = None
    dataset: str | None = None
    runner_job_id: str | None = None
    reason: str | None = None
    """Why it was ignored or rejected."""
    quarantine_uri: str | None = None


def handle_storage_event(
    event_type: str, data: Mapping[str, Any], *, settings: Settings, event_time: str | None = None
) -> UploadOutcome:
    """Filter one storage CloudEvent (type, payload, ``time``) and handle a wanted object."""
    bucket, name = str(data.get("bucket", "")), str(data.get("name", ""))
    if event_type != FINALIZED:
        return _ignored(bucket, name, None, f"expected event type {FINALIZED}, found {event_type}")
    try:
        generation = int(data["generation"])
    except (KeyError, TypeError, ValueError):
        found = data.get("generation")
        return _ignored(bucket, name, None, f"expected an integer generation, found {found!r}")
    return handle_object(
        bucket, name, generation, settings=settings, event_time=parse_event_time(event_time)
    )


def handle_object(
    bucket: str,
    name: str,
    generation: int,
    *,
    settings: Settings,
    event_time: datetime | None = None,
    replay: str | None = None,
) -> UploadOutcome:
    """Claim, validate and quarantine or launch one landing object generation."""
    contract_set = load_contract_set(settings.contracts_dir)
    contracts = contract_set.contracts
    # A broken contract's prefix is still ours: its files are quarantined, not ignored.
    prefixes = list(contract_set.datasets_by_prefix())
    reason = ignore_reason(bucket, name, event_time, settings, prefixes)
    if reason:
        return _ignored(bucket, name, generation, reason)
    broken = contract_set.broken_for_object(name)
    if broken is not None:
        # Its dataset alone is out of service: every other dataset's files go on.
        return _quarantine_for_broken_contract(bucket, name, generation, broken, settings)
    contract = contract_for_object(name, contracts)
    assert contract is not None  # ignore_reason has checked it
    key = event_key(bucket, name, generation, replay)
    # Every log line of a test-marked object says so (``test=True``), beside its dataset.
    with event_labels(event_key=key, dataset=contract.name, test=is_test_object(name) or None):
        # Each delivery's start, so a trace shows how long the event took to arrive.
        log_event(
            LOG, logging.INFO, f"handling {gs_uri(bucket, name)}#{generation}", stage="received"
        )
        client = storage_client(settings)
        try:
            claim = claim_event(
                client, settings, key, bucket=bucket, name=name, generation=generation,
                dataset=contract.name,
            )  # fmt: skip
        except ClaimInProgress as exc:
            log_event(LOG, logging.WARNING, str(exc), outcome="in_progress")
            raise
        if claim is None:
            log_event(
                LOG, logging.INFO, f"duplicate event {key}: already handled", outcome="duplicate"
            )
            return UploadOutcome("duplicate", bucket, name, generation, key, contract.name)
        return _Ingest(client, settings, contract, claim, replay).run()


def _quarantine_for_broken_contract(
    bucket: str, name: str, generation: int, broken: BrokenContract, settings: Settings
) -> UploadOutcome:
    """Acknowledge a file whose dataset's contract is broken: a redelivery cannot help until
    a person fixes the file, so it is quarantined (``sluice replay`` re-ingests it after the
    fix) with a reason naming the broken contract file, and logged at ERROR."""
    from google.api_core.exceptions import NotFound

    reason = f"contract {broken.path.name} is broken: {broken}"
    with event_labels(dataset=broken.dataset):
        details = {
            "accepted": False,
            "reason": reason,
            "dataset": broken.dataset,
            "contract_file": str(broken.path),
            "bucket": bucket,
            "object": name,
            "generation": generation,
            "source_uri": gs_uri(bucket, name),
            "time": datetime.now(UTC).isoformat(),
        }
        try:
            quarantined: str | None = quarantine_object(
                storage_client(settings), settings, bucket, name, generation, details
            )
        except NotFound:
            quarantined, reason = None, f"{VANISHED}; {reason}"
        message = f"rejected {gs_uri(bucket, name)}: {reason}"
        log_event(
            LOG, logging.ERROR, message, outcome=REJECTED, reason=reason, quarantine=quarantined
        )
    return UploadOutcome(
        REJECTED,
        bucket,
        name,
        generation,
        dataset=broken.dataset,
        reason=reason,
        quarantine_uri=quarantined,
    )


def ignore_reason(
    bucket: str,
    name: str,
    event_time: datetime | None,
    settings: Settings,
    landing_prefixes: Sequence[str],
) -> str | None:
    """Why the object is not ours to ingest (not under one of ``landing_prefixes``, ...), or
    None when it is."""
    if bucket == settings.pipeline_bucket:  # first, so even a misconfiguration cannot loop
        return f"expected bucket {settings.landing_bucket}, found the pipeline bucket {bucket}"
    if bucket != settings.landing_bucket:
        return f"expected bucket {settings.landing_bucket}, found {bucket}"
    if not name or name.endswith("/"):
        return f"expected an object, found a folder placeholder {name!r}"
    if not any(name.startswith(prefix) for prefix in landing_prefixes):
        prefixes = ", ".join(sorted(landing_prefixes))
        return f"expected an object under a dataset prefix ({prefixes}), found {name}"
    if event_time is not None:
        age = datetime.now(UTC) - event_time
        if age > timedelta(seconds=settings.max_event_age_seconds):
            return (
                f"expected an event at most {settings.max_event_age_seconds} s old, "
                f"found one {age.total_seconds():.0f} s old"
            )
    return None


def parse_event_time(text: str | None) -> datetime | None:
    """A CloudEvent ``time`` (RFC 3339) as an aware datetime; None when absent or unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    except ValueError:
        LOG.warning("event time %r is not RFC 3339; the event's age is not checked", text)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Ingest:
    """One claimed event, from validation to its recorded outcome."""

    def __init__(
        self,
        client: storage.Client,
        settings: Settings,
        contract: Contract,
        claim: Claim,
        replay: str | None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.contract = contract
        self.claim = claim
        self.source = SourceRef(gs_uri(claim.bucket, claim.name), claim.generation)
        self.request = launch.LaunchRequest.for_object(
            contract.name, self.source, event_key=claim.event_key, replay=replay,
            test=is_test_object(claim.name),
        )  # fmt: skip

    def run(self) -> UploadOutcome:
        """Validate, then reject, load or queue; release the claim when a retry must redo it."""
        # The fast lane's parse runs while validation reads: a small file is read once.
        stager = None
        if self.settings.fast_lane_max_bytes > 0:
            stager = early_stager(self.request, self.contract, self.settings)
        try:
            report = self._validate(stager)
            if report and report.accepted and takes_fast_lane(report.bytes_read, self.settings):
                return self._load_here(report, stager)
            if stager is not None:
                stager.discard()
            if report is None:
                return self._reject(VANISHED)
            if not report.accepted:
                return self._reject(report.reason or "rejected by validation", report)
            member = Member(
                self.claim.event_key, self.contract.name, self.claim.bucket, self.claim.name,
                self.claim.generation, report.bytes_read, datetime.now(UTC),
                test=self.request.test, split_index=self._store_split_index(report),
            )  # fmt: skip
            queue_file(self.client, self.settings, self.claim, member)
        except Exception:
            if stager is not None:
                stager.stop()  # what it staged is litter that the retry's load removes
            self._release()
            raise
        log_event(
            LOG, logging.INFO, f"queued {self.source.uri} for a batch job ({member.group})",
            outcome=BATCHED,
        )  # fmt: skip
        return self._flush_if_full(member)

    def _flush_if_full(self, member: Member) -> UploadOutcome:
        """Launch the file's batch now if it is full; else the scheduled ``flush`` will.

        The file is safely queued either way, so a failure here is logged, not raised: the
        next flush resumes what this one began."""
        try:
            flushed = flush_batches(self.client, self.settings, group=member.group, inline=True)
        except Exception as exc:  # queued: the scheduled flush resumes it
            LOG.warning("flush after queueing %s failed: %s", member.event_key, exc, exc_info=True)
            return self._outcome(BATCHED)
        key = member.event_key
        if key in flushed.rejected:
            return self._outcome(REJECTED, reason=flushed.rejected[key])
        if key in flushed.launched:
            return self._outcome(LAUNCHED, runner_job_id=flushed.launched[key])
        return self._outcome(BATCHED)

    def _load_here(self, report: ValidationReport, stager: ChunkStager | None) -> UploadOutcome:
        """The fast lane: load the file in this function (parsed as validation read it, by
        ``stager``), settle its claim."""
        limit = self.settings.fast_lane_max_bytes
        log_event(
            LOG, logging.INFO,
            f"loading {self.source.uri} here: {report.bytes_read} bytes, at most {limit}",
            stage="fast_lane",
        )  # fmt: skip
        record = load_in_function(
            self.request, self.contract, self.settings, takeover=self.claim.attempt > 1,
            stager=stager,
        )  # fmt: skip
        counts = f"{record.rows_loaded} rows, {record.rows_dead} dead"
        log_event(
            LOG, logging.INFO, f"{record.status} {self.source.uri}: {counts}",
            outcome=record.status, rows_loaded=record.rows_loaded, rows_dead=record.rows_dead,
        )  # fmt: skip
        return self._outcome(record.status, reason=record.reason)

    def _validate(self, stager: ChunkStager | None) -> ValidationReport | None:
        """The validation report of exactly this generation; None when it no longer exists.
        Each chunk of records it checks goes to ``stager`` too."""
        from google.api_core.exceptions import NotFound

        claim, settings = self.claim, self.settings
        try:
            with gcs_faults(f"reading {self.source.uri}#{claim.generation}"):
                reader = open_object(
                    self.client, claim.bucket, claim.name, claim.generation,
                    chunk_bytes=settings.chunk_bytes,
                )  # fmt: skip
                with reader:
                    on_records = stager.submit if stager is not None else None
                    report = validate_stream(reader, self.contract, settings, on_records=on_records)
        except NotFound:
            return None
        verdict = "accepted" if report.accepted else "rejected"
        log_event(
            LOG, logging.INFO, f"validated {self.source.uri}: {verdict}, {report.records} records",
            stage="validated", records=report.records, bytes_read=report.bytes_read,
        )  # fmt: skip
        return report

    def _store_split_index(self, report: ValidationReport) -> str | None:
        """Keep the file's split points beside its claim, for the pipeline; their URI."""
        index = report.split_index(self.source)
        if index is None:
            return None
        bucket, name = self.settings.pipeline_bucket, split_index_name(self.claim.event_key)
        with gcs_faults(f"writing the split index of {self.source.uri}"):
            blob = self.client.bucket(bucket).blob(name)
            blob.upload_from_string(index.to_json(), content_type="application/json")
        return gs_uri(bucket, name)

    def _reject(
        self, reason: str, report: ValidationReport | None = None, *, quarantine: bool = True
    ) -> UploadOutcome:
        """Quarantine (when the bytes still exist), record, mark the claim rejected."""
        from google.api_core.exceptions import NotFound

        quarantined = None
        if quarantine and reason != VANISHED:
            try:
                quarantined = self._quarantine(reason, report)
            except NotFound:
                reason = VANISHED  # replaced or deleted between reading and copying
        request = self.request
        # A test file's rejection goes to the test dataset's ingestion_log, as its load would.
        log_settings = replace(
            self.settings, warehouse_dataset=request.warehouse_dataset(self.settings)
        )
        record_rejected_source(
            self.contract, self.source, reason, request.started_at, log_settings,
            job_name=request.job_name,
        )  # fmt: skip
        set_claim_state(self.client, self.settings, self.claim.event_key, REJECTED, reason=reason)
        message = f"rejected {self.source.uri}: {reason}"
        log_event(
            LOG, logging.WARNING, message, outcome=REJECTED, reason=reason, quarantine=quarantined
        )
        return self._outcome(REJECTED, reason=reason, quarantine_uri=quarantined)

    def _quarantine(self, reason: str, report: ValidationReport | None) -> str:
        claim = self.claim
        details = quarantine_details(reason, report, self.contract, claim.event_key, self.source)
        return quarantine_object(
            self.client, self.settings, claim.bucket, claim.name, claim.generation, details
        )

    def _release(self) -> None:
        """Give the claim back so the platform's redelivery can take it at once."""
        try:
            released = release_claim(self.client, self.settings, self.claim)
        except TransientError:
            released = False  # the lease will free it instead
        LOG.warning("retryable failure; claim released: %s", released, exc_info=True)

    def _outcome(
        self, status: str, runner_job_id: str | None = None, **fields: Any
    ) -> UploadOutcome:
        claim, dataset = self.claim, self.contract.name
        runner_job_id = runner_job_id or self.request.job_name
        return UploadOutcome(
            status,
            claim.bucket,
            claim.name,
            claim.generation,
            claim.event_key,
            dataset,
            runner_job_id,
            **fields,
        )


def _ignored(bucket: str, name: str, generation: int | None, reason: str) -> UploadOutcome:
    message = f"ignored gs://{bucket}/{name}: {reason}"
    log_event(LOG, logging.INFO, message, outcome="ignored", reason=reason)
    return UploadOutcome("ignored", bucket, name, generation, reason=reason)
