"""The composite transforms on Beam's local runner, fed raw CSV samples."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.util import assert_that, equal_to

from beam.transforms import Parsed, ParsedBatches, StagedParquet
from local.pipeline import skip_credential_lookup_for_emulator
from sluice.records.splits import WHOLE_FILE, ByteRange
from sluice.schema import SourceRef, dead_letter_schema
from sluice.settings import load_settings
from tests.beam.conftest import SAMPLE_BAD_HEADER, SAMPLE_DEAD_LINES, SAMPLE_GOOD_IDS, SAMPLE_LOANS

INGESTED_AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SOURCE = SourceRef("gs://landing/incoming/tiny_loans/loans.csv", 1732443303123456)


def parsed(
    pipeline: beam.Pipeline, path: Path, contract, ranges: list[ByteRange] | None = None
) -> Parsed:
    return (
        pipeline
        | beam.Create(ranges or [WHOLE_FILE])
        | ParsedBatches(
            str(path),
            contract,
            SOURCE,
            settings=load_settings(),
            ingested_at=INGESTED_AT,
            chunk_bytes=64,
            max_record_bytes=4096,
        )
    )


def row_tuples(table: pa.Table) -> list[tuple]:
    return [
        (r["loan_id"], r["description"], r["_source_line"], r["_source_generation"])
        for r in table.to_pylist()
    ]


def test_parsed_batches_keeps_quoted_newlines(local_pipeline, tiny_contract, write_sample) -> None:
    path = write_sample(SAMPLE_LOANS)

    with local_pipeline as pipeline:
        rows = parsed(pipeline, path, tiny_contract).rows | beam.FlatMap(row_tuples)

        assert_that(
            rows,
            equal_to(
                [
                    (
                        1,
                        'Ana sells fruit.\nShe has three children, and a "big" dream.',
                        2,
                        SOURCE.generation,
                    ),
                    (2, None, 4, SOURCE.generation),
                    (5, "Line one\nLine two", 7, SOURCE.generation),
                    (6, "<br />&amp;", 9, SOURCE.generation),
                ]
            ),
        )


def test_parsed_batches_sends_bad_rows_to_dead_letters(
    local_pipeline, tiny_contract, write_sample
) -> None:
    path = write_sample(SAMPLE_LOANS)
    bad_amount = "3,Bad amount,x,abc,funded,2014-01-15 04:48:22.000 +0000"
    too_many = "4,Too many,a,1,funded,2014-01-15 04:48:22.000 +0000,extra"

    with local_pipeline as pipeline:
        dead = parsed(pipeline, path, tiny_contract).dead | beam.FlatMap(
            lambda t: [
                (r["source_uri"], r["source_generation"], r["line"], r["raw_text"], r["reason"])
                for r in t.to_pylist()
            ]
        )

        def check(letters: list[tuple]) -> None:
            by_line = {letter[2]: letter for letter in letters}
            assert sorted(by_line) == SAMPLE_DEAD_LINES
            assert by_line[5][:4] == (SOURCE.uri, SOURCE.generation, 5, bad_amount)
            assert "loan_amount" in by_line[5][4] and "abc" in by_line[5][4]
            assert by_line[6][:4] == (SOURCE.uri, SOURCE.generation, 6, too_many)
            assert "6" in by_line[6][4] and "7" in by_line[6][4]  # expected vs found count

        assert_that(dead, check)


def test_parsed_batches_reads_gzip_by_magic_bytes(
    local_pipeline, tiny_contract, write_sample
) -> None:
    path = write_sample(SAMPLE_LOANS, "loans.csv", compress=True)

    with local_pipeline as pipeline:
        ids = parsed(pipeline, path, tiny_contract).rows | beam.FlatMap(
            lambda t: t.column("loan_id").to_pylist()
        )

        assert_that(ids, equal_to(SAMPLE_GOOD_IDS))


def test_parsed_batches_reports_rejected_header(
    local_pipeline, tiny_contract, write_sample
) -> None:
    path = write_sample(SAMPLE_BAD_HEADER)

    with local_pipeline as pipeline:
        outputs = parsed(pipeline, path, tiny_contract)
        counts = outputs.rows | "Count rows" >> beam.combiners.Count.Globally()

        def one_reason_naming_the_columns(reasons: list[str]) -> None:
            assert len(reasons) == 1
            assert "loan_name" in reasons[0] and "loan_title" in reasons[0]

        assert_that(counts, equal_to([0]), label="no rows")
        assert_that(outputs.rejected, one_reason_naming_the_columns, label="one reason")


def test_staged_parquet_writes_one_file_per_nonempty_table(local_pipeline, tmp_path) -> None:
    schema = dead_letter_schema()
    first = pa.table(
        {
            "source_uri": ["a", "a"],
            "source_generation": [1, 1],
            "line": [2, 3],
            "raw_text": ["x,\ny", "z"],
            "reason": ["r1", "r2"],
            "contract_version": [1, 1],
            "ingested_at": [INGESTED_AT, INGESTED_AT],
        },
        schema=schema,
    )
    empty = schema.empty_table()
    staging = tmp_path / "staging" / "tiny_loans" / "job-1"

    with local_pipeline as pipeline:
        staged = (
            pipeline
            | beam.Create([first, empty], reshuffle=False)
            | StagedParquet(str(staging), "dead", load_settings())
        )

        def one_file_of_two_rows(pairs: list[tuple[str, int]]) -> None:
            assert [rows for _, rows in pairs] == [2]
            assert pairs[0][0].startswith(str(staging))

        assert_that(staged, one_file_of_two_rows)

    files = list(staging.glob("dead-*.parquet"))
    assert len(files) == 1
    assert pq.read_table(files[0]).equals(first)


def test_skip_credential_lookup_for_emulator_connects_anonymously(monkeypatch) -> None:
    from apache_beam.internal.gcp import auth
    from apache_beam.io.gcp import gcsio
    from apache_beam.options.pipeline_options import PipelineOptions

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.setattr(auth._Credentials, "_credentials_init", False)
    monkeypatch.setattr(auth._Credentials, "_credentials", None)
    started = time.perf_counter()

    skip_credential_lookup_for_emulator()
    client = gcsio.create_storage_client(PipelineOptions([]))

    assert time.perf_counter() - started < 2
    assert type(client._credentials).__name__ == "AnonymousCredentials"
    assert client._connection.API_BASE_URL == "http://127.0.0.1:9"
