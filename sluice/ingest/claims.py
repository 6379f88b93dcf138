"""Exactly-once claims of storage events, kept as small JSON objects in the pipeline bucket.

The event key ``bucket/name#generation`` (plus ``/replay-<id>`` for a deliberate re-ingest)
names one claim object, ``claims/<sha256(key)[:40]>.json``. Creating it with
``if_generation_match=0`` lets exactly one of many duplicate deliveries win. Its state then
moves forward only::

    claimed -> batched | launched | waiting_for_quota | rejected | loaded | superseded
    batched -> launched | rejected | loaded | superseded
    waiting_for_quota -> launched | rejected | loaded
    launched -> loaded | rejected | waiting_for_quota

``loaded`` may follow ``claimed`` directly because a fast pipeline can finish before the
function records its launch. Every later write is a compare-and-swap on the claim object's
generation, so concurrent writers never lose an update. A ``claimed`` claim older than
``settings.claim_lease_seconds`` belongs to a delivery that crashed: the next delivery takes
it over, again by compare-and-swap, so only one taker wins. A younger ``claimed`` claim is in
progress elsewhere: ``claim_event`` raises ``ClaimInProgress`` (a ``TransientError``) so the
platform redelivers the event later, when the holder has finished or the lease has run out.
(Acknowledging it instead would lose the file whenever the holder crashes: its own
redelivery would be that duplicate.) A holder that fails with a retryable fault calls
``release_claim``, which ends its lease at once, so the redelivery need not wait.

``batched`` is settled for now too: the file was accepted for the pipeline and queued for a
batch (``sluice.ingest.batches``), its event acknowledged; ``batch`` names its batch once one
took it, and the batch's flush moves it to ``launched`` with the batch job's ``job_name``.

``waiting_for_quota`` is settled for now, not for good: the file was accepted but no
Dataflow job could start (``sluice.ingest.launch.JobBudgetSpent``), so its event was
acknowledged and the cook (``sluice.cook.waiting``) launches it, oldest first, as jobs end. A
dead pipeline's relaunch that finds the budget spent moves ``launched`` back to it.

A ``launched`` claim has no lease: its event was acknowledged. If its pipeline dies before
settling it, ``sluice.cook.sweep`` finds it (each claim object carries its state as metadata,
so a listing tells which to read), relaunches the job with ``swap_claim`` counting
``pipeline_attempts``, and after too many attempts marks it ``rejected``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sluice.errors import PermanentError, TransientError
from sluice.gcs import gcs_faults
from sluice.settings import Settings

if TYPE_CHECKING:
    from google.cloud import storage

LOG = logging.getLogger(__name__)

CLAIMS_PREFIX = "claims/"
CLAIMED, LAUNCHED, REJECTED, LOADED = "claimed", "launched", "rejected", "loaded"
SUPERSEDED = "superseded"
"""A load that found a newer generation (or, for a snapshot dataset, a newer snapshot) already
loaded: nothing to do, and nothing wrong."""
BATCHED = "batched"
"""Accepted for the pipeline, its event acknowledged, queued for (or in) a batch job."""
WAITING_FOR_QUOTA = "waiting_for_quota"
"""Accepted, its event acknowledged, its job not started: Dataflow's job budget was spent."""
SETTLED_STATES = frozenset({LOADED, REJECTED, SUPERSEDED})
"""The states a claim ends in: the file needs nothing more."""
NEXT_STATES: dict[str, frozenset[str]] = {
    CLAIMED: frozenset({BATCHED, LAUNCHED, WAITING_FOR_QUOTA, *SETTLED_STATES}),
    BATCHED: frozenset({BATCHED, LAUNCHED, *SETTLED_STATES}),
    # Re-marking the same state is allowed: a retried step repeats its write.
    LAUNCHED: frozenset({LAUNCHED, WAITING_FOR_QUOTA, *SETTLED_STATES}),
    WAITING_FOR_QUOTA: frozenset({WAITING_FOR_QUOTA, LAUNCHED, *SETTLED_STATES}),
    **{state: frozenset({state}) for state in SETTLED_STATES},
}
SETTABLE_FIELDS = frozenset({"runner_job_id", "reason", "job_name"})
RELEASED_AT = datetime(1970, 1, 1, tzinfo=UTC)
"""``updated_at`` of a released claim: stale for any lease."""
CAS_ATTEMPTS = 8
"""Compare-and-swap rounds before contention counts as a transient fault."""
STATE_METADATA = "state"
"""Custom metadata key holding a claim object's state (set on every write)."""


class ClaimStateError(PermanentError):
    """A claim cannot move to the requested state (or does not exist)."""


class ClaimInProgress(TransientError):
    """Another delivery holds the claim and its lease has not run out: retry later."""


