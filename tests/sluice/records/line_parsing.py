"""What the line-format tests share: a whole file parsed into rows and dead letters."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyarrow as pa

from sluice.contracts import Contract
from sluice.records.parse import iter_parsed_batches
from sluice.schema import SourceRef

INGESTED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def parse_file(
    data: bytes, contract: Contract, source: SourceRef, *, chunk_bytes: int = 1 << 16
) -> tuple[pa.Table, pa.Table]:
    """Every row and every dead letter of ``data``, parsed in chunks of ``chunk_bytes``."""
    batches = list(
        iter_parsed_batches(
            io.BytesIO(data),
            contract,
            source,
            ingested_at=INGESTED,
            chunk_bytes=chunk_bytes,
            max_record_bytes=1 << 20,
        )
    )
    rows = pa.concat_tables([b.rows for b in batches])
    dead = pa.concat_tables([b.dead for b in batches])
    return rows, dead


def rows_by_line(rows: pa.Table, contract: Contract) -> dict[int, dict[str, object]]:
    """Source line -> the contract's columns of its row."""
    return {
        row.pop("_source_line"): row
        for row in rows.select([*contract.column_names, "_source_line"]).to_pylist()
    }
