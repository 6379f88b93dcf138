"""The format seam: contracts name a format, the CSV format answers through the interface."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest

from sluice.contracts import Column, Contract, load_contract, resolve_header
from sluice.errors import ContractError, FileRejected
from sluice.records.chunks import RecordChunk
from sluice.records.formats import contract_header, format_for
from sluice.records.formats.csv import BAD_QUOTES, FIELD_COUNT, CsvFormat

CONTRACT = Contract(
    name="pairs",
    version=1,
    landing_prefix="incoming/pairs/",
    columns=(Column("id", "integer"), Column("note", "string")),
)
SAMPLE_PAIRS = b'id,note\n1,"a, b"\n2,x,extra\n3,"bad"quote\n4,"two\nlines"\n'


def chunks_of(data: bytes) -> list[RecordChunk]:
    return list(
        format_for(CONTRACT).scan(io.BytesIO(data), chunk_bytes=1 << 16, max_record_bytes=1 << 20)
    )


def test_contracts_default_to_csv_and_name_the_format_module() -> None:
    assert CONTRACT.format == "csv"
    assert isinstance(format_for(CONTRACT), CsvFormat)


def test_load_contract_refuses_a_format_without_a_module(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nversion: 1\nformat: xml\ncolumns:\n  - {name: a, type: string}\n")

    with pytest.raises(
        ContractError, match=r"format: expected one of access_log, csv, jsonl.*found 'xml'"
    ):
        load_contract(path)


def test_format_for_refuses_an_unknown_format_in_a_built_contract() -> None:
    with pytest.raises(
        ContractError, match=r"expected a format among access_log, csv, jsonl, found 'parquet'"
    ):
        format_for(dataclasses.replace(CONTRACT, format="parquet"))


def test_csv_format_reads_the_header_by_name() -> None:
    [chunk] = chunks_of(b"note,id\n1,2\n")

    mapping = format_for(CONTRACT).read_header(chunk, CONTRACT)

    assert mapping.positions == {"note": 0, "id": 1}
    assert format_for(CONTRACT).header_names(chunk.record_bytes(0)) == ("note", "id")


def test_csv_format_rejects_a_header_missing_a_required_column() -> None:
    strict = dataclasses.replace(CONTRACT, columns=(Column("id", "integer", required=True),))
    [chunk] = chunks_of(b"name\nx\n")

    with pytest.raises(FileRejected, match="expected required column"):
        format_for(strict).read_header(chunk, strict)


def test_csv_format_reports_each_unreadable_record_once_with_its_reason() -> None:
    record_format = format_for(CONTRACT)
    [chunk] = chunks_of(SAMPLE_PAIRS)
    mapping = record_format.read_header(chunk, CONTRACT)
    data = chunk.drop_first()

    faults = record_format.faults(data, mapping)
    reasons = {
        int(data.lines[i]): record_format.describe_fault(data, int(i), code, mapping)
        for code, indices in faults.items()
        for i in indices
    }

    assert set(faults) == set(record_format.fault_nouns) == {BAD_QUOTES, FIELD_COUNT}
    assert sorted(reasons) == [3, 4]
    assert reasons[3] == "expected 2 fields, found 3"
    assert reasons[4].startswith("malformed quoting: field 2:")


def test_csv_format_splits_readable_records_into_contract_columns() -> None:
    record_format = format_for(CONTRACT)
    [chunk] = chunks_of(SAMPLE_PAIRS)
    mapping = record_format.read_header(chunk, CONTRACT)
    data = chunk.drop_first()

    fields = record_format.fields(data, np.array([0, 3]), mapping)

    assert {name: values.to_pylist() for name, values in fields.items()} == {
        "id": ["1", "4"],
        "note": ["a, b", "two\nlines"],
    }


def test_contract_header_maps_a_headerless_format_in_contract_order() -> None:
    assert contract_header(CONTRACT) == resolve_header(["id", "note"], CONTRACT)
    assert contract_header(CONTRACT).positions == {"id": 0, "note": 1}


def test_record_chunk_select_keeps_every_per_record_array_in_step() -> None:
    [chunk] = chunks_of(SAMPLE_PAIRS)

    picked = chunk.select(np.array([1, 3]))

    assert type(picked) is type(chunk)
    assert picked.lines.tolist() == [2, 4]
    assert picked.bad_quotes.tolist() == [False, True]
    assert picked.record_bytes(1) == b'3,"bad"quote'