@dataclass(frozen=True)
class Claim:
    """One event's claim, as stored in ``claims/<hash>.json``."""

    event_key: str
    state: str
    bucket: str
    name: str
    generation: int
    dataset: str
    updated_at: datetime
    runner_job_id: str | None = None
    """The runner's id of the job (Dataflow's job id, ``local-<pid>``); the job name when the
    launch found the job already running, and once the pipeline has settled the claim."""
    reason: str | None = None
    holder: str = ""
    """Random token of the delivery that took the claim (tells our own write from another's)."""
    attempt: int = 1
    """1, plus one for each takeover of a stale claim."""
    pipeline_attempts: int = 1
    """Pipeline runs started for this event: on_upload's launch, plus one per sweep relaunch."""
    batch: str | None = None
    """The batch (``sluice.ingest.batches``) the file joined, if it went in one."""
    job_name: str | None = None
    """The job that loads the file, when it is not the file's own (a batch's job)."""
    claim_generation: int | None = field(default=None, compare=False)
    """GCS generation of the claim object this was read from or written as (not stored)."""

    def to_json(self) -> bytes:
        """The stored form."""
        data = asdict(self)
        del data["claim_generation"]
        data["updated_at"] = self.updated_at.isoformat()
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes, claim_generation: int | None = None) -> Claim:
        """Rebuild a claim from its stored form."""
        stored: dict[str, Any] = json.loads(raw)
        stored.setdefault("event_key", stored.get("key"))  # claims written before the renames
        stored.setdefault("runner_job_id", stored.get("job_id"))
        known = {f.name for f in dataclass_fields(cls)} - {"claim_generation"}
        data = {k: v for k, v in stored.items() if k in known}  # newer writers may add fields
        data["updated_at"] = datetime.fromisoformat(data["updated_at"])
        return cls(**data, claim_generation=claim_generation)

    def is_stale(self, now: datetime, lease_seconds: int) -> bool:
        """Whether this is a ``claimed`` claim whose holder has had its lease and more."""
        return self.state == CLAIMED and now - self.updated_at > timedelta(seconds=lease_seconds)


def event_key(bucket: str, name: str, generation: int, replay: str | None = None) -> str:
    """``bucket/name#generation``, plus ``/replay-<id>`` for a deliberate re-ingest."""
    key = f"{bucket}/{name}#{generation}"
    return f"{key}/replay-{replay}" if replay else key


def claim_object_name(event_key: str) -> str:
    """The claim's object name: a hash, so no event_key can escape the ``claims/`` prefix."""
    return f"{CLAIMS_PREFIX}{hashlib.sha256(event_key.encode()).hexdigest()[:40]}.json"


def split_index_name(event_key: str) -> str:
    """Where the split index of the event's file is kept: beside its claim."""
    return claim_object_name(event_key).removesuffix(".json") + ".splits.json"


def claim_event(
    client: storage.Client,
    settings: Settings,
    event_key: str,
    *,
    bucket: str,
    name: str,
    generation: int,
    dataset: str,
    now: datetime | None = None,
) -> Claim | None:
    """Take the claim for ``event_key``: the new Claim, or None when the event is already settled.

    Raises ``ClaimInProgress`` while another delivery holds a ``claimed`` claim within its
    lease; takes over a stale one by compare-and-swap.
    """
    from google.api_core.exceptions import PreconditionFailed

    now = now or datetime.now(UTC)
    mine = Claim(
        event_key, CLAIMED, bucket, name, generation, dataset, now, holder=uuid.uuid4().hex
    )
    for _ in range(CAS_ATTEMPTS):
        try:
            return _write(client, settings, mine, if_generation_match=0)
        except PreconditionFailed:
            pass
        current = read_claim(client, settings, event_key)
        if current is None:
            continue  # deleted between our create and our read: create again
        if current.holder == mine.holder:
            return current  # our create succeeded; the client retried it after a lost reply
        if current.state != CLAIMED:
            return None
        if not current.is_stale(now, settings.claim_lease_seconds):
            expires = current.updated_at + timedelta(seconds=settings.claim_lease_seconds)
            raise ClaimInProgress(
                f"claim {event_key}: expected no other holder, found it claimed since "
                f"{current.updated_at.isoformat()} (lease until {expires.isoformat()}); retry later"
            )
        taken = replace(mine, attempt=current.attempt + 1)
        try:
            claim = _write(client, settings, taken, if_generation_match=current.claim_generation)
        except PreconditionFailed:
            continue  # another delivery changed it first: look again
        LOG.warning(
            "took over stale claim %s (claimed %s, attempt %d)",
            event_key, current.updated_at.isoformat(), claim.attempt,
        )  # fmt: skip
        return claim
    raise TransientError(
        f"claim {event_key}: expected to settle within {CAS_ATTEMPTS} tries, found contention"
    )


