"""Primary keys within one file: a key used twice is a dead letter, not a second version.

Under ``write: merge`` a file holds at most one record per ``primary_key``: the first record
that uses a key is its row, and every later one becomes a dead letter naming that first
line. The file is parsed in byte ranges on many workers, so repeats are found once every
range is staged, from the key columns alone (``repeated_keys``). Dead letters carry the
record's exact text: a file with repeats is read once more for just those lines
(``record_texts``), so the usual file, without repeats, costs one pass over its key columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Contract
from sluice.records.formats import format_for

LINE = "_source_line"


def repeated_keys(keys: list[pa.Table], contract: Contract) -> dict[int, str]:
    """Line -> dead-letter reason, for each record whose key an earlier line of the file used.

    ``keys`` holds the ``primary_key`` columns and ``_source_line`` of every staged row."""
    if not keys:
        return {}
    names = list(contract.primary_key)
    table = pa.concat_tables(keys)
    counted = table.group_by(names).aggregate([(LINE, "count"), (LINE, "min")])
    repeats = counted.filter(pc.greater(counted[f"{LINE}_count"], 1))
    if repeats.num_rows == 0:
        return {}
    later = table.join(repeats, names, join_type="inner").filter(
        pc.not_equal(pc.field(LINE), pc.field(f"{LINE}_min"))
    )
    reasons = {}
    for row in later.to_pylist():
        key = ", ".join(f"{name}={row[name]!r}" for name in names)
        first = row[f"{LINE}_min"]
        reasons[row[LINE]] = (
            f"primary key {key}: expected once per file, found first on line {first}"
        )
    return reasons


def without_lines(rows: pa.Table, lines: Iterable[int]) -> pa.Table:
    """``rows`` without the rows of the given source lines."""
    wanted = pa.array(sorted(lines), pa.int64())
    return rows.filter(pc.invert(pc.is_in(rows[LINE], value_set=wanted)))


def record_texts(
    stream: BinaryIO,
    contract: Contract,
    lines: Iterable[int],
    *,
    chunk_bytes: int,
    max_record_bytes: int,
) -> dict[int, str]:
    """Line -> exact record text, for the given lines of a decompressed stream."""
    wanted = np.array(sorted(set(lines)), dtype=np.int64)
    texts: dict[int, str] = {}
    scan = format_for(contract).scan(
        stream, chunk_bytes=chunk_bytes, max_record_bytes=max_record_bytes
    )
    for chunk in scan:
        for index in np.flatnonzero(np.isin(chunk.lines, wanted)):
            texts[int(chunk.lines[index])] = chunk.record_bytes(int(index)).decode(
                "utf-8", errors="replace"
            )
        if len(texts) == len(wanted):
            scan.close()
            break
    return texts
