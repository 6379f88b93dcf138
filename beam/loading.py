"""The "Load warehouse" step: per file, one replacing load of its staged files, then its log row.

It runs once, after all staging, so the warehouse sees each file whole in one transaction or
not at all; a batch job's files load one after another. What it loads arrives as ONE side
input of ``(file number, kind, payload)`` triples (staged rows and dead letters as ``(path,
rows)``, rejections as reasons): on runners
that compute each side input from scratch (Beam's DaskRunner does), three side inputs would
parse the file three times. The load itself, the ingestion record, settling the claim and
removing the staging are ``sluice.ingest.loading.load_staged``: the fast lane
(``sluice.ingest.fast_lane``) loads small files inside the function with the same call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import AsList, PBegin, PCollection

from sluice.contracts import Contract
from sluice.ingest.loading import DEAD, REJECTED, ROWS, LoadJob, load_staged
from sluice.schema import IngestionRecord, SourceRef
from sluice.settings import Settings

LOG = logging.getLogger(__name__)


class LoadWarehouseFn(beam.DoFn):
    """Load every staged file in one replacing transaction and write the ingestion record."""

    def __init__(
        self,
        contract: Contract,
        source: SourceRef,
        settings: Settings,
        *,
        job_name: str,
        started_at: datetime,
        staging_dir: str,
        event_key: str | None = None,
        input_path: str | None = None,
    ) -> None:
        self._job = LoadJob(
            contract,
            source,
            settings,
            job_name=job_name,
            started_at=started_at,
            staging_dir=staging_dir,
            event_key=event_key,
            input_path=input_path,
        )

    def process(
        self,
        _trigger: object,
        staged_rows: list[tuple[str, int]],
        staged_dead: list[tuple[str, int]],
        rejections: list[str],
    ) -> Iterator[IngestionRecord]:
        """Runs once, after all staging: the arguments hold every staged file."""
        yield load_staged(self._job, staged_rows, staged_dead, rejections)


class LoadEverythingStagedFn(beam.DoFn):
    """Every file's ``LoadWarehouseFn``, one after another, fed by one side input of
    ``(file number, kind, payload)`` triples.

    One after another: a batch job's files load into one table, and BigQuery runs at most 2
    mutating DML statements per table (20 more queued), so a job keeps one in flight."""

    def __init__(self, loads: Sequence[LoadWarehouseFn]) -> None:
        self._loads = list(loads)

    def process(
        self, trigger: object, staged: list[tuple[int, str, Any]]
    ) -> Iterator[IngestionRecord]:
        """Split what was staged by file and kind, and load each file."""
        by_file: dict[int, list[tuple[str, Any]]] = {n: [] for n in range(len(self._loads))}
        for number, kind, payload in staged:
            by_file[number].append((kind, payload))
        failed: list[Exception] = []
        for number, load in enumerate(self._loads):
            try:
                records = list(load.process(trigger, *split_staged(by_file[number])))
            except Exception as exc:  # the batch's other files still load
                LOG.error("load of file %d of the job failed: %s", number, exc, exc_info=True)
                failed.append(exc)
                continue
            yield from records
        if failed:
            # Beam retries the bundle: a file loaded already finds its log row and is not
            # loaded twice (sluice.ingest.loading); the sweep relaunches what stays unsettled.
            raise failed[0]


def split_staged(
    staged: Iterable[tuple[str, Any]],
) -> tuple[list[tuple[str, int]], list[tuple[str, int]], list[str]]:
    """``(kind, payload)`` pairs -> (staged rows, staged dead letters, rejection reasons)."""
    by_kind: dict[str, list[Any]] = {ROWS: [], DEAD: [], REJECTED: []}
    for kind, payload in staged:
        by_kind[kind].append(payload)
    return by_kind[ROWS], by_kind[DEAD], by_kind[REJECTED]


class IngestionRecords(beam.PTransform):
    """One ingestion record per file, each written after loading that file's staged files."""

    def __init__(
        self,
        loads: Sequence[LoadWarehouseFn],
        staged: Sequence[tuple[PCollection, PCollection, PCollection]],
    ) -> None:
        """``staged``: each file's staged rows, staged dead letters and rejections, in the
        order of ``loads``."""
        super().__init__()
        self._loads = loads
        self._staged = staged

    def expand(self, root: PBegin) -> PCollection:
        many = len(self._staged) > 1
        tagged_all = []
        for number, (rows, dead, rejected) in enumerate(self._staged):
            suffix = f" {number}" if many else ""
            tagged_all += [
                rows | f"Tag rows{suffix}" >> beam.Map(numbered, number, ROWS),
                dead | f"Tag dead letters{suffix}" >> beam.Map(numbered, number, DEAD),
                rejected | f"Tag rejections{suffix}" >> beam.Map(numbered, number, REJECTED),
            ]
        staged = tuple(tagged_all) | "Everything staged" >> beam.Flatten()
        return (
            root
            | "Once" >> beam.Create([None])
            | "Load staged files" >> beam.ParDo(LoadEverythingStagedFn(self._loads), AsList(staged))
        )


def numbered(payload: Any, number: int, kind: str) -> tuple[int, str, Any]:
    """``payload`` of file ``number`` as a ``(number, kind, payload)`` triple."""
    return number, kind, payload
