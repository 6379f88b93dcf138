"""The two designs the burst benchmark compares, each run on the model's simulated clock.

``OneJobPerFile`` is the design before batches and the fast lane: ``on_upload`` validates a
file and launches a Dataflow job for it; past the job quota the launch fails, the function
answers 500 and Eventarc redelivers with backoff. Each job loads its file with one
DELETE+INSERT transaction into the table, retrying while BigQuery refuses it.

``LanesAndBatches`` is the current one, deciding with the project's own code: a file that
``takes_fast_lane`` is loaded inside ``on_upload``; a bigger one is queued as a ``Member``
and ``plan_batches`` (with ``Settings`` defaults) cuts the queue into batches, a full one
launched by the ``on_upload`` call that filled it, a partial one by the flush tick once its
first file has waited; at most ``dataflow_max_jobs`` jobs run, and a waiting batch is
launched as a job ends. A batch job loads its files one after another, each transaction
holding one of the table's ``table_load_slots``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.burst_model import (
    DATAFLOW_START_SECONDS,
    FAST_LANE_BYTES_PER_SECOND,
    FUNCTION_OVERHEAD_SECONDS,
    LAUNCHER_VM_SECONDS,
    VALIDATE_BYTES_PER_SECOND,
    WORKER_BYTES_PER_SECOND,
    Clock,
    DmlTable,
    Functions,
    Ledger,
    LoadSlots,
    dml_seconds,
)
from sluice.ingest.batch_plan import Member, plan_batches
from sluice.ingest.fast_lane import takes_fast_lane
from sluice.settings import Settings

HOUR_START = datetime(2026, 1, 1, tzinfo=UTC)
"""Simulated time 0, the top of the hour: ``plan_batches`` reads real datetimes."""
DATASET = "server_logs"
LANDING_BUCKET = "landing"


@dataclass(frozen=True)
class Drop:
    """One file landing: its event key, when (seconds into the burst) and its size."""

    key: str
    at: float
    size: int


class World:
    """What both designs share: the clock, the ledger, the function instances, the table,
    and Dataflow jobs that load their files one after another."""

    label = ""

    def __init__(self, drops: Sequence[Drop], settings: Settings, seed: int) -> None:
        self.settings = settings
        self.sizes = {drop.key: drop.size for drop in drops}
        self.clock = Clock()
        self.ledger = Ledger(dropped_at={drop.key: drop.at for drop in drops})
        self.rng = random.Random(seed)
        self.functions = Functions(self.clock, self.ledger)
        self.table = DmlTable(self.clock, self.ledger, self.rng)
        for drop in drops:
            self.clock.at(drop.at, lambda key=drop.key: self.functions.deliver(key, self.on_upload))

    def run(self) -> Ledger:
        """Play the burst out to its last event; the ledger."""
        self.clock.run()
        return self.ledger

    def on_upload(self, key: str, finished: Callable[[bool], None]) -> None:
        """Handle one delivery; call ``finished(ok)`` when the function returns."""
        raise NotImplementedError

    def load(self, key: str, then: Callable[[], None]) -> None:
        """Run ``key``'s replacing transaction; ``then`` after it commits."""

        def committed() -> None:
            self.ledger.loaded(key, self.clock.now)
            then()

        self.table.load(dml_seconds(self.sizes[key]), committed)

    def start_job(self, keys: Sequence[str], ended: Callable[[], None]) -> None:
        """Create a Dataflow job loading ``keys`` in order; ``ended`` once it is done."""
        self.ledger.job_started()
        self.ledger.launcher_seconds += LAUNCHER_VM_SECONDS
        workers_from = self.clock.now + LAUNCHER_VM_SECONDS
        remaining = list(keys)

        def next_file() -> None:
            if not remaining:
                self.ledger.active_jobs -= 1
                self.ledger.worker_seconds += self.clock.now - workers_from
                ended()
                return
            key = remaining.pop(0)
            parse = self.sizes[key] / WORKER_BYTES_PER_SECOND
            self.clock.after(parse, lambda: self.load(key, next_file))

        self.clock.after(self.rng.uniform(*DATAFLOW_START_SECONDS), next_file)

    def validation_seconds(self, key: str) -> float:
        """``on_upload``'s fixed work plus streaming validation of the file."""
        return FUNCTION_OVERHEAD_SECONDS + self.sizes[key] / VALIDATE_BYTES_PER_SECOND


