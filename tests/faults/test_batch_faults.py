"""Batches of files for one Dataflow job: each file in exactly one batch, each batch launched
once, whatever the duplicates, the races and the crashes.

Every test drives the real door (``handle_object``), the real flush
(``sluice.ingest.batches``), fake-gcs-server for claims, queue markers and manifests, and the
real ``DataflowLauncher`` against ``FakeDataflow``. A crash is a ``Crash`` (a
``BaseException``, so no handler of ours can catch it, as none survives a killed process)
raised at the network boundary: by the HTTP session of the storage client, on the first
request that matches the step. The next scheduled flush must then finish the batch: every
file launched once under the batch's job name, no marker and no open batch left.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pytest
import requests

from sluice.ingest.batch_plan import Member, batch_id, batch_job_name, plan_batches
from sluice.ingest.batch_store import queue_file
from sluice.ingest.batches import flush_batches
from sluice.ingest.claims import ClaimInProgress, set_claim_state
from sluice.ingest.door import handle_object
from sluice.settings import load_settings
from tests.faults.conftest import FakeDataflow
from tests.faults.fault_helpers import DATASET, claim_of, lenders_csv
from tests.sluice.ingest.upload_doubles import land

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

T0 = datetime(2026, 12, 3, 12, tzinfo=UTC)


class Crash(BaseException):
    """The process dies here."""


def member(n: int, size: int = 10, *, seconds: float = 0) -> Member:
    return Member(
        f"landing/incoming/{DATASET}/{n}.csv#1", DATASET, "landing", f"incoming/{DATASET}/{n}.csv",
        1, size, T0 + timedelta(seconds=seconds or n),
    )  # fmt: skip


# The batching rule --------------------------------------------------------------------------


def test_full_batches_are_due_at_once_and_the_partial_one_when_its_first_file_is_old() -> None:
    settings = load_settings(batch_max_files=3, batch_max_age_seconds=60)
    queue = [member(n) for n in range(1, 8)]  # queued at T0 + 1..7 s

    early = plan_batches(queue, settings, T0 + timedelta(seconds=30))
    late = plan_batches(queue, settings, T0 + timedelta(seconds=67))
    forced = plan_batches(queue, settings, T0, force=True)

    assert [[m.name[-5:] for m in batch] for batch in early] == [
        ["1.csv", "2.csv", "3.csv"],
        ["4.csv", "5.csv", "6.csv"],
    ]
    assert [len(batch) for batch in late] == [3, 3, 1]  # 7.csv queued at 7 s, 60 s before
    assert [len(batch) for batch in forced] == [3, 3, 1]


def test_bytes_cut_a_batch_and_a_file_over_the_limit_is_a_batch_of_its_own() -> None:
    settings = load_settings(batch_max_files=50, batch_max_bytes=100, batch_max_age_seconds=60)
    queue = [member(1, 60), member(2, 30), member(3, 20), member(4, 500), member(5, 10)]

    due = plan_batches(queue, settings, T0)

    assert [[m.bytes for m in batch] for batch in due] == [[60, 30], [20], [500]]


def test_a_batch_is_named_by_its_members_whatever_their_order() -> None:
    members = [member(n) for n in range(1, 4)]

    ident = batch_id(members)

    assert ident == batch_id(list(reversed(members))) != batch_id(members[:2])
    assert batch_job_name(DATASET, ident).startswith("sluice-kiva-lenders-")


# On the real services -----------------------------------------------------------------------


@pytest.fixture
def batching(monkeypatch: pytest.MonkeyPatch, dataflow_env: FakeDataflow) -> FakeDataflow:
    """Batches of 3 files that never fill by age during a test."""
    monkeypatch.setenv("SLUICE_BATCH_MAX_FILES", "3")
    monkeypatch.setenv("SLUICE_BATCH_MAX_AGE_SECONDS", "3600")
    return dataflow_env


def land_files(gcs: GcsBuckets, count: int) -> list[Blob]:
    return [
        land(gcs, lenders_csv(range(i, i + 2)), f"incoming/{DATASET}/batch-{i:02d}.csv")
        for i in range(count)
    ]


def handle(blob: Blob) -> str:
    """The door's outcome for ``blob``'s event; ``in_progress`` for the 503 of a held claim."""
    try:
        outcome = handle_object(
            blob.bucket.name, blob.name, blob.generation, settings=load_settings()
        )
    except ClaimInProgress:
        return "in_progress"
    return outcome.status


def stored(gcs: GcsBuckets, part: str) -> list[str]:
    """Names of the pipeline bucket's batch objects whose name holds ``part``."""
    names = [b.name for b in gcs.client.list_blobs(gcs.pipeline.name, prefix="batches/")]
    return [name for name in names if part in name]


