"""Files into the landing bucket and their outcomes back: ``sluice upload`` and ``sluice replay``.

An upload goes through the Cloud Storage API (fake-gcs-server's or Google's) to
``gs://<landing>/<contract.landing_prefix><file name>``; the bucket's finalize event does
the rest. Waiting polls the event's claim (``sluice.ingest.claims``) until the pipeline marks it
``loaded`` or ``rejected``, then reads the row counts from the ingestion log row of that
run's job. A replay calls ``on_upload``'s own logic with a new replay id, so the same
generation gets a fresh event key and is ingested again, its rows replaced.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from local.jobs import LocalJobs
from sluice.contracts import Contract, contract_for_object, load_contract_set
from sluice.errors import ConfigError, MissingTable
from sluice.gcs import gcs_faults, gs_uri, parse_gs_uri
from sluice.ingest.claims import (
    CLAIMED,
    LAUNCHED,
    SETTLED_STATES,
    ClaimInProgress,
    event_key,
    read_claim,
)
from sluice.ingest.door import UploadOutcome, handle_object
from sluice.ingest.launch import LaunchRequest
from sluice.schema import SourceRef
from sluice.settings import Settings
from sluice.warehouse import connected_warehouse

if TYPE_CHECKING:
    from google.cloud import storage

UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024
"""Resumable-upload chunk (a multiple of 256 KiB): the progress bar moves once per chunk."""
FAILED = "failed"
"""A local pipeline process that ended without settling its claim."""


@dataclass(frozen=True)
class LandedObject:
    """One object generation in the landing bucket, and the contract it falls under."""

    bucket: str
    name: str
    generation: int
    dataset: str
    replay: str | None = None

    @property
    def uri(self) -> str:
        """``gs://bucket/name``."""
        return gs_uri(self.bucket, self.name)

    @property
    def event_key(self) -> str:
        """The event key whose claim tells this object's fate."""
        return event_key(self.bucket, self.name, self.generation, self.replay)

    @property
    def job_name(self) -> str:
        """The pipeline's job name (and ingestion-log job id) for this object."""
        source = SourceRef(self.uri, self.generation)
        return LaunchRequest.for_object(self.dataset, source, replay=self.replay).job_name


@dataclass(frozen=True)
class LandingResult:
    """Where one landed object stands: its state and, once final, its row counts."""

    landed: LandedObject
    state: str
    """``uploaded`` (not waited for), a claim state (``waiting_for_quota``: accepted, its
    Dataflow job not started until a slot frees), ``failed``, or ``pending`` (no claim)."""
    rows_in: int | None = None
    rows_loaded: int | None = None
    rows_dead: int | None = None
    reason: str | None = None

    @property
    def final(self) -> bool:
        """True once nothing more will happen to the object without a new upload or replay."""
        return self.state in SETTLED_STATES or self.state == FAILED

    def as_row(self) -> dict[str, Any]:
        """The result as one output row."""
        return {
            "uri": self.landed.uri,
            "generation": str(self.landed.generation),  # as GCS's JSON API writes it
            "status": self.state,
            "rows_in": self.rows_in,
            "rows_loaded": self.rows_loaded,
            "rows_dead": self.rows_dead,
            "reason": self.reason,
        }


def landing_name(contract: Contract, path: Path) -> str:
    """The object name a local file gets: the dataset's landing prefix plus the file name."""
    return contract.landing_prefix + path.name


def upload_file(
    client: storage.Client,
    settings: Settings,
    path: Path,
    contract: Contract,
    progress: Callable[[int], None] | None = None,
) -> LandedObject:
    """Upload ``path`` to the landing bucket; ``progress`` gets the bytes sent so far."""
    if not path.is_file():
        raise ConfigError(f"expected a readable file, found nothing at {path}")
    blob = client.bucket(settings.landing_bucket).blob(
        landing_name(contract, path), chunk_size=UPLOAD_CHUNK_BYTES
    )
    content_type = "application/gzip" if path.name.endswith(".gz") else "text/csv"
    with path.open("rb") as raw, gcs_faults(f"uploading {path}"):
        stream = raw if progress is None else ProgressReader(raw, progress)
        blob.upload_from_file(stream, size=path.stat().st_size, content_type=content_type)
    return LandedObject(settings.landing_bucket, blob.name, int(blob.generation), contract.name)


