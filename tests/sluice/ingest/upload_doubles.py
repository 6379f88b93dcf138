"""Test doubles and sample files for on_upload tests (tests/functions and tests/test_main.py).

``RecordingLauncher`` stands in for the network boundary, ``launcher_from_settings``: the
real launchers have their own tests. Install it with ``install_launcher(monkeypatch)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from sluice.errors import TransientError
from sluice.ingest import launch as launchers
from sluice.ingest.claims import CLAIMS_PREFIX
from sluice.ingest.launch import LaunchRequest, LaunchResult
from sluice.settings import Settings, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

DATASET = "kiva_lenders"
PREFIX = f"incoming/{DATASET}/"
GOOD = b'loan_id,lenders\n483693,"muc888, sam4326, camaran3922"\n483694,solo\n'
BAD = b"id,who\n1,x\n"  # header does not match the contract


class RecordingLauncher:
    """Records every launch; the first ``failures`` attempts raise ``error`` instead."""

    def __init__(
        self,
        *,
        failures: int = 0,
        error: Exception | None = None,
        already_running: bool = False,
        during_launch: Callable[[LaunchRequest], None] | None = None,
    ) -> None:
        self.failures = failures
        self.error = error or TransientError("launch API answered 503")
        self.already_running = already_running
        self.during_launch = during_launch
        self.attempts = 0
        self.requests: list[LaunchRequest] = []
        self._lock = threading.Lock()

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Record the request (or fail, while failures remain)."""
        with self._lock:
            self.attempts += 1
            if self.failures:
                self.failures -= 1
                raise self.error
            self.requests.append(request)
            number = len(self.requests)
        if self.during_launch:
            self.during_launch(request)
        if self.already_running:
            return LaunchResult(request.job_name, None, already_running=True)
        return LaunchResult(request.job_name, f"job-{number}")


def install_launcher(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> RecordingLauncher:
    """Make ``launcher_from_settings`` return a new RecordingLauncher; return it."""
    recorder = RecordingLauncher(**kwargs)

    def from_settings(settings: Settings) -> RecordingLauncher:
        return recorder

    monkeypatch.setattr(launchers, "launcher_from_settings", from_settings)
    return recorder


def ingestion_rows(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every ingestion-log row in the test's DuckDB warehouse (none when it does not exist)."""
    settings = settings or load_settings()
    if not settings.duckdb_file.exists():
        return []
    return DuckDBWarehouse(settings).query(
        "SELECT source_uri, source_generation, status, reason, job_id, rows_in"
        " FROM {dataset}.ingestion_log ORDER BY source_uri"
    )


def land(gcs: GcsBuckets, data: bytes, name: str = PREFIX + "a.csv") -> Blob:
    """Upload ``data`` to the test's landing bucket; the blob, with its generation."""
    blob = gcs.landing.blob(name)
    blob.upload_from_string(data, content_type="text/csv")
    return blob


def claim_names(gcs: GcsBuckets) -> list[str]:
    """Names of every claim object in the test's pipeline bucket."""
    return [b.name for b in gcs.client.list_blobs(gcs.pipeline.name, prefix=CLAIMS_PREFIX)]
