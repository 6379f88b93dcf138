"""The burst benchmark's world on a simulated clock: Eventarc, ``on_upload`` instances,
Dataflow's job quota, one BigQuery table's DML queue, and the bill at list price.

Every modelled number is a named constant saying where it comes from; "assumption" marks
one for which no source was found. ``bench/burst_bench.py`` runs the old and the new design
in this world; nothing here sleeps, and every draw comes from a seeded ``random.Random``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# The burst.
LOG_ROW_BYTES = 217
"""Bytes per server-log line (README, Scale on paper: 864 M rows make 187 GB a day)."""
TYPICAL_FILE_BYTES = 36_000 * LOG_ROW_BYTES
"""One host's hourly access log: 10,000 requests/s over 1,000 hosts is 36,000 lines an hour
per host, 7.8 MB: under ``fast_lane_max_bytes``."""
BIG_FILE_BYTES = 200 * 10**6
"""The big-file scenario: 200 MB per host and hour, past the 64 MiB fast lane (assumption)."""
FILE_SIZE_SPREAD = 0.2
"""Each file is drawn within ±20% of its scenario's size: hosts differ (assumption)."""
BURST_WINDOW_SECONDS = 60.0
"""Every host rotates its log within the first minute of the hour."""

# Eventarc: https://cloud.google.com/eventarc/docs/retry-events
EVENTARC_FIRST_BACKOFF = 10.0
EVENTARC_MAX_BACKOFF = 600.0
"""A refused event comes back after at least 10 s, growing with each failure to 600 s. The
page does not give the growth; doubling is an assumption."""
EVENTARC_RETENTION_SECONDS = 24 * 3600.0
"""Eventarc keeps an undelivered event 24 h; past that the file counts as lost here (the
cook's reconciliation would find it, but that is not this model)."""

# on_upload (infra/functions.tf, infra/variables.tf).
UPLOAD_MAX_INSTANCES = 10
"""``upload_max_instances``, one request per instance: an 11th delivery is refused (429) and
redelivered by Eventarc."""
FUNCTION_VCPUS = 1.0
FUNCTION_GIB = 1.0
"""``available_cpu = "1"``, ``available_memory = "1Gi"``."""
FUNCTION_OVERHEAD_SECONDS = 0.5
"""Claim, contract and the launch or queue call, per delivery (assumption)."""
VALIDATE_BYTES_PER_SECOND = 150e6
"""Streaming validation from Cloud Storage (README, Scale on paper: "plan on 100-200 MB/s")."""
FAST_LANE_BYTES_PER_SECOND = 18e6
"""Parse and stage in the function (README, the fast lane: server_logs warm, 18 MB/s on one
contended core)."""

# Dataflow.
DATAFLOW_START_SECONDS = (180.0, 480.0)
"""A flex-template job's start-up, drawn uniformly: 3 to 8 minutes (README, Scale on paper)."""
LAUNCHER_VM_SECONDS = 150.0
"""The first part of start-up runs on the launcher VM (boot, pull the template image, build
the graph); the workers boot after it (assumption)."""
WORKER_BYTES_PER_SECOND = 80e6
"""Parse, type and stage per worker vCPU (README, Scale on paper: about 80 MB/s per vCPU)."""
WORKER_VCPUS = 1
WORKER_MEMORY_GB = 3.75
"""One n1-standard-1 worker per job, Dataflow's default batch machine (README). A job parses
a file in seconds, so autoscaling is assumed to stay at one worker."""

# BigQuery: one table, the one every load changes (ingestion_log, or the processed table).
DML_RUNNING = 2
DML_QUEUED = 20
"""Mutating DML per table: 2 running and 20 queued; the 23rd is refused ("Too many DML
statements outstanding"): https://cloud.google.com/bigquery/docs/data-manipulation-language
(UPDATE, DELETE, MERGE DML concurrency), as README and ``sluice/warehouse/table_slots.py``
state it."""
DML_FIXED_SECONDS = 20.0
DML_BYTES_PER_SECOND = 50e6
"""A load's DELETE+INSERT transaction holds its place for 20 s plus its bytes at 50 MB/s:
20.2 s for a typical file, 24 s for a big one (assumption, inside README's "~30 s a
transaction" and "30-90 s" for 2.3 GB)."""
DML_RETRY_FIRST_SECONDS = 1.0
DML_RETRY_MAX_SECONDS = 32.0
"""A refused transaction retries with full jitter from 1 s, doubling to 32 s (the BigQuery
adapter's ``busy_delay``, ``sluice/warehouse/bigquery.py``)."""

