"""Load slots on a real fake-gcs-server: of many takers of one slot, exactly one wins."""

from __future__ import annotations

import concurrent.futures
import time
from typing import TYPE_CHECKING

import pytest

from sluice.warehouse.table_slots import Slot, TableSlots, TableSlotsFull

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

TABLE = "sluice.server_logs"
TAKERS = 10


def slots(gcs: GcsBuckets, *, count: int = 1, lease_seconds: float = 60) -> TableSlots:
    """Slots that give up at once when none is free."""
    return TableSlots(
        gcs.client, gcs.pipeline.name, count=count, lease_seconds=lease_seconds,
        wait_seconds=0, first_delay=0.01,
    )  # fmt: skip


def race_for_one_slot(gcs: GcsBuckets) -> list[Slot | TableSlotsFull]:
    """``TAKERS`` acquires of the one slot of ``TABLE`` at once: each one's Slot or error."""

    def take(_: int) -> Slot | TableSlotsFull:
        try:
            return slots(gcs).acquire(TABLE)
        except TableSlotsFull as exc:
            return exc

    with concurrent.futures.ThreadPoolExecutor(TAKERS) as pool:
        return list(pool.map(take, range(TAKERS)))


def test_table_slots_many_takers_of_a_missing_slot_one_wins(gcs: GcsBuckets) -> None:
    results = race_for_one_slot(gcs)

    assert len([r for r in results if isinstance(r, Slot)]) == 1
    assert all("expected one of 1 free" in str(r) for r in results if not isinstance(r, Slot))


def test_table_slots_many_takers_of_a_lapsed_slot_one_wins(gcs: GcsBuckets) -> None:
    slots(gcs, lease_seconds=0.5).acquire(TABLE)  # a holder that died
    time.sleep(0.6)

    results = race_for_one_slot(gcs)

    assert len([r for r in results if isinstance(r, Slot)]) == 1


def test_table_slots_a_released_slot_is_free_and_a_taken_over_one_is_not_freed(
    gcs: GcsBuckets,
) -> None:
    first = slots(gcs, lease_seconds=0.5).acquire(TABLE)
    slots(gcs).release(first)
    second = slots(gcs, lease_seconds=0.5).acquire(TABLE)  # free again at once
    time.sleep(0.6)
    third = slots(gcs).acquire(TABLE)  # second's lease ran out: taken over

    slots(gcs).release(second)  # too late: must not free third's slot

    with pytest.raises(TableSlotsFull):
        slots(gcs).acquire(TABLE)
    assert (first.index, second.index, third.index) == (0, 0, 0)