def manifests(gcs: GcsBuckets) -> list[dict[str, Any]]:
    names = [n for n in stored(gcs, "") if "/open/" not in n and "/queue/" not in n]
    return [json.loads(gcs.pipeline.blob(n).download_as_bytes()) for n in names]


def assert_launched_once_as_one_batch(gcs: GcsBuckets, fake: FakeDataflow, blobs: list[Blob]):
    claims = [claim_of(gcs, blob) for blob in blobs]
    [manifest] = manifests(gcs)
    assert {claim.state for claim in claims} == {"launched"}
    assert {claim.job_name for claim in claims} == {manifest["job_name"]}
    assert {claim.batch for claim in claims} == {manifest["batch_id"]}
    assert sorted(m["name"] for m in manifest["members"]) == sorted(b.name for b in blobs)
    assert fake.created_names() == [manifest["job_name"]]
    assert stored(gcs, "/queue/") == [] and stored(gcs, "/open/") == []


def test_files_arriving_together_share_one_job_and_the_rest_wait_for_their_age(
    gcs: GcsBuckets, batching: FakeDataflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = land_files(gcs, 8)

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(handle, blobs))
    after_events = Counter(claim_of(gcs, blob).state for blob in blobs)
    waiting = flush_batches(gcs.client, load_settings())
    monkeypatch.setenv("SLUICE_BATCH_MAX_AGE_SECONDS", "0")
    aged = flush_batches(gcs.client, load_settings())

    # Two full batches of 3 launch inline; deliveries racing on one batch may split it.
    assert set(statuses) <= {"batched", "launched"}
    assert after_events["launched"] >= 4 and after_events["batched"] >= 1
    assert waiting.batches == 0 and waiting.queued == after_events["batched"]
    assert (aged.batches, aged.files) == (1, after_events["batched"])
    launched = [claim_of(gcs, blob) for blob in blobs]
    jobs = {claim.job_name for claim in launched}
    every_member = sorted(m["name"] for batch in manifests(gcs) for m in batch["members"])
    assert {claim.state for claim in launched} == {"launched"} and 3 <= len(jobs) <= 5
    assert len(every_member) == len(set(every_member))  # no file in two batches
    assert sorted(batching.created_names()) == sorted(jobs)
    assert stored(gcs, "/queue/") == [] and stored(gcs, "/open/") == []


def test_ten_duplicate_events_at_once_queue_the_file_once(
    gcs: GcsBuckets, batching: FakeDataflow
) -> None:
    blobs = land_files(gcs, 3)

    with ThreadPoolExecutor(10) as pool:
        first = list(pool.map(handle, [blobs[0]] * 10))
    rest = [handle(blob) for blob in blobs[1:]]
    later = [handle(blob) for blob in blobs for _ in range(2)]

    assert first.count("batched") == 1 and set(first) <= {"batched", "duplicate", "in_progress"}
    assert rest[-1] == "launched" and set(later) == {"duplicate"}
    assert_launched_once_as_one_batch(gcs, batching, blobs)


def test_two_flushes_of_one_batch_at_once_launch_one_job(
    gcs: GcsBuckets, batching: FakeDataflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_BATCH_MAX_FILES", "10")
    blobs = land_files(gcs, 3)
    statuses = [handle(blob) for blob in blobs]
    monkeypatch.setenv("SLUICE_BATCH_MAX_AGE_SECONDS", "0")

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: flush_batches(gcs.client, load_settings()), range(2)))

    assert statuses == ["batched"] * 3
    assert sum(report.files for report in reports) in (3, 6)  # the second may find it running
    assert_launched_once_as_one_batch(gcs, batching, blobs)