# List prices, USD, us-central1.
DATAFLOW_VCPU_HOUR = 0.056
DATAFLOW_GB_HOUR = 0.003557
"""Dataflow batch worker vCPU and memory (README, Scale on paper; the pricing page,
https://cloud.google.com/dataflow/pricing, was found but its stored copy shows no rates)."""
LAUNCHER_VM_HOUR = 0.0475
"""The launcher VM as an n1-standard-1 at Compute Engine's on-demand price (assumption)."""
FUNCTION_VCPU_SECOND = 0.000024
FUNCTION_GIB_SECOND = 0.0000025
FUNCTION_REQUEST = 0.40 / 10**6
"""Cloud Functions gen2 bills as Cloud Run, CPU allocated during requests, Tier 1
(https://cloud.google.com/run/pricing); free tier left out."""
BURSTS_PER_DAY = 24
"""One burst an hour."""


class Clock:
    """A discrete-event simulation clock: actions run in time order, ties in call order."""

    def __init__(self) -> None:
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` at simulated time ``when``."""
        heapq.heappush(self._events, (max(when, self.now), next(self._order), action))

    def after(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` ``delay`` seconds from now."""
        self.at(self.now + delay, action)

    def run(self) -> None:
        """Run every action, including those scheduled on the way, until none is left."""
        while self._events:
            self.now, _, action = heapq.heappop(self._events)
            action()


@dataclass
class Ledger:
    """What a design did to the files, the quota and the bill during one burst."""

    dropped_at: dict[str, float]
    loads: dict[str, int] = field(default_factory=dict)
    queryable_at: dict[str, float] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    jobs_created: int = 0
    launch_attempts: int = 0
    active_jobs: int = 0
    peak_jobs: int = 0
    deliveries: int = 0
    refused_deliveries: int = 0
    dml_refused: int = 0
    peak_dml_outstanding: int = 0
    function_seconds: float = 0.0
    worker_seconds: float = 0.0
    launcher_seconds: float = 0.0

    def loaded(self, key: str, now: float) -> None:
        """A load of ``key`` committed: its rows answer queries from now on."""
        self.loads[key] = self.loads.get(key, 0) + 1
        self.queryable_at.setdefault(key, now)

    def job_started(self) -> None:
        """A Dataflow job was created."""
        self.jobs_created += 1
        self.active_jobs += 1
        self.peak_jobs = max(self.peak_jobs, self.active_jobs)


class Functions:
    """``on_upload``'s instances behind Eventarc: a delivery takes a free instance or is
    refused and comes back with backoff, until the event's retention runs out."""

    def __init__(self, clock: Clock, ledger: Ledger, instances: int = UPLOAD_MAX_INSTANCES):
        self.clock = clock
        self.ledger = ledger
        self.free = instances

    def deliver(self, key: str, handler: Callable[[str, Callable[[bool], None]], None]) -> None:
        """Deliver ``key``'s event now and again until ``handler`` reports success."""
        self._attempt(key, handler, 0)

    def _attempt(self, key: str, handler: Callable, failures: int) -> None:
        self.ledger.deliveries += 1
        if self.free == 0:
            self.ledger.refused_deliveries += 1
            self._redeliver(key, handler, failures)
            return
        self.free -= 1
        started = self.clock.now

        def finished(ok: bool) -> None:
            self.free += 1
            self.ledger.function_seconds += self.clock.now - started
            if not ok:
                self._redeliver(key, handler, failures)

        handler(key, finished)

    def _redeliver(self, key: str, handler: Callable, failures: int) -> None:
        delay = min(EVENTARC_FIRST_BACKOFF * 2**failures, EVENTARC_MAX_BACKOFF)
        if self.clock.now + delay > self.ledger.dropped_at[key] + EVENTARC_RETENTION_SECONDS:
            self.ledger.lost.add(key)
            return
        self.clock.after(delay, lambda: self._attempt(key, handler, failures + 1))


