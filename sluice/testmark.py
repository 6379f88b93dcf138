"""Test-marked landing files: a ``_test`` path segment routes a file to the test dataset.

A file such as ``incoming/kiva_loans/_test/sample.csv`` still matches its contract's landing
prefix and runs the full path (validation, pipeline, dead letters, ingestion log), but every
table it writes lives in ``settings.test_warehouse_dataset`` instead of
``settings.warehouse_dataset``. The cooked summaries read only ``{dataset}``, so a test file
can never change a production table.

Why a path segment and not an object metadata flag: it is visible in every listing and in the
ingestion log's ``source_uri``, works with any uploader (``gcloud storage cp``, the console,
``sluice upload --test``) and needs no metadata API call before deciding where a file goes.
"""

from __future__ import annotations

TEST_SEGMENT = "_test"
"""The path segment that marks a test file; it must be a whole segment (``x_test/`` is not)."""


def is_test_object(name: str) -> bool:
    """True when an object name, ``gs://`` URI or path has a segment exactly ``_test``."""
    return TEST_SEGMENT in name.split("/")
