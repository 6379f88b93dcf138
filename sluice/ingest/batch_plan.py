"""Which queued files share one pipeline job: the batching rule, with no storage in it.

A file bound for the pipeline (too big for the fast lane) is queued as a ``Member`` of its
batch group (one contract, and test files apart from production ones, because a job loads
one warehouse dataset). ``plan_batches`` cuts a group's queue, oldest first, into batches of
at most ``settings.batch_max_files`` files and ``settings.batch_max_bytes`` decompressed
bytes (a single bigger file is a batch of its own). Every full batch is due at once; the
last, partial one is due when its oldest file has waited ``settings.batch_max_age_seconds``
and a scheduled flush runs (every minute in the cloud: the stragglers of that minute share
a job), never at the flush that follows a file's queueing.

A batch is named by its members: ``batch_id`` hashes their sorted event keys, and the job
name comes from the id, so two flushes of the same batch (a retry, a duplicate tick, two
functions that both saw it fill) ask Dataflow for the same job name and, while the first
runs, the second gets 409.

``sluice.ingest.batches`` keeps the queue and the batches in the pipeline bucket; the burst
benchmark (``bench/burst_bench.py``) runs this same rule on a simulated clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sluice.schema import SourceRef, job_name_for
from sluice.settings import Settings


@dataclass(frozen=True)
class Member:
    """One accepted file waiting for (or in) a batch: what its job needs to load it."""

    event_key: str
    dataset: str
    bucket: str
    name: str
    generation: int
    bytes: int
    """Decompressed size, as validation counted it."""
    queued_at: datetime
    test: bool = False
    split_index: str | None = None
    """``gs://`` URI of the split points validation stored, if any."""

    @property
    def group(self) -> str:
        """The batch group: the dataset, with test files in a group of their own."""
        return f"{self.dataset}.test" if self.test else self.dataset

    def to_dict(self) -> dict[str, object]:
        """The stored form (JSON-ready)."""
        return {**asdict(self), "queued_at": self.queued_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Member:
        """Rebuild a member from its stored form."""
        known = {name: value for name, value in data.items() if name in cls.__dataclass_fields__}
        known["queued_at"] = datetime.fromisoformat(str(data["queued_at"]))
        return cls(**known)  # type: ignore[arg-type]  (a newer writer's fields are left out)


def plan_batches(
    queue: Sequence[Member],
    settings: Settings,
    now: datetime,
    *,
    force: bool = False,
    full_only: bool = False,
) -> list[list[Member]]:
    """The batches due now, oldest first; ``force`` makes the partial last one due too,
    ``full_only`` never (``on_upload``'s flush: the scheduled one decides by age)."""
    batches: list[list[Member]] = []
    current: list[Member] = []
    size = 0
    for member in sorted(queue, key=lambda m: (m.queued_at, m.event_key)):
        too_big = current and size + member.bytes > settings.batch_max_bytes
        if too_big or len(current) >= settings.batch_max_files:
            batches.append(current)
            current, size = [], 0
        current.append(member)
        size += member.bytes
    if current:
        full = len(current) >= settings.batch_max_files or size >= settings.batch_max_bytes
        waited = now - current[0].queued_at >= timedelta(seconds=settings.batch_max_age_seconds)
        if full or force or (waited and not full_only):
            batches.append(current)
    return batches


def batch_id(members: Iterable[Member]) -> str:
    """The batch's name, from its members' event keys: the same members, the same id."""
    keys = "\n".join(sorted(member.event_key for member in members))
    return hashlib.sha256(keys.encode()).hexdigest()[:20]


def batch_job_name(dataset: str, batch: str) -> str:
    """The job name of batch ``batch``: deterministic, so a second flush gets 409."""
    return job_name_for(dataset, SourceRef(f"batch:{batch}", 0))