def set_claim_state(
    client: storage.Client, settings: Settings, event_key: str, state: str, **fields: Any
) -> Claim:
    """Move the claim to ``state`` (and set ``runner_job_id``/``reason``) by compare-and-swap."""
    from google.api_core.exceptions import PreconditionFailed

    unknown = set(fields) - SETTABLE_FIELDS
    if unknown:
        raise ClaimStateError(
            f"claim {event_key}: expected fields among {sorted(SETTABLE_FIELDS)},"
            f" found {sorted(unknown)}"
        )
    if state not in NEXT_STATES:
        raise ClaimStateError(
            f"claim {event_key}: expected a state in {list(NEXT_STATES)}, found {state!r}"
        )
    for _ in range(CAS_ATTEMPTS):
        current = read_claim(client, settings, event_key)
        if current is None:
            raise ClaimStateError(
                f"claim {event_key}: expected a claim to move to {state!r}, found none"
            )
        if state not in NEXT_STATES[current.state]:
            allowed = ", ".join(sorted(NEXT_STATES[current.state])) or "nothing"
            raise ClaimStateError(
                f"claim {event_key}: cannot move from {current.state!r} to {state!r}; "
                f"expected one of: {allowed}"
            )
        updated = replace(current, state=state, updated_at=datetime.now(UTC), **fields)
        try:
            return _write(client, settings, updated, if_generation_match=current.claim_generation)
        except PreconditionFailed:
            continue  # a concurrent writer won this round: re-read and re-check
    raise TransientError(
        f"claim {event_key}: expected to settle within {CAS_ATTEMPTS} tries, found contention"
    )


def read_claim(client: storage.Client, settings: Settings, event_key: str) -> Claim | None:
    """The stored claim for ``event_key``, or None when there is none."""
    return read_claim_object(client, settings, claim_object_name(event_key))


def read_claim_object(client: storage.Client, settings: Settings, name: str) -> Claim | None:
    """The claim stored as object ``name`` of the pipeline bucket, or None when there is none."""
    from google.api_core.exceptions import NotFound

    blob = client.bucket(settings.pipeline_bucket).blob(name)
    try:
        with gcs_faults(f"reading claim {name}"):
            raw = blob.download_as_bytes()
    except NotFound:
        return None
    # The download's response headers set blob.generation: the generation of these bytes.
    return Claim.from_json(raw, claim_generation=blob.generation)


def swap_claim(
    client: storage.Client, settings: Settings, read: Claim, **changes: Any
) -> Claim | None:
    """Write ``read`` with ``changes`` only if the stored claim is still the one read (its
    generation); None when another writer changed it first. Only forward state moves."""
    from google.api_core.exceptions import PreconditionFailed

    state = changes.get("state", read.state)
    if state not in NEXT_STATES[read.state]:
        raise ClaimStateError(
            f"claim {read.event_key}: cannot move from {read.state!r} to {state!r}; "
            f"expected one of: {', '.join(sorted(NEXT_STATES[read.state]))}"
        )
    try:
        return _write(
            client, settings, replace(read, **changes), if_generation_match=read.claim_generation
        )
    except PreconditionFailed:
        return None


def release_claim(client: storage.Client, settings: Settings, claim: Claim) -> bool:
    """End our lease early so a redelivery takes the claim at once; False if it changed.

    The claim stays ``claimed`` with an ``updated_at`` long past, which every taker sees as
    stale. A compare-and-swap overwrite, not a delete: fake-gcs-server ignores preconditions
    on delete, and a blind delete could drop a claim another delivery has taken since.
    """
    from google.api_core.exceptions import PreconditionFailed

    if claim.claim_generation is None or claim.state != CLAIMED:
        return False
    released = replace(claim, updated_at=RELEASED_AT, reason="released after a retryable failure")
    try:
        _write(client, settings, released, if_generation_match=claim.claim_generation)
    except PreconditionFailed:
        return False
    return True


def _claim_blob(client: storage.Client, settings: Settings, event_key: str) -> storage.Blob:
    return client.bucket(settings.pipeline_bucket).blob(claim_object_name(event_key))


def _write(
    client: storage.Client, settings: Settings, claim: Claim, *, if_generation_match: int | None
) -> Claim:
    """Store ``claim`` under the precondition; the claim with its new object generation."""
    if if_generation_match is None:
        raise ClaimStateError(
            f"claim {claim.event_key}: expected a generation to compare, found none"
        )
    blob = _claim_blob(client, settings, claim.event_key)
    # The state as metadata too: a listing then shows it, so a sweep reads only the few
    # claims that may be stuck instead of every claim kept.
    blob.metadata = {STATE_METADATA: claim.state}
    with gcs_faults(f"writing claim {claim.event_key}"):
        blob.upload_from_string(
            claim.to_json(),
            content_type="application/json",
            if_generation_match=if_generation_match,
        )
    return replace(claim, claim_generation=blob.generation)
