"""Parse and stage a file while validation reads it, so a file is read once.

``validate_stream`` hands each chunk of records it has checked to ``ChunkStager.submit``,
whose worker threads parse and stage it (``loading.stage_records``) while validation reads
on. ``sluice ingest`` stages every file this way; ``on_upload`` stages the first
``limit`` decompressed bytes, so that a file the fast lane will load is parsed by the time
validation accepts it, and a bigger one (bound for the pipeline) stops being staged once it
passes the limit. Whoever accepts the staged files loads them (``loading.load_staged``);
whoever does not calls ``discard``.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from sluice.contracts import HeaderMapping
from sluice.ingest import staging
from sluice.ingest.loading import DEAD, ROWS, LoadJob, Staged, stage_records
from sluice.records.chunks import RecordChunk


class ChunkStager:
    """Parses and stages chunks of records on worker threads, up to ``limit`` bytes of file.

    At most two chunks per worker wait or run at a time, so memory holds a few chunks
    (``SLUICE_CHUNK_BYTES`` each), not the file, when validation reads faster than they parse.
    """

    def __init__(self, job: LoadJob, workers: int, limit: int | None = None) -> None:
        self._job = job
        self._limit = limit
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sluice-stage")
        self._slots = threading.BoundedSemaphore(2 * workers)
        self._futures: list[Future[list[tuple[str, tuple[str, int]]]]] = []
        self.complete = True
        """False once a chunk ended past ``limit``: what is staged is not the whole file."""

    def submit(self, chunk: RecordChunk, mapping: HeaderMapping) -> None:
        """Queue one chunk; blocks while every slot is taken. Past ``limit``, stage no more."""
        if not self.complete:
            return
        if self._limit is not None and chunk.byte_offset + len(chunk.data) > self._limit:
            self.complete = False
            return
        self._slots.acquire()
        future = self._pool.submit(stage_records, chunk, mapping, self._job)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def staged(self) -> tuple[Staged, Staged]:
        """Wait for every chunk; the staged (rows, dead letters) files. A worker's error is
        raised here."""
        staged: dict[str, Staged] = {ROWS: [], DEAD: []}
        for future in self._futures:
            for kind, one in future.result():
                staged[kind].append(one)
        return staged[ROWS], staged[DEAD]

    def stop(self) -> None:
        """Start no more chunks and wait for those under way (a chunk parses in under a
        second): after this nothing more is staged."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def discard(self) -> None:
        """Stop, and remove whatever was staged: nobody will load it."""
        self.stop()
        staging.remove_tree(self._job.staging_dir, self._job.settings)
