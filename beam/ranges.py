"""The byte ranges of one input that the pipeline parses in parallel (``sluice.records.splits``).

``plan_ranges`` runs inside the pipeline (``beam.transforms.PlanRangesFn``), never while the
graph is built, so building does no I/O (on Dataflow the builder is the flex-template
launcher VM). It reads the split index validation stored (``--split_index``) and checks it
belongs to this very source generation; without a usable one it finds the split points
itself with one scan-only pass, unless the file is small enough to be one range anyway. A
gzip file is always one range. Planning never decides what a row is: every range is parsed
by the same scanner from a record boundary, so the rows, lines and dead letters are those
of a serial parse.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from google.api_core.exceptions import GoogleAPIError, NotFound

from sluice.errors import FileRejected
from sluice.gcs import read_small
from sluice.ingest.staging import open_source
from sluice.records.csvscan import GZIP_MAGIC
from sluice.records.formats import format_named
from sluice.records.splits import WHOLE_FILE, ByteRange, SplitIndex, find_split_points
from sluice.schema import SourceRef
from sluice.settings import Settings

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputFile:
    """The one element the pipeline starts from: the file, its lineage, its split index."""

    path: str
    """Where the bytes are: a local path or ``gs://`` URI."""
    source: SourceRef
    """The landing object and generation the rows are attributed to."""
    split_index: str | None = None
    """Where validation stored the file's split points, if it did."""
    record_format: str = "csv"
    """The contract's format (``sluice.records.formats``), whose scanner finds split points."""


def plan_ranges(file: InputFile, settings: Settings) -> list[ByteRange]:
    """The ranges to parse: from the stored split index, a parity pass, or the whole file."""
    try:
        with open_source(file.path, file.source, settings, chunk_bytes=settings.chunk_bytes) as raw:
            if raw.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
                return [WHOLE_FILE]
            index = stored_index(file.split_index, file.source, settings)
            if index is not None:
                return index.ranges()
            size = raw.seek(0, io.SEEK_END)
            if size <= settings.split_bytes:
                return [WHOLE_FILE]
            raw.seek(0)
            points, size = find_split_points(
                raw,
                settings.split_bytes,
                chunk_bytes=settings.chunk_bytes,
                max_record_bytes=settings.max_record_bytes,
                record_format=format_named(file.record_format),
            )
    except (NotFound, FileRejected):
        return [WHOLE_FILE]  # gone already, or broken: parsing reports it for the record
    LOG.info("%s: no split index, found %d split points", file.source.uri, len(points))
    return SplitIndex(file.source.uri, file.source.generation, size, points).ranges()


def stored_index(uri: str | None, source: SourceRef, settings: Settings) -> SplitIndex | None:
    """The split index at ``uri`` when it exists and belongs to ``source``, else None."""
    if not uri:
        return None
    try:
        index = SplitIndex.from_json(read_small(uri, settings))
    except (OSError, ValueError, GoogleAPIError) as exc:
        # Missing, unreadable or malformed: slower to plan without it, never wrong.
        LOG.warning("split index %s unusable, finding split points instead: %s", uri, exc)
        return None
    if not index.belongs_to(source):
        LOG.warning(
            "split index %s: expected %s#%d, found %s#%d; finding split points instead",
            uri, source.uri, source.generation, index.source_uri, index.generation,
        )  # fmt: skip
        return None
    return index
