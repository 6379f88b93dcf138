"""Load slots: a small semaphore per warehouse table, kept as objects in the pipeline bucket.

BigQuery runs 2 mutating DML statements per table and queues 20; the next one is refused
("Too many DML statements outstanding"). Function instances and Dataflow jobs load at once,
so before its transaction a BigQuery load holds one of ``count`` slots of every table the
transaction changes: the objects ``table-slots/<dataset>.<table>/<i>.json``, ``i`` below
``count`` (``SLUICE_TABLE_LOAD_SLOTS``). A slot is free when its object is missing or its
``held_until`` has passed. Taking one is a write with a precondition, as claims are
(``sluice.ingest.claims``): ``if_generation_match=0`` creates a missing one, the listed
generation takes over a free one, so of two takers only one wins. Releasing is the same
compare-and-swap, writing ``held_until`` long past; not a delete, because fake-gcs-server
ignores preconditions on delete and a blind delete could drop a slot someone took since.

A holder that dies keeps its slot until ``held_until``, the lease it wrote, which the
adapter makes longer than its longest load. Every slot's lease is in its object's metadata,
so one listing shows which are free. Slots are taken in table-name order, so two loads never
each hold what the other waits for. When no slot frees up within ``wait_seconds`` (jittered
exponential backoff), ``TableSlotsFull`` (a ``TransientError``) lets the platform retry.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sluice.errors import TransientError
from sluice.gcs import gcs_faults

if TYPE_CHECKING:
    from google.cloud import storage

log = logging.getLogger(__name__)

SLOTS_PREFIX = "table-slots/"
HELD_UNTIL = "held_until"
"""Custom metadata key (and JSON field) with the end of a slot's lease, ISO 8601."""
RELEASED_AT = datetime(1970, 1, 1, tzinfo=UTC)
"""``held_until`` of a released slot: free for any taker."""


class TableSlotsFull(TransientError):
    """Every load slot of a table stayed held for as long as a load may wait: retry later."""


@dataclass(frozen=True)
class Slot:
    """One slot this process holds: the object it wrote, and that object's generation."""

    table: str
    index: int
    holder: str
    generation: int


class TableSlots:
    """``count`` load slots per table in ``bucket``, each taken for ``lease_seconds`` at most."""

    def __init__(
        self,
        client: storage.Client,
        bucket: str,
        *,
        count: int,
        lease_seconds: float,
        wait_seconds: float,
        first_delay: float,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.count = count
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        """How long ``acquire`` waits for a free slot before raising ``TableSlotsFull``."""
        self.first_delay = first_delay
        """The first backoff while every slot is held; it doubles, up to 32 times this."""

    @contextmanager
    def held(self, tables: Iterable[str]) -> Iterator[None]:
        """Hold a slot of every table (``dataset.table``) inside the block; release them after,
        on failure too."""
        with ExitStack() as stack:
            for table in sorted(set(tables)):  # one order for every load: no waiting in a cycle
                slot = self.acquire(table)
                stack.callback(self.release, slot)
            yield

    def acquire(self, table: str) -> Slot:
        """Take a free slot of ``table``, waiting with jittered backoff up to ``wait_seconds``."""
        deadline = time.monotonic() + self.wait_seconds
        delay = self.first_delay
        while True:
            slot, first_lease_end = self._take_free(table)
            if slot is not None:
                return slot
            # Full jitter: loads that found the table full together do not look again together.
            pause = random.uniform(0, delay)
            if time.monotonic() + pause > deadline:
                raise TableSlotsFull(
                    f"load slots of {table}: expected one of {self.count} free within"
                    f" {self.wait_seconds:g} s, found all {self.count} held"
                    f" (the first lease ends at {first_lease_end.isoformat()}); retry later"
                )
            log.info("every load slot of %s is held, looking again in %.2f s", table, pause)
            time.sleep(pause)
            delay = min(delay * 2, self.first_delay * 32)

    def release(self, slot: Slot) -> None:
        """Free ``slot`` unless someone took it over (our lease ran out first).

        A Cloud Storage fault is logged, not raised: the load's own outcome matters more,
        and the slot frees itself when its lease ends."""
        from google.api_core.exceptions import PreconditionFailed

        try:
            self._write(slot.table, slot.index, slot.holder, RELEASED_AT, slot.generation)
        except PreconditionFailed:
            log.warning(
                "load slot %d of %s was taken over before its release: the load outlived its"
                " lease of %g s",
                slot.index, slot.table, self.lease_seconds,
            )  # fmt: skip
        except TransientError as exc:
            log.warning(
                "load slot %d of %s stays held until its lease ends: %s",
                slot.index, slot.table, exc,
            )  # fmt: skip

    def _take_free(self, table: str) -> tuple[Slot | None, datetime]:
        """A slot of ``table`` taken now (None when all are held), and when the first lease
        of the others ends."""
        from google.api_core.exceptions import PreconditionFailed

        now = datetime.now(UTC)
        with gcs_faults(f"listing load slots of {table}"):
            listed = self.client.list_blobs(self.bucket, prefix=f"{SLOTS_PREFIX}{table}/")
            generations = {blob.name: (blob.generation, _held_until(blob)) for blob in listed}
        free: list[tuple[int, int, datetime]] = []  # generation 0: no object yet
        leases: list[datetime] = []
        for index in range(self.count):
            generation, held_until = generations.get(_slot_name(table, index), (0, RELEASED_AT))
            if held_until <= now:
                free.append((index, generation, held_until))
            else:
                leases.append(held_until)
        first_lease_end = min(leases, default=now)
        holder = uuid.uuid4().hex
        our_lease_end = now + timedelta(seconds=self.lease_seconds)
        # In random order, so that loads taking slots at once mostly try different ones.
        for index, generation, lapsed in random.sample(free, len(free)):
            try:
                written = self._write(table, index, holder, our_lease_end, generation)
            except PreconditionFailed:
                # Another load took it first. (Or our own write, retried by the client after
                # a lost reply: that slot then stays held until its lease ends.)
                continue
            if lapsed != RELEASED_AT:
                log.warning(
                    "took over load slot %d of %s: its holder's lease ended %s without a"
                    " release (the holder died)",
                    index, table, lapsed.isoformat(),
                )  # fmt: skip
            return Slot(table, index, holder, written), first_lease_end
        return None, first_lease_end

    def _write(
        self, table: str, index: int, holder: str, held_until: datetime, if_generation_match: int
    ) -> int:
        """Write slot ``index`` of ``table`` under the precondition; the new generation."""
        blob = self.client.bucket(self.bucket).blob(_slot_name(table, index))
        blob.metadata = {HELD_UNTIL: held_until.isoformat()}
        body = {"table": table, "holder": holder, HELD_UNTIL: held_until.isoformat()}
        with gcs_faults(f"writing load slot {index} of {table}"):
            blob.upload_from_string(
                json.dumps(body, sort_keys=True),
                content_type="application/json",
                if_generation_match=if_generation_match,
            )
        return int(blob.generation)


def _slot_name(table: str, index: int) -> str:
    return f"{SLOTS_PREFIX}{table}/{index}.json"


def _held_until(blob: storage.Blob) -> datetime:
    """The end of the listed slot's lease (a slot written without one is free)."""
    value = (blob.metadata or {}).get(HELD_UNTIL)
    return datetime.fromisoformat(value) if value else RELEASED_AT
