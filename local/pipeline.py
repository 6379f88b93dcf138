"""The pipeline as a laptop runs it: ``beam.pipeline`` with Beam's GCS client emulator-ready.

``python -m local.pipeline ARGS`` is what ``LocalLauncher`` starts; the arguments are
``beam.pipeline``'s. Against fake-gcs-server (``STORAGE_EMULATOR_HOST`` set) Beam's own GCS
filesystem would first spend 20-30 s looking for credentials; the fix lives here, not in
beam/, because it is a laptop concern and the flex-template image ships beam/ without
local/. Local runs use Beam's multi-threading mode (the runner's workers are threads of this
process), so one process-wide fix made before the pipeline runs reaches every worker.
"""

from __future__ import annotations

import os

from beam import pipeline


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


if __name__ == "__main__":
    prepare_for_emulator()
    pipeline.main()
