"""The fast lane: a small accepted file is parsed, typed and loaded inside ``on_upload``.

A Dataflow flex template takes minutes to start; a file of a few MB is loaded in about a
second by the same code inside the function that validated it. The door
(``sluice.ingest.door``) sends a file here when its decompressed size, which validation has
just counted, is at most ``settings.fast_lane_max_bytes`` (0: never). Decompressed, because
that is what parsing costs in time and what the tables hold: a 10 MB gzip can be 300 MB of
CSV. A bigger file goes to the pipeline as before.

The work is the pipeline's own (``sluice.ingest.loading``): ``parse_range`` over the whole
file, ``stage_table`` per batch, ``load_staged`` for the one replacing load, the ingestion
record and the claim. Memory holds one chunk of records (``settings.chunk_bytes``) and its
Arrow tables at a time: each batch is staged as it is parsed. The staging directory and job
name are those a pipeline run for this event would use, so the ingestion log reads the same
whichever lane loaded the file.

Exactly once, with the claim protocol of ``sluice.ingest.claims``: the claim stays
``claimed`` until ``load_staged`` settles it ``loaded`` (or ``rejected``/``superseded``).
A delivery that crashes before loading leaves a ``claimed`` claim, which the next delivery
takes over after the lease and loads again from the start (the load replaces the source's
rows, so a partial earlier attempt leaves nothing behind). One that crashes after the load
committed but before settling left its ingestion-log row: a takeover reads that row first and
only settles the claim, so the file is not loaded twice. The lease
(``SLUICE_CLAIM_LEASE_SECONDS``, 900 s) outlasts the function's timeout (540 s), so a
takeover does not race a holder that is still running. Two exceptions load the file a
second time, with the same end state because the load replaces the source's rows: a
retryable failure after the load transaction was submitted releases the claim at once, and
a warehouse transaction still queued when the function is killed may commit after a
takeover has loaded again.
"""

from __future__ import annotations

import logging
import os

from sluice.contracts import Contract
from sluice.errors import MissingTable
from sluice.ingest.chunk_staging import ChunkStager
from sluice.ingest.launch import LaunchRequest
from sluice.ingest.loading import (
    DEAD,
    REJECTED,
    ROWS,
    LoadJob,
    Staged,
    finished_load,
    load_job,
    load_staged,
    parse_range,
    settle_claim,
    stage_table,
)
from sluice.records.splits import WHOLE_FILE
from sluice.schema import IngestionRecord
from sluice.settings import Settings
from sluice.warehouse import connected_warehouse

LOG = logging.getLogger(__name__)


def takes_fast_lane(decompressed_bytes: int, settings: Settings) -> bool:
    """Whether an accepted file of this decompressed size is loaded inside the function."""
    return decompressed_bytes <= settings.fast_lane_max_bytes and settings.fast_lane_max_bytes > 0


def early_stager(request: LaunchRequest, contract: Contract, settings: Settings) -> ChunkStager:
    """The stager that parses and stages a file's first ``fast_lane_max_bytes`` while
    validation reads them (``validate_stream(on_records=...)``): a small file is then read
    and scanned once. Its staging directory is the one ``load_in_function`` loads from."""
    workers = settings.pipeline_workers or os.cpu_count() or 1
    job = load_job(request, contract, settings)
    return ChunkStager(job, workers, limit=settings.fast_lane_max_bytes)


def load_in_function(
    request: LaunchRequest,
    contract: Contract,
    settings: Settings,
    *,
    takeover: bool,
    stager: ChunkStager | None = None,
) -> IngestionRecord:
    """Load one accepted file here and settle its claim; the record. The file is parsed and
    staged now, unless ``stager`` staged all of it while validation read it.

    ``takeover``: the claim was taken over from a delivery that may have loaded already.
    """
    job = load_job(request, contract, settings)
    if takeover:
        earlier = _committed_load(job)
        if earlier is not None:
            LOG.warning(
                "%s: an earlier delivery loaded it (%s) but did not settle its claim",
                job.source.uri, earlier.status,
            )  # fmt: skip
            if stager is not None:
                stager.discard()
            if job.event_key:
                settle_claim(job.settings, job.event_key, earlier)
            return earlier
    if stager is not None and stager.complete:
        staged_rows, staged_dead = stager.staged()
        stager.stop()
        return load_staged(job, staged_rows, staged_dead, rejections=[])
    if stager is not None:
        stager.discard()
    staged: dict[str, Staged] = {ROWS: [], DEAD: []}
    rejections: list[str] = []
    parsed = parse_range(
        job.input, contract, job.source, job.settings, WHOLE_FILE, ingested_at=job.started_at
    )
    for kind, payload in parsed:
        if kind == REJECTED:
            rejections.append(str(payload))
            continue
        one = stage_table(payload, job.staging_dir, kind, job.settings)
        if one is not None:
            staged[kind].append(one)
    return load_staged(job, staged[ROWS], staged[DEAD], rejections)


def _committed_load(job: LoadJob) -> IngestionRecord | None:
    """The ``loaded``/``superseded`` log row of this job, if an earlier delivery wrote one."""
    with connected_warehouse(job.settings) as warehouse:
        try:
            return finished_load(warehouse, job)
        except MissingTable:
            return None  # nothing was ever loaded into this dataset
