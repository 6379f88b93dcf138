"""sluice.ingest.door against a real fake-gcs-server, DuckDB, and a recording launcher."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from google.api_core import exceptions as api
from google.cloud.storage import Blob

from sluice.errors import ConfigError, TransientError
from sluice.gcs import storage_client
from sluice.ingest import door as upload
from sluice.ingest.batches import flush_batches
from sluice.ingest.claims import event_key, read_claim, set_claim_state, split_index_name
from sluice.ingest.door import (
    FINALIZED,
    VANISHED,
    handle_object,
    handle_storage_event,
    parse_event_time,
)
from sluice.ingest.quarantine import REASON_SUFFIX, quarantine_name
from sluice.records.splits import SplitIndex
from sluice.settings import load_settings
from tests.sluice.ingest.upload_doubles import (
    BAD,
    GOOD,
    PREFIX,
    claim_names,
    ingestion_rows,
    install_launcher,
    land,
)

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]


def handle(blob: Blob, **kwargs: Any) -> upload.UploadOutcome:
    return handle_object(
        blob.bucket.name, blob.name, blob.generation, settings=load_settings(), **kwargs
    )


def test_handle_object_accepted_file_launches_once_and_marks_claim(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    outcome = handle(blob)

    key = event_key(gcs.landing.name, blob.name, blob.generation)
    assert (outcome.status, outcome.event_key, outcome.runner_job_id) == ("launched", key, "job-1")
    [request] = launcher.requests
    assert request.input_uri == f"gs://{gcs.landing.name}/{blob.name}"
    assert (request.dataset, request.source.generation, request.event_key) == (
        "kiva_lenders",
        blob.generation,
        key,
    )
    claim = read_claim(gcs.client, load_settings(), key)
    assert (claim.state, claim.runner_job_id, claim.dataset) == (
        "launched",
        "job-1",
        "kiva_lenders",
    )
    assert ingestion_rows() == []  # the pipeline writes the loaded row, not the function


def test_handle_object_streams_the_object_in_bounded_chunks(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_launcher(monkeypatch)
    chunk = 64 * 1024
    monkeypatch.setenv("SLUICE_CHUNK_BYTES", str(chunk))
    rows = b"".join(b"%d,lender_%d\n" % (i, i) for i in range(60_000))
    blob = land(gcs, b"loan_id,lenders\n" + rows)
    ranges: list[int] = []
    download = Blob.download_as_bytes

    def spy(self: Blob, *args: Any, **kwargs: Any) -> bytes:
        if self.name == blob.name:
            ranges.append(kwargs["end"] - kwargs["start"])
        return download(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "download_as_bytes", spy)

    assert handle(blob).status == "launched"
    assert blob.size is not None and blob.size > 10 * chunk
    assert len(ranges) >= blob.size // chunk
    assert max(ranges) <= chunk


def test_handle_object_stores_a_big_files_split_index_beside_its_claim(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    monkeypatch.setenv("SLUICE_CHUNK_BYTES", str(16 * 1024))
    monkeypatch.setenv("SLUICE_SPLIT_BYTES", str(64 * 1024))
    rows = b"".join(b'%d,"lender_%d,\nsecond line"\n' % (i, i) for i in range(20_000))
    data = b"loan_id,lenders\n" + rows
    blob = land(gcs, data)

    assert handle(blob).status == "launched"

    [request] = launcher.requests
    key = event_key(gcs.landing.name, blob.name, blob.generation)
    name = split_index_name(key)
    assert request.split_index == f"gs://{gcs.pipeline.name}/{name}"
    index = SplitIndex.from_json(gcs.pipeline.blob(name).download_as_bytes())
    assert index.belongs_to(request.source) and index.size == len(data)
    assert len(index.points) >= len(data) // (80 * 1024)
    for point in index.points:  # record starts, never the newline inside a quoted field
        assert (
            data[point.offset - 1] == ord("\n") and data[point.offset : point.offset + 1].isdigit()
        )
        assert point.line == data[: point.offset].count(b"\n") + 1


def test_handle_object_small_file_gets_no_split_index(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    assert handle(blob).status == "launched"

    assert launcher.requests[0].split_index is None
    assert not [
        b.name for b in gcs.client.list_blobs(gcs.pipeline) if b.name.endswith(".splits.json")
    ]


def test_handle_object_bad_file_is_quarantined_recorded_and_acknowledged(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, BAD, PREFIX + "2024/bad file.csv")

    outcome = handle(blob)

    assert outcome.status == "rejected" and "header" in (outcome.reason or "")
    assert launcher.attempts == 0
    copy_name = quarantine_name(blob.name, blob.generation)
    assert outcome.quarantine_uri == f"gs://{gcs.pipeline.name}/{copy_name}"
    assert gcs.pipeline.blob(copy_name).download_as_bytes() == BAD
    reason = json.loads(gcs.pipeline.blob(copy_name + REASON_SUFFIX).download_as_bytes())
    assert reason["accepted"] is False and reason["problems"][0]["code"] == "header"
    assert (reason["event_key"], reason["object"], reason["generation"]) == (
        outcome.event_key,
        blob.name,
        blob.generation,
    )
    [row] = ingestion_rows()
    assert (row["status"], row["source_generation"]) == ("rejected", blob.generation)
    assert row["source_uri"] == f"gs://{gcs.landing.name}/{blob.name}" and row["rows_in"] == 0
    assert read_claim(gcs.client, load_settings(), outcome.event_key).state == "rejected"
    landed = gcs.landing.get_blob(blob.name)
    assert landed.generation == blob.generation and landed.download_as_bytes() == BAD


def test_handle_object_gzip_file_is_validated_and_launched(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, gzip.compress(GOOD), PREFIX + "a.csv.gz")

    assert handle(blob).status == "launched"
    assert len(launcher.requests) == 1


def test_handle_object_replaced_generation_is_rejected_as_vanished(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    old = land(gcs, GOOD)
    land(gcs, GOOD + b"9,late\n")

    outcome = handle(old)

    assert (outcome.status, outcome.reason) == ("rejected", VANISHED)
    assert launcher.attempts == 0
    assert read_claim(gcs.client, load_settings(), outcome.event_key).reason == VANISHED
    assert [r["reason"] for r in ingestion_rows()] == [VANISHED]


def test_handle_object_transient_read_fault_releases_claim_and_retry_succeeds(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    real_validate = upload.validate_stream
    monkeypatch.setattr(upload, "validate_stream", _raise(api.ServiceUnavailable("GCS 503")))

    with pytest.raises(TransientError, match="expected Cloud Storage to answer"):
        handle(blob)
    monkeypatch.setattr(upload, "validate_stream", real_validate)
    outcome = handle(blob)

    assert outcome.status == "launched" and len(launcher.requests) == 1
    assert read_claim(gcs.client, load_settings(), outcome.event_key).attempt == 2


def test_handle_object_transient_launch_error_leaves_the_file_queued_and_the_flush_launches_it(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch, failures=1)
    blob = land(gcs, GOOD)

    outcome = handle(blob)
    redelivered = handle(blob)
    flushed = flush_batches(gcs.client, load_settings())

    assert (outcome.status, redelivered.status) == ("batched", "duplicate")
    assert (flushed.batches, flushed.files, flushed.failed) == (1, 1, 0)
    assert (launcher.attempts, len(launcher.requests)) == (2, 1)


def test_handle_object_launch_refused_for_good_is_recorded_not_raised(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_launcher(monkeypatch, failures=1, error=ConfigError("SLUICE_DATAFLOW_TEMPLATE unset"))
    blob = land(gcs, GOOD)

    outcome = handle(blob)

    assert outcome.status == "rejected" and outcome.quarantine_uri is None
    assert outcome.reason == "launch refused: SLUICE_DATAFLOW_TEMPLATE unset"
    assert [r["status"] for r in ingestion_rows()] == ["rejected"]
    assert not list(gcs.client.list_blobs(gcs.pipeline.name, prefix="quarantine/"))


def test_handle_object_pipeline_finished_before_launch_recorded_keeps_loaded(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()

    def finish_at_once(request: Any) -> None:
        set_claim_state(storage_client(settings), settings, request.event_key, "loaded")

    install_launcher(monkeypatch, during_launch=finish_at_once)
    blob = land(gcs, GOOD)

    outcome = handle(blob)

    assert outcome.status == "launched"
    assert read_claim(gcs.client, settings, outcome.event_key).state == "loaded"


def test_handle_object_already_running_job_counts_as_launched(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_launcher(monkeypatch, already_running=True)
    blob = land(gcs, GOOD)

    outcome = handle(blob)

    assert outcome.status == "launched" and outcome.runner_job_id.startswith("sluice-kiva-lenders-")
    claim = read_claim(gcs.client, load_settings(), outcome.event_key)
    assert claim.runner_job_id == outcome.runner_job_id


def test_handle_object_replay_gets_its_own_claim_and_job(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    first = handle(blob)

    again = handle(blob)
    replay = handle(blob, replay="r1")

    assert (first.status, again.status, replay.status) == ("launched", "duplicate", "launched")
    assert replay.event_key == first.event_key + "/replay-r1"
    assert len({r.job_name for r in launcher.requests}) == 2
    assert len(claim_names(gcs)) == 2


@pytest.mark.parametrize(
    ("bucket", "name", "age", "expected"),
    [
        ("pipeline", PREFIX + "a.csv", 0, "expected bucket"),
        ("landing", "elsewhere/a.csv", 0, "expected an object under a dataset prefix"),
        ("landing", PREFIX + "folder/", 0, "folder placeholder"),
        ("landing", PREFIX + "a.csv", 2 * 86400, "expected an event at most 86400 s old"),
    ],
)
def test_handle_storage_event_ignores_what_is_not_ours(
    gcs: GcsBuckets,
    monkeypatch: pytest.MonkeyPatch,
    bucket: str,
    name: str,
    age: int,
    expected: str,
) -> None:
    launcher = install_launcher(monkeypatch)
    target = gcs.landing if bucket == "landing" else gcs.pipeline
    blob = land(gcs, GOOD, name) if bucket == "landing" else target.blob(name)
    if bucket != "landing":
        blob.upload_from_string(GOOD)
    sent = (datetime.now(UTC) - timedelta(seconds=age)).isoformat()
    data = {"bucket": target.name, "name": name, "generation": str(blob.generation)}

    outcome = handle_storage_event(FINALIZED, data, settings=load_settings(), event_time=sent)

    assert outcome.status == "ignored" and expected in (outcome.reason or "")
    assert claim_names(gcs) == [] and launcher.attempts == 0


def test_handle_storage_event_ignores_other_types_and_missing_generation(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    data = {"bucket": gcs.landing.name, "name": blob.name, "generation": str(blob.generation)}
    settings = load_settings()

    deleted = handle_storage_event(
        "google.cloud.storage.object.v1.deleted", data, settings=settings
    )
    no_generation = handle_storage_event(FINALIZED, {**data, "generation": None}, settings=settings)

    assert (deleted.status, no_generation.status) == ("ignored", "ignored")
    assert "expected event type" in (deleted.reason or "")
    assert claim_names(gcs) == [] and launcher.attempts == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:20:30.123456789Z", datetime(2024, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)),
        ("2024-03-01T10:20:30Z", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-01T12:20:30+02:00", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_event_time_reads_rfc3339(text: str | None, expected: datetime | None) -> None:
    assert parse_event_time(text) == expected


def _raise(exc: Exception) -> Any:
    def raiser(*args: object, **kwargs: object) -> None:
        raise exc

    return raiser
