"""What Eventarc delivers for a Cloud Storage event, built from fake-gcs-server's message.

fake-gcs-server publishes one Pub/Sub message per object event: attributes ``eventType``
(``OBJECT_FINALIZE``), ``bucketId``, ``objectId``, ``objectGeneration``, ``eventTime``
(whole seconds), ``payloadFormat`` (``JSON_API_V1``), and the object resource as JSON data
(kind, id, name, bucket, generation, contentType, timeCreated, updated, storageClass, size,
md5Hash, crc32c; no metageneration). Eventarc turns the same event into a binary-mode
CloudEvent: ``ce-*`` headers and the object resource as the JSON body, numbers as strings.
The cloudevents SDK builds the event and its binary-mode headers and body (``to_binary``);
it leaves the HTTP binding's percent-encoding of header values to the transport, so that
is done here (an object name may hold any Unicode character, a header value may not).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

log = logging.getLogger(__name__)

FINALIZED = "google.cloud.storage.object.v1.finalized"
"""The only trigger on_upload has, as Eventarc names it."""
TRIGGERS = {"OBJECT_FINALIZE": FINALIZED}
"""fake-gcs-server's ``eventType`` attribute -> the CloudEvent type delivered."""
# The CloudEvents HTTP binding: these and anything outside printable ASCII are %-encoded.
HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


@dataclass(frozen=True)
class StorageEvent:
    """One binary-mode CloudEvent ready to POST: its headers, its JSON body, its event key."""

    headers: dict[str, str]
    body: bytes
    event_key: str

    def to_json(self) -> dict[str, object]:
        """A JSON-able form for the spool file."""
        return {
            "headers": self.headers,
            "body": self.body.decode("utf-8"),
            "event_key": self.event_key,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> StorageEvent:
        """The inverse of ``to_json``."""
        return cls(
            dict(raw["headers"]),
            str(raw["body"]).encode("utf-8"),
            str(raw.get("event_key", raw.get("key"))),
        )


def header_value(text: str) -> str:
    """A CloudEvent attribute as an HTTP header value (percent-encoded per the HTTP binding)."""
    return quote(text, safe=HEADER_SAFE)


def storage_event(
    message_id: str, attributes: Mapping[str, str], data: bytes, received_at: datetime
) -> StorageEvent | None:
    """The CloudEvent Eventarc would deliver for one fake-gcs-server message; None: no trigger."""
    event_type = TRIGGERS.get(attributes.get("eventType", ""))
    if event_type is None:
        log.info(
            "dropped %s event for %s/%s: no trigger for it (only %s)",
            attributes.get("eventType") or "an untyped",
            attributes.get("bucketId", "?"),
            attributes.get("objectId", "?"),
            ", ".join(TRIGGERS),
        )
        return None
    try:
        resource = json.loads(data)
    except ValueError:
        resource = None
    if not isinstance(resource, dict):
        log.warning("dropped message %s: expected JSON object data, found %r", message_id, data)
        return None
    bucket = str(resource.get("bucket") or attributes.get("bucketId", ""))
    name = str(resource.get("name") or attributes.get("objectId", ""))
    generation = str(resource.get("generation") or attributes.get("objectGeneration", ""))
    if not (bucket and name and generation):
        log.warning("dropped message %s: expected bucket, name and generation", message_id)
        return None
    # Eventarc's StorageObjectData carries these as strings; a finalize is metageneration 1.
    resource.update(bucket=bucket, name=name, generation=generation)
    resource.setdefault("metageneration", "1")
    event_time = resource.get("updated") or attributes.get("eventTime") or received_at.isoformat()
    event = CloudEvent(
        {
            "specversion": "1.0",
            "id": message_id,
            "type": event_type,
            "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
            "subject": f"objects/{name}",
            "time": str(event_time),
            "bucket": bucket,
            "datacontenttype": "application/json; charset=utf-8",
        },
        resource,
    )
    headers, body = to_binary(event, data_marshaller=json_utf8)
    encoded = {k: header_value(v) if k.startswith("ce-") else v for k, v in headers.items()}
    return StorageEvent(encoded, body, f"{bucket}/{name}#{generation}")


def json_utf8(data: Any) -> bytes:
    """The event's data as the body: UTF-8 JSON, as Eventarc sends it."""
    return json.dumps(data, ensure_ascii=False).encode("utf-8")
