"""Where batches live: the objects of the batch queue and of batches in the pipeline bucket.

::

    batches/<group>/queue/<hash of event key>  one per queued file; the member in metadata
    batches/<group>/open/<batch id>.json       a batch being formed or waiting to launch
    batches/<group>/<batch id>.json            the sealed manifest: the files its job loads

Each is its own object, written once or twice: Cloud Storage allows about one write a second
to one object name, so a burst of files never contends on a shared one. Writes that must
happen once (a marker, an open record, a manifest) are creations with
``if_generation_match=0``; ``write_once`` says whether this call created the object. Queueing
a file (``queue_file``, for ``on_upload``) is here; what is due and launched is the flush's
(``sluice.ingest.batches``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sluice.errors import PermanentError
from sluice.gcs import gcs_faults, read_small
from sluice.ingest.batch_plan import Member
from sluice.ingest.claims import (
    BATCHED,
    CLAIMED,
    Claim,
    ClaimStateError,
    read_claim,
    swap_claim,
)
from sluice.settings import Settings

if TYPE_CHECKING:
    from google.cloud import storage

LOG = logging.getLogger(__name__)

BATCHES_PREFIX = "batches/"
MEMBER_METADATA = "member"
"""Custom metadata key of a queue marker: its member as JSON, so one listing reads a queue."""
SWAP_ATTEMPTS = 4


def queue_file(client: storage.Client, settings: Settings, claim: Claim, member: Member) -> None:
    """Queue an accepted file for its batch and move its claim to ``batched``.

    The marker first: a crash between the two leaves a ``claimed`` claim with a marker, which
    a flush takes as it is, or the lease hands to a redelivery that queues it again."""
    blob = client.bucket(settings.pipeline_bucket).blob(marker_name(member))
    blob.metadata = {MEMBER_METADATA: dumps(member.to_dict())}
    write_once(blob, b"", f"queueing {member.event_key}")  # or an earlier attempt did
    for _ in range(SWAP_ATTEMPTS):
        current = read_claim(client, settings, claim.event_key) or claim
        if current.state != CLAIMED:
            return  # a flush has taken it into a batch already
        if swap_claim(client, settings, current, state=BATCHED, updated_at=datetime.now(UTC)):
            return
    raise ClaimStateError(f"claim {claim.event_key}: expected to move to batched, found contention")


def write_once(blob: storage.Blob, data: str | bytes, action: str) -> bool:
    """Create ``blob`` with ``data`` unless it exists; whether this call created it."""
    from google.api_core.exceptions import PreconditionFailed

    try:
        with gcs_faults(action):
            blob.upload_from_string(data, if_generation_match=0)
    except PreconditionFailed:
        return False
    return True


def delete_if_there(blob: storage.Blob, action: str) -> None:
    """Delete ``blob``; one already gone (an earlier attempt removed it) is fine."""
    from google.api_core.exceptions import NotFound

    try:
        with gcs_faults(action):
            blob.delete()
    except NotFound:
        pass


def list_groups(client: storage.Client, settings: Settings) -> list[str]:
    """Every batch group with anything stored."""
    with gcs_faults("listing batch groups"):
        pages = client.list_blobs(settings.pipeline_bucket, prefix=BATCHES_PREFIX, delimiter="/")
        list(pages)  # the prefixes are known once the pages are read
    return sorted(p.removeprefix(BATCHES_PREFIX).rstrip("/") for p in pages.prefixes)


def list_queue(client: storage.Client, settings: Settings, group: str) -> list[Member]:
    """The group's queued files, from one listing of their markers."""
    prefix = f"{group_prefix(group)}queue/"
    fields = "items(name,metadata),nextPageToken"
    with gcs_faults(f"listing the batch queue {prefix}"):
        blobs = list(client.list_blobs(settings.pipeline_bucket, prefix=prefix, fields=fields))
    members = []
    for blob in blobs:
        stored = (blob.metadata or {}).get(MEMBER_METADATA)
        if stored is None:
            LOG.error("queue marker %s has no member metadata; ignored", blob.name)
            continue
        members.append(Member.from_dict(json.loads(stored)))
    return members


def list_open(client: storage.Client, settings: Settings, group: str) -> list[dict[str, Any]]:
    """The group's open batches, oldest first."""
    prefix = f"{group_prefix(group)}open/"
    with gcs_faults(f"listing open batches {prefix}"):
        blobs = list(client.list_blobs(settings.pipeline_bucket, prefix=prefix))
        records = [json.loads(blob.download_as_bytes()) for blob in blobs]
    return sorted(records, key=lambda record: record["created_at"])


def read_manifest(uri: str, settings: Settings) -> dict[str, Any]:
    """A sealed batch manifest (``gs://`` URI or local path): ``batch_id``, ``dataset``,
    ``test``, ``job_name`` and ``members`` (``Member`` in its stored form)."""
    manifest = json.loads(read_small(uri, settings))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), list):
        raise PermanentError(
            f"{uri}: expected a batch manifest with members, found {manifest!r:.200}"
        )
    return manifest


def marker_name(member: Member) -> str:
    """The object name of a queued file's marker: one per event key, so a redelivery that
    queues the file again finds it there (the queue is ordered by ``queued_at``, in it)."""
    digest = hashlib.sha256(member.event_key.encode()).hexdigest()[:40]
    return f"{group_prefix(member.group)}queue/{digest}"


def open_name(group: str, ident: str) -> str:
    """The object name of batch ``ident``'s open record."""
    return f"{group_prefix(group)}open/{ident}.json"


def manifest_name(group: str, ident: str) -> str:
    """The object name of batch ``ident``'s sealed manifest."""
    return f"{group_prefix(group)}{ident}.json"


def group_prefix(group: str) -> str:
    """Where a batch group's objects are."""
    return f"{BATCHES_PREFIX}{group}/"


def dumps(data: object) -> str:
    """The one JSON encoding of batch objects (sorted keys: equal content, equal bytes)."""
    return json.dumps(data, sort_keys=True)
