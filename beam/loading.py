"""The "Load warehouse" step: one replacing load of every staged file, then the log row.

It runs once per file, after all staging, so the warehouse sees the whole file in one
transaction or nothing. What it loads arrives as ONE side input of ``(kind, payload)``
pairs (staged rows and dead letters as ``(path, rows)``, rejections as reasons): on runners
that compute each side input from scratch (Beam's DaskRunner does), three side inputs would
parse the file three times. The load itself, the ingestion record, settling the claim and
removing the staging are ``sluice.ingest.loading.load_staged``: the fast lane
(``sluice.ingest.fast_lane``) loads small files inside the function with the same call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import AsList, PBegin, PCollection

from beam.transforms import tagged
from sluice.contracts import Contract
from sluice.ingest.loading import DEAD, REJECTED, ROWS, LoadJob, load_staged
from sluice.schema import IngestionRecord, SourceRef
from sluice.settings import Settings


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
    """``LoadWarehouseFn`` fed by one side input of ``(kind, payload)`` pairs."""

    def __init__(self, load: LoadWarehouseFn) -> None:
        self._load = load

    def process(self, trigger: object, staged: list[tuple[str, Any]]) -> Iterator[IngestionRecord]:
        """Split what was staged by kind and load it."""
        yield from self._load.process(trigger, *split_staged(staged))


def split_staged(
    staged: Iterable[tuple[str, Any]],
) -> tuple[list[tuple[str, int]], list[tuple[str, int]], list[str]]:
    """``(kind, payload)`` pairs -> (staged rows, staged dead letters, rejection reasons)."""
    by_kind: dict[str, list[Any]] = {ROWS: [], DEAD: [], REJECTED: []}
    for kind, payload in staged:
        by_kind[kind].append(payload)
    return by_kind[ROWS], by_kind[DEAD], by_kind[REJECTED]


class IngestionRecords(beam.PTransform):
    """The single ingestion record of this file, written after loading the staged files."""

    def __init__(
        self,
        load: LoadWarehouseFn,
        staged_rows: PCollection,
        staged_dead: PCollection,
        rejections: PCollection,
    ) -> None:
        super().__init__()
        self._load = load
        self._staged = (staged_rows, staged_dead, rejections)

    def expand(self, root: PBegin) -> PCollection:
        rows, dead, rejected = self._staged
        staged = (
            rows | "Tag rows" >> beam.Map(tagged, ROWS),
            dead | "Tag dead letters" >> beam.Map(tagged, DEAD),
            rejected | "Tag rejections" >> beam.Map(tagged, REJECTED),
        ) | "Everything staged" >> beam.Flatten()
        return (
            root
            | "Once" >> beam.Create([None])
            | "Load staged files" >> beam.ParDo(LoadEverythingStagedFn(self._load), AsList(staged))
        )