def uploads_of(*parts: bytes) -> Callable[[str, str, bytes], bool]:
    return lambda method, url, body: method == "POST" and all(p in body for p in parts)


def deletes_of(part: str) -> Callable[[str, str, bytes], bool]:
    return lambda method, url, body: method == "DELETE" and part in url


CRASH_POINTS = {
    # after the queue marker, before the claim says batched: the next file's flush takes it
    "queued": uploads_of(b'"batch": null', b'"state": "batched"'),
    "opened": uploads_of(b'"batch": "'),  # the open record written, no claim joined
    "joined": uploads_of(b'"members": ['),  # claims joined, no manifest
    "sealed": deletes_of("/queue/"),  # the manifest written, markers kept
    "launched": uploads_of(b'"state": "launched"'),  # the job runs, no claim says so
    "recorded": deletes_of("/open/"),  # claims launched, the open record kept
}


@pytest.mark.parametrize("step", list(CRASH_POINTS))
def test_a_crash_at_each_step_is_resumed_with_nothing_lost_and_nothing_twice(
    gcs: GcsBuckets, batching: FakeDataflow, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    blobs = land_files(gcs, 3)
    crash_at_first(monkeypatch, CRASH_POINTS[step])

    outcomes = []
    for blob in blobs:
        try:
            outcomes.append(handle(blob))
        except Crash:
            outcomes.append("crashed")
    redelivered = [handle(blob) for blob in blobs if outcomes[blobs.index(blob)] == "crashed"]
    resumed = flush_batches(gcs.client, load_settings())
    again = flush_batches(gcs.client, load_settings())

    assert outcomes.count("crashed") == 1
    assert set(redelivered) <= {"duplicate", "batched", "launched"}
    assert again.batches == 0 and again.failed == 0
    assert resumed.failed == 0
    assert_launched_once_as_one_batch(gcs, batching, blobs)


def crash_at_first(
    monkeypatch: pytest.MonkeyPatch, matches: Callable[[str, str, bytes], bool]
) -> None:
    """Raise ``Crash`` from the storage client's HTTP session on the first matching request."""
    real = requests.Session.request
    fired: list[bool] = []

    def request(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any):
        body = kwargs.get("data") or b""
        body = body.encode() if isinstance(body, str) else body
        if not fired and isinstance(body, bytes) and matches(method, unquote(url), body):
            fired.append(True)
            raise Crash(f"killed at {method} {url}")
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)


def test_a_batch_resumed_after_its_files_loaded_launches_nothing_more(
    gcs: GcsBuckets, batching: FakeDataflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flush dies after marking the claims launched; the job then loads two of its three
    # files before the next flush: neither the batch nor the third file is launched again.
    blobs = land_files(gcs, 3)
    crash_at_first(monkeypatch, CRASH_POINTS["recorded"])
    with pytest.raises(Crash):
        [handle(blob) for blob in blobs]
    settings = load_settings()
    for blob in blobs[:2]:
        set_claim_state(gcs.client, settings, claim_of(gcs, blob).event_key, "loaded")
    launches = len(batching.launches)

    resumed = flush_batches(gcs.client, settings)

    assert (resumed.batches, resumed.failed) == (0, 0)
    assert len(batching.launches) == launches and len(batching.created_names()) == 1
    assert [claim_of(gcs, blob).state for blob in blobs] == ["loaded", "loaded", "launched"]
    assert stored(gcs, "/open/") == []


def test_a_file_queued_again_by_a_redelivery_has_one_marker(
    gcs: GcsBuckets, batching: FakeDataflow
) -> None:
    (blob,) = land_files(gcs, 1)
    handle(blob)
    claim = claim_of(gcs, blob)
    again = Member(
        claim.event_key, DATASET, blob.bucket.name, blob.name, blob.generation, 10,
        datetime.now(UTC),
    )  # fmt: skip

    queue_file(gcs.client, load_settings(), claim, again)

    assert len(stored(gcs, "/queue/")) == 1
    assert flush_batches(gcs.client, load_settings(), force=True).files == 1