class DmlTable:
    """One BigQuery table's mutating DML: ``DML_RUNNING`` run, ``DML_QUEUED`` wait in order,
    the next is refused and retried by its caller with the adapter's jittered backoff."""

    def __init__(self, clock: Clock, ledger: Ledger, rng: random.Random) -> None:
        self.clock = clock
        self.ledger = ledger
        self.rng = rng
        self.running = 0
        self.pending: deque[tuple[float, Callable[[], None]]] = deque()

    def load(self, seconds: float, committed: Callable[[], None], retries: int = 0) -> None:
        """Submit a transaction of ``seconds``; ``committed`` runs when it commits."""
        if self.running + len(self.pending) >= DML_RUNNING + DML_QUEUED:
            self.ledger.dml_refused += 1
            ceiling = min(DML_RETRY_FIRST_SECONDS * 2**retries, DML_RETRY_MAX_SECONDS)
            wait = self.rng.uniform(0, ceiling)
            self.clock.after(wait, lambda: self.load(seconds, committed, retries + 1))
            return
        self.pending.append((seconds, committed))
        self._start_next()
        outstanding = self.running + len(self.pending)
        self.ledger.peak_dml_outstanding = max(self.ledger.peak_dml_outstanding, outstanding)

    def _start_next(self) -> None:
        while self.running < DML_RUNNING and self.pending:
            seconds, committed = self.pending.popleft()
            self.running += 1
            self.clock.after(seconds, lambda done=committed: self._finish(done))

    def _finish(self, committed: Callable[[], None]) -> None:
        self.running -= 1
        self._start_next()
        committed()


class LoadSlots:
    """Sluice's load slots of the table (``sluice/warehouse/table_slots.py``): at most
    ``count`` loads hold one; the rest wait, first come first served (the real one polls
    with backoff for up to 15 minutes, which no run here comes near)."""

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiting: deque[Callable[[], None]] = deque()

    def acquire(self, then: Callable[[], None]) -> None:
        """Run ``then`` once a slot is held."""
        if self.free:
            self.free -= 1
            then()
        else:
            self.waiting.append(then)

    def release(self) -> None:
        """Give a slot back, to the longest waiter if any."""
        if self.waiting:
            self.waiting.popleft()()
        else:
            self.free += 1


def dml_seconds(size: int) -> float:
    """How long one file's replacing transaction holds its place in the table's queue."""
    return DML_FIXED_SECONDS + size / DML_BYTES_PER_SECOND


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def bill(ledger: Ledger) -> dict[str, float]:
    """One burst's vCPU-hours and dollars, by what ran."""
    worker_hours = ledger.worker_seconds / 3600
    launcher_hours = ledger.launcher_seconds / 3600
    function_seconds = ledger.function_seconds
    worker_hour = WORKER_VCPUS * DATAFLOW_VCPU_HOUR + WORKER_MEMORY_GB * DATAFLOW_GB_HOUR
    dollars = {
        "dataflow workers": worker_hours * worker_hour,
        "launcher VMs": launcher_hours * LAUNCHER_VM_HOUR,
        "functions": function_seconds
        * (FUNCTION_VCPUS * FUNCTION_VCPU_SECOND + FUNCTION_GIB * FUNCTION_GIB_SECOND)
        + (ledger.deliveries - ledger.refused_deliveries) * FUNCTION_REQUEST,
    }
    vcpu_hours = (
        worker_hours * WORKER_VCPUS + launcher_hours + function_seconds * FUNCTION_VCPUS / 3600
    )
    return {"vcpu_hours": vcpu_hours, "dollars": sum(dollars.values()), **dollars}
