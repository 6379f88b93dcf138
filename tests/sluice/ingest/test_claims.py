"""sluice.ingest.claims on a real fake-gcs-server: one winner, CAS takeovers, the state machine."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from sluice.ingest.claims import (
    CLAIMS_PREFIX,
    Claim,
    ClaimInProgress,
    ClaimStateError,
    claim_event,
    claim_object_name,
    event_key,
    read_claim,
    release_claim,
    set_claim_state,
    swap_claim,
)
from sluice.settings import Settings, load_settings

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

KEY = "landing/incoming/kiva_loans/a.csv#17"


def take(gcs: GcsBuckets, settings: Settings, key: str = KEY, **kwargs: Any) -> Claim | None:
    return claim_event(
        gcs.client,
        settings,
        key,
        bucket="landing",
        name="incoming/kiva_loans/a.csv",
        generation=17,
        dataset="kiva_loans",
        **kwargs,
    )


def run_together(count: int, work: Callable[[], object]) -> list[object]:
    """Run ``work`` on ``count`` threads released at once; each result or raised error."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def one(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_event_key_is_bucket_name_generation_with_optional_replay() -> None:
    assert event_key("landing", "incoming/x/a.csv", 42) == "landing/incoming/x/a.csv#42"
    assert event_key("landing", "a.csv", 42, replay="r1") == "landing/a.csv#42/replay-r1"


def test_claim_object_name_is_a_hash_that_never_escapes_the_prefix() -> None:
    names = {claim_object_name(k) for k in (KEY, "../../etc#1", KEY + "/replay-x")}

    assert len(names) == 3
    for name in names:
        assert name.startswith(CLAIMS_PREFIX)
        assert name.endswith(".json")
        assert "/" not in name.removeprefix(CLAIMS_PREFIX)
    assert claim_object_name(KEY) == claim_object_name(KEY)


def test_claim_event_first_delivery_wins_and_claim_is_stored(gcs: GcsBuckets) -> None:
    settings = load_settings()

    claim = take(gcs, settings)

    assert claim is not None and claim.state == "claimed" and claim.attempt == 1
    stored = read_claim(gcs.client, settings, KEY)
    assert stored == claim
    assert stored.claim_generation == claim.claim_generation
    assert gcs.pipeline.get_blob(claim_object_name(KEY)) is not None


def test_claim_event_duplicate_within_lease_is_in_progress(gcs: GcsBuckets) -> None:
    settings = load_settings()
    take(gcs, settings)

    with pytest.raises(ClaimInProgress, match=r"claimed since .* \(lease until"):
        take(gcs, settings)


def test_claim_event_duplicate_of_settled_claim_is_none(gcs: GcsBuckets) -> None:
    settings = load_settings()
    take(gcs, settings)
    set_claim_state(gcs.client, settings, KEY, "launched", runner_job_id="job-1")

    assert take(gcs, settings) is None
    assert read_claim(gcs.client, settings, KEY).runner_job_id == "job-1"


def test_claim_event_concurrent_claimers_have_exactly_one_winner(gcs: GcsBuckets) -> None:
    settings = load_settings()

    results = run_together(8, lambda: take(gcs, settings))

    winners = [r for r in results if isinstance(r, Claim)]
    assert len(winners) == 1
    assert all(isinstance(r, ClaimInProgress) for r in results if r is not winners[0])
    assert read_claim(gcs.client, settings, KEY).holder == winners[0].holder


def test_claim_event_takes_over_a_stale_claim_after_the_lease(gcs: GcsBuckets) -> None:
    settings = load_settings()
    crashed = take(gcs, settings)
    assert crashed is not None
    after_lease = datetime.now(UTC) + timedelta(seconds=settings.claim_lease_seconds + 1)

    taken = take(gcs, settings, now=after_lease)

    assert taken is not None and taken.attempt == 2 and taken.holder != crashed.holder
    assert read_claim(gcs.client, settings, KEY) == taken
    assert release_claim(gcs.client, settings, crashed) is False  # it is no longer theirs


def test_claim_event_stale_claim_is_taken_over_by_exactly_one(gcs: GcsBuckets) -> None:
    settings = load_settings()
    take(gcs, settings)
    after_lease = datetime.now(UTC) + timedelta(seconds=settings.claim_lease_seconds + 1)

    results = run_together(6, lambda: take(gcs, settings, now=after_lease))

    winners = [r for r in results if isinstance(r, Claim)]
    assert len(winners) == 1 and winners[0].attempt == 2
    assert all(isinstance(r, ClaimInProgress) for r in results if r is not winners[0])


def test_claim_event_before_the_lease_does_not_take_over(gcs: GcsBuckets) -> None:
    settings = load_settings()
    first = take(gcs, settings)
    almost = datetime.now(UTC) + timedelta(seconds=settings.claim_lease_seconds - 5)

    with pytest.raises(ClaimInProgress):
        take(gcs, settings, now=almost)
    assert read_claim(gcs.client, settings, KEY) == first


def test_set_claim_state_walks_claimed_launched_loaded(gcs: GcsBuckets) -> None:
    settings = load_settings()
    take(gcs, settings)

    launched = set_claim_state(gcs.client, settings, KEY, "launched", runner_job_id="job-7")
    loaded = set_claim_state(gcs.client, settings, KEY, "loaded")

    assert launched.state == "launched" and launched.runner_job_id == "job-7"
    assert loaded.state == "loaded" and loaded.runner_job_id == "job-7"
    assert read_claim(gcs.client, settings, KEY) == loaded