class ProgressReader:
    """A binary file whose reads (and rewinds, on a retried chunk) report the position."""

    def __init__(self, raw: IO[bytes], report: Callable[[int], None]) -> None:
        self._raw = raw
        self._report = report

    def read(self, size: int = -1) -> bytes:
        """Read like the file does, then report how far it got."""
        data = self._raw.read(size)
        self._report(self._raw.tell())
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Seek like the file does, then report the position."""
        position = self._raw.seek(offset, whence)
        self._report(position)
        return position

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def replay_object(settings: Settings, uri: str) -> tuple[LandedObject, UploadOutcome]:
    """Re-ingest the current generation of ``uri`` under a new event key, as on_upload would."""
    from sluice.gcs import storage_client

    bucket, name = parse_gs_uri(uri)
    with gcs_faults(f"looking up {uri}"):
        blob = storage_client(settings).bucket(bucket).get_blob(name)
    if blob is None:
        raise ConfigError(f"expected an object at {uri}, found none")
    return _ingest(settings, bucket, name, int(blob.generation), uuid.uuid4().hex[:12])


def replay_prefix(
    settings: Settings,
    uri: str,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[LandedObject, UploadOutcome]]:
    """Backfill every object under the prefix ``uri``: each one its own event never
    ingested, through the same claim that event takes (a settled claim answers
    ``duplicate``: skipped), or with ``force`` every one again under a new event key (rows
    replaced). ``progress`` gets (objects done, objects listed) after each object."""
    from sluice.gcs import storage_client

    bucket, prefix = parse_gs_uri(uri)
    with gcs_faults(f"listing {uri}"):
        blobs = list(storage_client(settings).list_blobs(bucket, prefix=prefix))
    if not blobs:
        raise ConfigError(f"expected objects under {uri}, found none")
    contracts = load_contract_set(settings.contracts_dir).contracts
    done = []
    for blob in blobs:
        replay = uuid.uuid4().hex[:12] if force else None
        try:
            done.append(_ingest(settings, bucket, blob.name, int(blob.generation), replay))
        except ClaimInProgress as exc:  # a delivery holds it now: listed, and the rest go on
            contract = contract_for_object(blob.name, contracts)
            dataset = contract.name if contract else ""
            landed = LandedObject(bucket, blob.name, int(blob.generation), dataset, replay)
            held = UploadOutcome(CLAIMED, bucket, blob.name, landed.generation, reason=str(exc))
            done.append((landed, held))
        if progress is not None:
            progress(len(done), len(blobs))
    return done


def _ingest(
    settings: Settings, bucket: str, name: str, generation: int, replay: str | None
) -> tuple[LandedObject, UploadOutcome]:
    """One object generation through the door, as on_upload would (a replay id or none)."""
    outcome = handle_object(bucket, name, generation, settings=settings, replay=replay)
    return LandedObject(bucket, name, generation, outcome.dataset or "", replay), outcome


def wait_for_outcomes(
    client: storage.Client,
    settings: Settings,
    objects: Sequence[LandedObject],
    *,
    timeout: float,
    poll_seconds: float = 0.05,
) -> list[LandingResult]:
    """Poll each object's claim until all are final or ``timeout`` passes; the results."""
    deadline = time.monotonic() + timeout
    results = {landed: LandingResult(landed, "pending") for landed in objects}
    while True:
        for landed, result in results.items():
            if not result.final:
                results[landed] = current_result(client, settings, landed)
        if all(r.final for r in results.values()) or time.monotonic() > deadline:
            return list(results.values())
        time.sleep(poll_seconds)


def current_result(
    client: storage.Client, settings: Settings, landed: LandedObject
) -> LandingResult:
    """Where ``landed`` stands now: its claim state, with row counts once final."""
    claim = read_claim(client, settings, landed.event_key)
    if claim is None:
        return LandingResult(landed, "pending")
    job_name = claim.job_name or landed.job_name  # a batch's job, or the file's own
    if claim.state == LAUNCHED and not _job_running(settings, job_name):
        # The process may have settled the claim just before it exited: look once more.
        claim = read_claim(client, settings, landed.event_key) or claim
        if claim.state == LAUNCHED:
            log_file = LocalJobs(settings).log_file(job_name)
            reason = f"the pipeline ended without loading; see {log_file}"
            return LandingResult(landed, FAILED, reason=reason)
    if claim.state not in SETTLED_STATES:
        # Why it is not done yet, when the claim says (``waiting_for_quota``: which budget).
        return LandingResult(landed, claim.state, reason=claim.reason)
    result = LandingResult(landed, claim.state, reason=claim.reason)
    return _with_log_counts(settings, result, job_name)


def _job_running(settings: Settings, job_name: str) -> bool:
    if settings.launcher != "local":
        return True  # a Dataflow job's end shows only in the claim
    return LocalJobs(settings).running_pid(job_name) is not None


def _with_log_counts(settings: Settings, result: LandingResult, job_name: str) -> LandingResult:
    landed = result.landed
    try:
        with connected_warehouse(settings) as warehouse:
            record = warehouse.latest_ingestion(
                SourceRef(landed.uri, landed.generation), job_name=job_name
            )
    except MissingTable:
        return result  # no ingestion log yet: a rejection recorded only in its claim
    if record is None:
        return result
    return LandingResult(
        landed,
        result.state,
        rows_in=record.rows_in,
        rows_loaded=record.rows_loaded,
        rows_dead=record.rows_dead,
        reason=record.reason or result.reason,
    )
