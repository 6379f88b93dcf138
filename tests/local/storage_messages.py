"""Pub/Sub messages shaped exactly like fake-gcs-server's, for the bridge and eventarc tests."""

from __future__ import annotations

import json


def finalize_message(name: str = "incoming/kiva_loans/a.csv", generation: str = "17") -> dict:
    """A message shaped exactly like fake-gcs-server's (captured from v1.54)."""
    resource = {
        "kind": "storage#object",
        "id": f"sluice-landing/{name}#{generation}",
        "name": name,
        "bucket": "sluice-landing",
        "generation": generation,
        "contentType": "text/csv",
        "timeCreated": "2026-11-24T11:56:01.777219Z",
        "updated": "2026-11-24T11:56:01.777222Z",
        "storageClass": "STANDARD",
        "size": "8",
    }
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "bucketId": "sluice-landing",
        "objectId": name,
        "objectGeneration": generation,
        "eventTime": "2026-11-24T11:56:01Z",
        "payloadFormat": "JSON_API_V1",
    }
    return {"data": json.dumps(resource).encode(), "attributes": attributes}
