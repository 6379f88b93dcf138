"""Uploads to the landing bucket and reading their outcomes, on a real fake-gcs-server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from local.landing import (
    FAILED,
    UPLOAD_CHUNK_BYTES,
    LandedObject,
    current_result,
    landing_name,
    replay_prefix,
    upload_file,
    wait_for_outcomes,
)
from sluice.contracts import Contract
from sluice.gcs import storage_client
from sluice.ingest.claims import (
    LAUNCHED,
    REJECTED,
    SUPERSEDED,
    claim_event,
    event_key,
    set_claim_state,
)
from sluice.settings import load_settings
from tests.sluice.ingest.upload_doubles import GOOD, PREFIX, install_launcher, land

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]


def test_landing_name_is_the_dataset_prefix_and_file_name(
    contracts: dict[str, Contract],
) -> None:
    name = landing_name(contracts["server_logs"], Path("/somewhere/else/day 1.csv.gz"))

    assert name == "incoming/server_logs/day 1.csv.gz"


def test_upload_file_reports_progress_chunk_by_chunk(
    gcs: GcsBuckets, contracts: dict[str, Contract], tmp_path: Path
) -> None:
    big = tmp_path / "big.csv.gz"
    payload = os.urandom(2 * UPLOAD_CHUNK_BYTES + 12345)
    big.write_bytes(payload)
    seen: list[int] = []

    landed = upload_file(
        storage_client(load_settings()), load_settings(), big, contracts["kiva_loans"], seen.append
    )

    blob = gcs.landing.get_blob("incoming/kiva_loans/big.csv.gz")
    assert blob.download_as_bytes() == payload
    assert blob.content_type == "application/gzip"
    assert landed.generation == blob.generation
    assert landed.uri == f"gs://{gcs.landing.name}/incoming/kiva_loans/big.csv.gz"
    assert seen[-1] == len(payload)
    assert len(set(seen)) >= 3  # moved at least once per chunk
    assert seen == sorted(seen)


def test_current_result_is_pending_without_a_claim(gcs: GcsBuckets) -> None:
    settings = load_settings()
    landed = LandedObject(gcs.landing.name, "incoming/kiva_loans/a.csv", 7, "kiva_loans")

    result = current_result(storage_client(settings), settings, landed)

    assert result.state == "pending"
    assert not result.final


def test_current_result_reports_a_pipeline_that_died_unsettled(gcs: GcsBuckets) -> None:
    settings = load_settings()
    client = storage_client(settings)
    landed = LandedObject(gcs.landing.name, "incoming/kiva_loans/a.csv", 7, "kiva_loans")
    claim_event(
        client, settings, landed.event_key, bucket=landed.bucket, name=landed.name,
        generation=landed.generation, dataset=landed.dataset,
    )  # fmt: skip
    set_claim_state(client, settings, landed.event_key, LAUNCHED, runner_job_id="local-1")

    result = current_result(client, settings, landed)

    assert result.state == FAILED
    assert result.final
    assert f"{landed.job_name}.log" in result.reason


def test_wait_for_outcomes_returns_rejections_with_their_reason(gcs: GcsBuckets) -> None:
    settings = load_settings()
    client = storage_client(settings)
    landed = LandedObject(gcs.landing.name, "incoming/kiva_loans/b.csv", 8, "kiva_loans")
    claim_event(
        client, settings, landed.event_key, bucket=landed.bucket, name=landed.name,
        generation=landed.generation, dataset=landed.dataset,
    )  # fmt: skip
    set_claim_state(
        client, settings, landed.event_key, REJECTED, reason="header: expected 'loan_id'"
    )

    [result] = wait_for_outcomes(client, settings, [landed], timeout=5)

    assert result.state == REJECTED
    assert result.reason == "header: expected 'loan_id'"
    assert result.rows_in is None  # no ingestion-log row was written for it


def test_a_superseded_load_is_final_and_not_a_rejection(gcs: GcsBuckets) -> None:
    """A generation replaced by a newer upload ends: `upload --wait` stops waiting for it."""
    settings = load_settings()
    client = storage_client(settings)
    landed = LandedObject(gcs.landing.name, "incoming/kiva_loans/c.csv", 9, "kiva_loans")
    claim_event(
        client, settings, landed.event_key, bucket=landed.bucket, name=landed.name,
        generation=landed.generation, dataset=landed.dataset,
    )  # fmt: skip
    set_claim_state(client, settings, landed.event_key, LAUNCHED, runner_job_id="local-1")
    set_claim_state(client, settings, landed.event_key, SUPERSEDED, reason="superseded")

    [result] = wait_for_outcomes(client, settings, [landed], timeout=5)

    assert (result.state, result.final) == (SUPERSEDED, True)


def test_replay_prefix_lists_a_held_claim_and_goes_on(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    held, free = land(gcs, GOOD, f"{PREFIX}a.csv"), land(gcs, GOOD, f"{PREFIX}b.csv")
    settings = load_settings()
    key = event_key(gcs.landing.name, held.name, held.generation)
    claim_event(
        gcs.client,
        settings,
        key,
        bucket=gcs.landing.name,
        name=held.name,
        generation=held.generation,
        dataset="kiva_lenders",
    )  # fmt: skip  a delivery is handling it right now

    done = replay_prefix(settings, f"gs://{gcs.landing.name}/{PREFIX}")

    assert [(landed.name, outcome.status) for landed, outcome in done] == [
        (held.name, "claimed"),
        (free.name, "launched"),
    ]
    assert done[0][0].dataset == "kiva_lenders" and "claimed since" in done[0][1].reason
    assert [request.input_uri.rsplit("/", 1)[1] for request in launcher.requests] == ["b.csv"]
