"""What happens to a file that cannot be ingested: quarantine it and record why.

The landing object is never touched. A server-side copy of exactly the rejected generation
goes to ``quarantine/<generation>/<percent-encoded object name>`` in the pipeline bucket
(cut and hashed when too long for Cloud Storage), with ``<that>.reason.json`` beside it
(the validation report plus the event), and the ingestion log gets a ``rejected`` row.
Every step overwrites what an earlier, interrupted attempt wrote, so a retried event
repeats them safely.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sluice.contracts import Contract
from sluice.gcs import gcs_faults, gs_uri, parse_gs_uri
from sluice.ingest.validation import ValidationReport
from sluice.schema import IngestionRecord, SourceRef, job_name_for
from sluice.settings import Settings
from sluice.warehouse import connected_warehouse

if TYPE_CHECKING:
    from google.cloud import storage

QUARANTINE_PREFIX = "quarantine/"
REASON_SUFFIX = ".reason.json"
MAX_OBJECT_NAME_BYTES = 1024
"""Cloud Storage's limit on an object name (UTF-8 bytes)."""


def quarantine_name(name: str, generation: int) -> str:
    """The quarantine object for a landing object's generation: one flat name, reversible
    by ``unquote`` unless too long for Cloud Storage; then a cut of it plus a hash of the
    whole name (which the ``.reason.json`` beside it keeps)."""
    prefix = f"{QUARANTINE_PREFIX}{generation}/"
    encoded = quote(name, safe="")  # ASCII: its length is its size in bytes
    # Percent-encoding can triple a name's bytes (a 1,000-byte non-ASCII name is legal),
    # and the reason file's name adds its suffix; both must fit.
    budget = MAX_OBJECT_NAME_BYTES - len(prefix) - len(REASON_SUFFIX)
    if len(encoded) <= budget:
        return prefix + encoded
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    cut = encoded[: budget - len(digest) - 1]
    broken_escape = cut.rfind("%", len(cut) - 2)
    if broken_escape >= 0:
        cut = cut[:broken_escape]
    return f"{prefix}{cut}~{digest}"


def quarantine_details(
    reason: str,
    report: ValidationReport | None,
    contract: Contract,
    key: str,
    source: SourceRef,
) -> dict[str, Any]:
    """The ``.reason.json`` document: the validation report (if any) plus the event."""
    bucket, name = parse_gs_uri(source.uri)
    details: dict[str, Any] = report.to_dict() if report else {"accepted": False}
    details.update(
        reason=reason,
        event_key=key,
        dataset=contract.name,
        contract_version=contract.version,
        bucket=bucket,
        object=name,
        generation=source.generation,
        source_uri=source.uri,
        time=datetime.now(UTC).isoformat(),
    )
    return details


def quarantine_object(
    client: storage.Client,
    settings: Settings,
    bucket: str,
    name: str,
    generation: int,
    reason: dict[str, Any],
) -> str:
    """Copy the generation to quarantine with ``reason`` beside it; the copy's ``gs://`` URI.

    Raises ``google.api_core.exceptions.NotFound`` when that generation no longer exists.
    """
    target_name = quarantine_name(name, generation)
    source = client.bucket(bucket).blob(name, generation=generation)
    target = client.bucket(settings.pipeline_bucket).blob(target_name)
    with gcs_faults(f"quarantining {gs_uri(bucket, name)}#{generation}"):
        # rewrite, not copy: it copies any size across locations and storage classes in
        # resumable steps, where a single copy call can time out on a large object.
        token, _, _ = target.rewrite(source)
        while token is not None:
            token, _, _ = target.rewrite(source, token=token)
        reason_blob = client.bucket(settings.pipeline_bucket).blob(target_name + REASON_SUFFIX)
        reason_blob.upload_from_string(
            json.dumps(reason, indent=2, default=str, ensure_ascii=False),
            content_type="application/json",
        )
    return gs_uri(settings.pipeline_bucket, target_name)


def record_rejection(
    contract: Contract,
    source: SourceRef,
    report: ValidationReport,
    started_at: datetime,
    settings: Settings,
    *,
    job_name: str | None = None,
) -> IngestionRecord:
    """Write a ``rejected`` ingestion-log row for a file that failed validation."""
    reason = report.reason or "rejected by validation"
    return record_rejected_source(contract, source, reason, started_at, settings, job_name=job_name)


def record_rejected_source(
    contract: Contract,
    source: SourceRef,
    reason: str,
    started_at: datetime,
    settings: Settings,
    *,
    job_name: str | None = None,
) -> IngestionRecord:
    """Write a ``rejected`` ingestion-log row with ``reason`` (replacing an earlier one)."""
    record = IngestionRecord(
        dataset=contract.name,
        source_uri=source.uri,
        source_generation=source.generation,
        status="rejected",
        rows_in=0,
        rows_loaded=0,
        rows_dead=0,
        reason=reason,
        job_id=job_name or job_name_for(contract.name, source),
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )
    with connected_warehouse(settings) as warehouse, warehouse.session():
        warehouse.ensure_tables(contract)
        warehouse.record_ingestion(record)
    return record
