"""on_upload with one broken contract: other datasets' files launch, the broken dataset's
files are quarantined with a reason naming the contract file, and both answer 200."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.ingest.quarantine import REASON_SUFFIX, quarantine_name
from tests.sluice.broken_config import BROKEN_DATASET, use_broken_contracts
from tests.sluice.ingest.upload_doubles import GOOD, install_launcher, land
from tests.test_main import deliver, upload_client

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]


def test_on_upload_launches_other_datasets_despite_a_broken_contract(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_broken_contracts(monkeypatch, tmp_path)
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    status = deliver(upload_client(), blob)

    assert status == 200
    assert [r.dataset for r in launcher.requests] == ["kiva_lenders"]


def test_on_upload_quarantines_a_file_of_a_broken_contract_with_200(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_broken_contracts(monkeypatch, tmp_path)
    launcher = install_launcher(monkeypatch)
    data = b"timestamp,status\n2024-01-01T00:00:00Z,200\n"
    blob = land(gcs, data, f"incoming/{BROKEN_DATASET}/a.csv")

    status = deliver(upload_client(), blob)

    assert status == 200 and launcher.attempts == 0
    copy_name = quarantine_name(blob.name, blob.generation)
    assert gcs.pipeline.blob(copy_name).download_as_bytes() == data
    reason = json.loads(gcs.pipeline.blob(copy_name + REASON_SUFFIX).download_as_bytes())
    assert f"{BROKEN_DATASET}.yaml" in reason["reason"] and "integr" in reason["reason"]
    assert reason["generation"] == blob.generation