class OneJobPerFile(World):
    """The old design: a job per file, launched on its event; Eventarc retries past quota."""

    label = "old: a job per file"

    def on_upload(self, key: str, finished: Callable[[bool], None]) -> None:
        """Validate, then launch; a launch refused by the quota is a 500 (retry)."""
        self.clock.after(self.validation_seconds(key), lambda: finished(self.launch(key)))

    def launch(self, key: str) -> bool:
        """Ask Dataflow for a job for ``key``; whether it was created."""
        self.ledger.launch_attempts += 1
        if self.ledger.active_jobs >= self.settings.dataflow_max_jobs:
            return False  # "Dataflow quota error for jobs-per-project quota"
        self.start_job([key], ended=lambda: None)
        return True


class LanesAndBatches(World):
    """The new design: the fast lane in the function, batches of bigger files on Dataflow."""

    label = "new: fast lane + batches"

    def __init__(self, drops: Sequence[Drop], settings: Settings, seed: int) -> None:
        self.slots = LoadSlots(settings.table_load_slots)
        self.queue: list[Member] = []
        self.waiting: list[list[Member]] = []
        self.tick_scheduled = False
        super().__init__(drops, settings, seed)

    def on_upload(self, key: str, finished: Callable[[bool], None]) -> None:
        """Validate, then load here (fast lane) or queue for a batch."""
        size = self.sizes[key]
        if takes_fast_lane(size, self.settings):
            parsed = self.validation_seconds(key) + size / FAST_LANE_BYTES_PER_SECOND
            self.clock.after(parsed, lambda: self.load(key, lambda: finished(True)))
            return

        def queued() -> None:
            self.queue_file(key)
            finished(True)

        self.clock.after(self.validation_seconds(key), queued)

    def load(self, key: str, then: Callable[[], None]) -> None:
        """The transaction, inside one of the table's load slots."""

        def released() -> None:
            self.slots.release()
            then()

        self.slots.acquire(lambda: World.load(self, key, released))

    def queue_file(self, key: str) -> None:
        """Queue ``key`` as a batch member, then flush inline (a full batch launches now)."""
        name = key.removeprefix(f"{LANDING_BUCKET}/").split("#")[0]
        member = Member(key, DATASET, LANDING_BUCKET, name, 1, self.sizes[key], self.now())
        self.queue.append(member)
        self.flush(inline=True)

    def flush(self, *, inline: bool = False) -> None:
        """Cut the due batches off the queue (``plan_batches``: full ones only when
        ``inline``, as ``on_upload``'s flush), launch what the budget allows, and make sure a
        tick comes for what is left."""
        due = plan_batches(self.queue, self.settings, self.now(), full_only=inline)
        taken = {member.event_key for batch in due for member in batch}
        self.queue = [member for member in self.queue if member.event_key not in taken]
        self.waiting.extend(due)
        self.launch_waiting()
        if (self.queue or self.waiting) and not self.tick_scheduled:
            interval = self.settings.flush_interval_seconds
            self.tick_scheduled = True
            self.clock.at((math.floor(self.clock.now / interval) + 1) * interval, self.tick)

    def tick(self) -> None:
        """The scheduled ``flush`` (every ``flush_interval_seconds``, on the minute)."""
        self.tick_scheduled = False
        self.flush()

    def launch_waiting(self) -> None:
        """Launch waiting batches, oldest first, while the job budget allows."""
        while self.waiting and self.ledger.active_jobs < self.settings.dataflow_max_jobs:
            batch = self.waiting.pop(0)
            self.ledger.launch_attempts += 1
            self.start_job([member.event_key for member in batch], ended=self.launch_waiting)

    def now(self) -> datetime:
        """The simulated time as the datetime ``plan_batches`` compares."""
        return HOUR_START + timedelta(seconds=self.clock.now)


DESIGNS: tuple[type[World], ...] = (OneJobPerFile, LanesAndBatches)
