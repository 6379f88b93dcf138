"""The ``_test`` path-segment marker and the isolation of the test dataset from summaries."""

from __future__ import annotations

import pytest

from sluice.settings import load_settings
from sluice.testmark import is_test_object


@pytest.mark.parametrize(
    "name",
    [
        "incoming/kiva_loans/_test/sample.csv",
        "incoming/kiva_loans/2026/_test/11/sample.csv.gz",
        "gs://sluice-landing/incoming/kiva_loans/_test/sample.csv",
    ],
)
def test_is_test_object_accepts_a_whole_test_segment(name: str) -> None:
    assert is_test_object(name)


@pytest.mark.parametrize(
    "name",
    [
        "incoming/kiva_loans/sample.csv",
        "incoming/kiva_loans/my_test/sample.csv",
        "incoming/kiva_loans/_test_data/sample.csv",
        "incoming/kiva_loans/_TEST/sample.csv",
        "incoming/kiva_loans/sample_test.csv",
    ],
)
def test_is_test_object_rejects_names_without_a_test_directory(name: str) -> None:
    assert not is_test_object(name)


def test_summaries_never_read_the_test_dataset() -> None:
    settings = load_settings()
    sql_files = sorted(settings.sql_dir.glob("*.sql"))

    readers = [
        path.name
        for path in sql_files
        if "{test_dataset}" in path.read_text(encoding="utf-8")
        or settings.test_warehouse_dataset in path.read_text(encoding="utf-8")
    ]

    assert sql_files and readers == []
