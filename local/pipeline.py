"""The pipeline as a laptop runs it: ``beam.pipeline`` with Beam's GCS client emulator-ready.

``python -m local.pipeline ARGS`` is what ``LocalLauncher`` starts (``local.ingest`` calls
``run`` in process); the arguments are ``beam.pipeline``'s. Against fake-gcs-server
(``STORAGE_EMULATOR_HOST`` set) Beam's own GCS filesystem would first spend 20-30 s looking
for credentials; the fix lives here, not in beam/, because it is a laptop concern and the
flex-template image ships beam/ without local/. Local runs use Beam's multi-threading mode
(the runner's workers are threads of this process), so one process-wide fix made before
the pipeline runs reaches every worker.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from types import FrameType

from beam import pipeline
from sluice.schema import IngestionRecord

BUNDLE_PROCESSOR = os.path.join("apache_beam", "runners", "worker", "bundle_processor.py")
"""The module of Beam's workers that runs a bundle through its DoFns."""
BUNDLE_GRACE_SECONDS = 5.0
"""How long an interrupted ingest waits for the workers' bundles in hand: a range's parsing
takes about a second; a load still running then is cut off uncommitted (all rows or none)."""


def skip_credential_lookup_for_emulator() -> None:
    """Make Beam's GCS client connect anonymously at once (for fake-gcs-server).

    Beam's GCS filesystem always asks ``google.auth.default()`` first and retries a failed
    lookup with backoff for 20-30 s; ``--no_auth`` does not reach it. Against an emulator
    credentials are pointless, so this fills Beam's credential cache with "none", which is
    exactly what Beam caches itself after the slow lookup fails.
    """
    from apache_beam.internal.gcp import auth

    cache = auth._Credentials
    with cache._credentials_lock:
        if not cache._credentials_init:
            cache._credentials = None
            cache._credentials_init = True


def prepare_for_emulator() -> None:
    """Apply the laptop's fixes when the GCS emulator is configured; else nothing."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        skip_credential_lookup_for_emulator()


def run(argv: Sequence[str]) -> IngestionRecord | None:
    """``beam.pipeline.run`` in this process, emulator-ready."""
    prepare_for_emulator()
    return pipeline.run(argv)


def wait_for_running_bundles(timeout: float = BUNDLE_GRACE_SECONDS) -> None:
    """After a run failed or was interrupted: wait until no worker thread still processes a
    bundle (parses, stages or loads), for at most ``timeout`` seconds.

    Beam's local workers are threads of this process that the run's end does not stop: each
    finishes the bundle in hand. Until they have, one may still stage a Parquet file after
    the staging directory was removed, or be inside the warehouse load's transaction. A
    second Ctrl-C ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    with suppress(KeyboardInterrupt):
        while _threads_in_bundles() and time.monotonic() < deadline:
            time.sleep(0.02)


def _threads_in_bundles() -> int:
    """Threads other than this one inside Beam's bundle processing (every DoFn runs there)."""
    this = threading.get_ident()
    return sum(
        1 for ident, frame in sys._current_frames().items() if ident != this and _in_bundle(frame)
    )


def _in_bundle(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.endswith(BUNDLE_PROCESSOR):
            return True
        frame = frame.f_back
    return False


if __name__ == "__main__":
    prepare_for_emulator()
    pipeline.main()
