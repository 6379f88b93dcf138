"""Reconciliation: landing files whose event never came are ingested once, by the cook.

Against fake-gcs-server, through the real door (claims, validation, quarantine); only the
launch is recorded (``RecordingLauncher``, the network boundary). The whole path, with real
pipelines, is tests/faults/test_reconcile_faults.py's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from sluice.contracts import load_contract_set
from sluice.cook.reconcile import CURSOR_OBJECT, landing_files, last_run, reconcile_bucket
from sluice.ingest.batches import flush_batches
from sluice.ingest.claims import claim_event, event_key, read_claim
from sluice.settings import load_settings
from tests.sluice.ingest.upload_doubles import BAD, GOOD, PREFIX, install_launcher, land
from tests.test_main import deliver, upload_client

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

pytestmark = pytest.mark.emulator


def an_hour_on() -> datetime:
    """A clock past the default grace (15 minutes) for every file the test has landed."""
    return datetime.now(UTC) + timedelta(hours=1)


def state_of(gcs: GcsBuckets, blob: Blob) -> str | None:
    claim = read_claim(
        gcs.client, load_settings(), event_key(gcs.landing.name, blob.name, blob.generation)
    )
    return None if claim is None else claim.state


def test_files_without_events_are_ingested_once(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blobs = [land(gcs, GOOD, f"{PREFIX}f{i}.csv") for i in range(3)]
    bad = land(gcs, BAD, f"{PREFIX}bad.csv")
    settings = load_settings()

    later = an_hour_on()
    first = reconcile_bucket(gcs.client, settings, now=later)
    second = reconcile_bucket(gcs.client, settings, now=later)

    assert sorted(r.input_uri for r in launcher.requests) == sorted(
        f"gs://{gcs.landing.name}/{blob.name}" for blob in blobs
    )
    assert [state_of(gcs, blob) for blob in blobs] == ["launched"] * 3
    assert state_of(gcs, bad) == "rejected"  # quarantined with its reason, as its event would
    assert (first.listed, first.ingested, first.waiting, first.settled) == (4, 4, 4, 0)
    oldest = min(gcs.landing.get_blob(blob.name).updated for blob in [*blobs, bad])
    assert first.oldest_waiting_seconds == pytest.approx((later - oldest).total_seconds())
    assert (second.listed, second.ingested, second.waiting, second.settled) == (4, 0, 0, 4)
    assert len(launcher.requests) == 3


def test_a_small_file_is_launched_not_loaded_by_the_cook(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLUICE_FAST_LANE_MAX_BYTES")  # the shipped limit, far above GOOD
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    reconcile_bucket(gcs.client, load_settings(), now=an_hour_on())

    assert len(launcher.requests) == 1 and state_of(gcs, blob) == "launched"


def test_files_within_the_grace_are_left_to_their_event(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    report = reconcile_bucket(gcs.client, load_settings())

    assert (report.listed, report.too_new, report.ingested) == (1, 1, 0)
    assert launcher.requests == [] and state_of(gcs, blob) is None


def test_a_delivered_event_and_the_reconciliation_load_a_file_once(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    delivered, lost = (
        land(gcs, GOOD, f"{PREFIX}delivered.csv"),
        land(gcs, GOOD, f"{PREFIX}lost.csv"),
    )
    status = deliver(upload_client(), delivered)

    report = reconcile_bucket(gcs.client, load_settings(), now=an_hour_on())
    late = deliver(upload_client(), lost)  # the lost event turns up after all

    assert (status, late) == (200, 200)
    assert [r.input_uri.rsplit("/", 1)[1] for r in launcher.requests] == [
        "delivered.csv",
        "lost.csv",
    ]
    assert (report.settled, report.ingested) == (1, 1)


def test_events_dropped_as_too_old_are_reconciled(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    monkeypatch.setenv("SLUICE_MAX_EVENT_AGE_SECONDS", "0")  # every event is too old
    monkeypatch.setenv("SLUICE_RECONCILE_GRACE_SECONDS", "0")
    blob = land(gcs, GOOD)

    status = deliver(upload_client(), blob, age=5)
    dropped = state_of(gcs, blob)
    report = reconcile_bucket(gcs.client, load_settings())

    assert (status, dropped) == (200, None)
    assert report.ingested == 1 and state_of(gcs, blob) == "launched"
    assert len(launcher.requests) == 1


def test_a_claim_orphaned_before_launch_is_taken_over_after_its_lease(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    settings = load_settings()
    key = event_key(gcs.landing.name, blob.name, blob.generation)
    # The function claimed the event, then was killed; no delivery ever comes again.
    claim_event(
        gcs.client, settings, key, bucket=gcs.landing.name, name=blob.name,
        generation=blob.generation, dataset="kiva_lenders",
    )  # fmt: skip

    later = an_hour_on()
    within_lease = reconcile_bucket(gcs.client, settings, now=later)  # a 15-minute lease
    monkeypatch.setenv("SLUICE_CLAIM_LEASE_SECONDS", "0")  # every lease has run out
    after_lease = reconcile_bucket(gcs.client, load_settings(), now=later)

    assert (within_lease.in_progress, within_lease.ingested) == (1, 0)
    waited = (later - gcs.landing.get_blob(blob.name).updated).total_seconds()
    assert within_lease.unsettled == {"kiva_lenders": pytest.approx(waited)}
    assert after_lease.unsettled == {}
    assert (after_lease.ingested, after_lease.in_progress) == (1, 0)
    assert state_of(gcs, blob) == "launched" and len(launcher.requests) == 1


def test_the_listing_is_bounded_and_goes_on_from_its_cursor(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    monkeypatch.setenv("SLUICE_RECONCILE_MAX_OBJECTS", "2")
    blobs = [land(gcs, GOOD, f"{PREFIX}f{i}.csv") for i in range(5)]
    settings = load_settings()

    runs = [reconcile_bucket(gcs.client, settings, now=an_hour_on()) for _ in range(4)]

    assert [(r.listed, r.ingested, r.wrapped) for r in runs] == [
        (2, 2, False),
        (2, 2, False),
        (1, 1, True),
        (2, 0, False),  # starts over: all settled
    ]
    assert sorted(r.input_uri for r in launcher.requests) == sorted(
        f"gs://{gcs.landing.name}/{blob.name}" for blob in blobs
    )
    assert gcs.pipeline.blob(CURSOR_OBJECT).exists()


def test_one_event_in_ten_dropped_still_launches_every_file_once(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blobs = [land(gcs, GOOD, f"{PREFIX}f{i:02}.csv") for i in range(20)]
    client = upload_client()
    statuses = [deliver(client, blob) for i, blob in enumerate(blobs) if i % 10 != 3]

    report = reconcile_bucket(gcs.client, load_settings(), now=an_hour_on())

    assert statuses == [200] * 18
    assert (report.settled, report.ingested) == (18, 2)
    assert sorted(r.input_uri for r in launcher.requests) == sorted(
        f"gs://{gcs.landing.name}/{blob.name}" for blob in blobs
    )


def test_a_launcher_down_for_hours_loses_no_file(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The delivery and four scheduled flushes meet a launcher failing with 503.
    launcher = install_launcher(monkeypatch, failures=5)
    settings = load_settings()
    blob = land(gcs, GOOD)
    delivered = deliver(upload_client(), blob)
    failed = [flush_batches(gcs.client, settings).failed for _ in range(4)]
    queued = state_of(gcs, blob)

    report = reconcile_bucket(gcs.client, settings, now=an_hour_on())
    flushed = flush_batches(gcs.client, settings)  # the launcher is back

    assert delivered == 200 and failed == [1] * 4
    assert queued == "batched" and report.ingested == 0  # queued is settled for now
    assert flushed.batches == 1 and state_of(gcs, blob) == "launched"
    assert launcher.attempts == 6 and len(launcher.requests) == 1


def test_landing_files_show_each_state_and_the_last_run(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_launcher(monkeypatch)
    settings = load_settings()
    delivered = land(gcs, GOOD, f"{PREFIX}delivered.csv")
    waiting = land(gcs, GOOD, f"{PREFIX}waiting.csv")
    deliver(upload_client(), delivered)
    before = last_run(gcs.client, settings)

    files = landing_files(gcs.client, settings, load_contract_set(settings.contracts_dir), 10)
    report = reconcile_bucket(gcs.client, settings)  # both within the grace: nothing done

    assert [(f.uri.rsplit("/", 1)[1], f.generation, f.state) for f in files] == [
        ("waiting.csv", waiting.generation, "waiting"),  # newest first
        ("delivered.csv", delivered.generation, "launched"),
    ]
    run = last_run(gcs.client, settings)
    assert before is None and run is not None
    assert datetime.fromisoformat(run.pop("at")) <= datetime.now(UTC)
    assert run == report.as_dict() and (report.too_new, report.listed) == (2, 2)


def test_a_big_prefix_does_not_starve_the_next_one(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    monkeypatch.setenv("SLUICE_RECONCILE_MAX_OBJECTS", "2")
    lenders = [land(gcs, GOOD, f"{PREFIX}f{i}.csv") for i in range(5)]
    loans = [land(gcs, BAD, f"incoming/kiva_loans/l{i}.csv") for i in range(3)]
    land(gcs, b"", f"{PREFIX}folder/")  # a console-made folder: no file
    settings = load_settings()

    runs = [reconcile_bucket(gcs.client, settings, now=an_hour_on()) for _ in range(5)]

    assert [(r.ingested, r.ignored) for r in runs][:4] == [(2, 0), (2, 0), (2, 0), (2, 0)]
    assert sum(r.ingested for r in runs) == 8  # every file once, the loans by run 4
    assert sum(r.ignored for r in runs) >= 1
    assert len(launcher.requests) == len(lenders)  # the loans files are bad: rejected
    assert {state_of(gcs, blob) for blob in loans} == {"rejected"}