def test_set_claim_state_allows_loaded_straight_after_claimed(gcs: GcsBuckets) -> None:
    settings = load_settings()
    take(gcs, settings)

    assert set_claim_state(gcs.client, settings, KEY, "loaded").state == "loaded"


@pytest.mark.parametrize(
    ("path", "target"),
    [(["loaded"], "launched"), (["rejected"], "loaded"), (["launched"], "claimed")],
)
def test_set_claim_state_refuses_illegal_transitions(
    gcs: GcsBuckets, path: list[str], target: str
) -> None:
    settings = load_settings()
    take(gcs, settings)
    for state in path:
        set_claim_state(gcs.client, settings, KEY, state)

    with pytest.raises(ClaimStateError, match=f"cannot move from '{path[-1]}' to '{target}'"):
        set_claim_state(gcs.client, settings, KEY, target)
    assert read_claim(gcs.client, settings, KEY).state == path[-1]


def test_set_claim_state_refuses_unknown_states_fields_and_missing_claims(
    gcs: GcsBuckets,
) -> None:
    settings = load_settings()

    with pytest.raises(ClaimStateError, match="expected a claim to move to 'launched', found none"):
        set_claim_state(gcs.client, settings, KEY, "launched")
    take(gcs, settings)
    with pytest.raises(ClaimStateError, match="expected a state in"):
        set_claim_state(gcs.client, settings, KEY, "done")
    with pytest.raises(ClaimStateError, match=r"found \['holder'\]"):
        set_claim_state(gcs.client, settings, KEY, "launched", holder="me")


def test_set_claim_state_concurrent_writers_lose_no_update(gcs: GcsBuckets) -> None:
    settings = load_settings()
    take(gcs, settings)
    set_claim_state(gcs.client, settings, KEY, "launched", runner_job_id="job-0")
    job_ids = iter([f"job-{i}" for i in range(1, 6)])
    lock = threading.Lock()

    def mark() -> Claim:
        with lock:
            job_id = next(job_ids)
        return set_claim_state(gcs.client, settings, KEY, "launched", runner_job_id=job_id)

    results = run_together(5, mark)

    assert all(isinstance(r, Claim) for r in results), results
    generations = sorted(r.claim_generation for r in results)  # type: ignore[union-attr]
    assert len(set(generations)) == 5  # five successive versions, none overwritten blindly
    final = read_claim(gcs.client, settings, KEY)
    assert final.claim_generation == generations[-1]


def test_release_claim_lets_the_next_delivery_claim_at_once(gcs: GcsBuckets) -> None:
    settings = load_settings()
    first = take(gcs, settings)
    assert first is not None

    assert release_claim(gcs.client, settings, first) is True
    released = read_claim(gcs.client, settings, KEY)
    assert released is not None and released.state == "claimed"
    assert released.is_stale(datetime.now(UTC), settings.claim_lease_seconds)
    second = take(gcs, settings)
    assert second is not None and second.holder != first.holder


def test_release_claim_of_a_claim_that_moved_on_is_refused(gcs: GcsBuckets) -> None:
    settings = load_settings()
    first = take(gcs, settings)
    assert first is not None
    set_claim_state(gcs.client, settings, KEY, "launched", runner_job_id="job-1")

    assert release_claim(gcs.client, settings, first) is False
    assert read_claim(gcs.client, settings, KEY).state == "launched"


def test_claim_from_json_ignores_fields_it_does_not_know() -> None:
    claim = Claim(KEY, "claimed", "landing", "a.csv", 17, "kiva_loans", datetime.now(UTC))
    stored = claim.to_json().replace(b'{"attempt"', b'{"future_field": 1, "attempt"')

    assert Claim.from_json(stored) == claim
    assert replace(claim, state="loaded") != claim


def test_swap_claim_writes_only_over_the_generation_it_read(gcs: GcsBuckets) -> None:
    settings = load_settings()
    take(gcs, settings)
    read = set_claim_state(gcs.client, settings, KEY, "launched")

    first = swap_claim(gcs.client, settings, read, pipeline_attempts=2)
    second = swap_claim(gcs.client, settings, read, pipeline_attempts=2)  # a stale read

    assert first is not None and second is None
    assert read_claim(gcs.client, settings, KEY) == first
    assert first.pipeline_attempts == 2
    with pytest.raises(ClaimStateError, match="cannot move from 'launched' to 'claimed'"):
        swap_claim(gcs.client, settings, first, state="claimed")


def test_claim_objects_carry_their_state_as_metadata(gcs: GcsBuckets) -> None:
    settings = load_settings()
    take(gcs, settings)
    claimed = gcs.pipeline.get_blob(claim_object_name(KEY)).metadata
    set_claim_state(gcs.client, settings, KEY, "loaded")

    [listed] = gcs.client.list_blobs(gcs.pipeline.name, prefix=CLAIMS_PREFIX)

    assert (claimed, listed.metadata) == ({"state": "claimed"}, {"state": "loaded"})


def test_claim_from_json_of_a_claim_stored_before_pipeline_attempts_counts_one() -> None:
    claim = Claim(KEY, "launched", "landing", "a.csv", 17, "kiva_loans", datetime.now(UTC))
    stored = claim.to_json().replace(b', "pipeline_attempts": 1', b"")

    assert b"pipeline_attempts" not in stored
    assert Claim.from_json(stored).pipeline_attempts == 1
