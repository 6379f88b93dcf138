"""The fast lane through ``main.on_upload``: which files take it, and exactly once for them.

Real CloudEvents to functions-framework's app against fake-gcs-server, loading into the
test's DuckDB warehouse; the launcher is the recording double, which must stay unused for a
file the function loads itself. A crash is an exception no handler catches (``Crash``, a
``BaseException`` like the signal that kills a process), raised at one step of the load: the
claim is left as the dead delivery left it, and a later delivery must finish the file once.
The same load runs once more through the BigQuery adapter on its emulator, and the staged
files' ``gs://`` side (the cloud's staging) against fake-gcs-server.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from sluice.errors import WarehouseError
from sluice.gcs import storage_client
from sluice.ingest import loading, staging
from sluice.ingest.claims import claim_event, event_key, read_claim
from sluice.settings import load_settings
from sluice.warehouse import connected_warehouse
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.sluice.ingest.upload_doubles import GOOD, claim_names, install_launcher, land
from tests.sluice.warehouse.conftest import EMULATOR_PROJECT, bq_emulator  # noqa: F401
from tests.test_main import deliver, upload_client

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]
GOOD_ROWS = [(483693, "muc888, sam4326, camaran3922"), (483694, "solo")]


class Crash(BaseException):
    """The delivery's process dies here: no except clause of ours sees it."""


@pytest.fixture(autouse=True)
def fast_lane_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped limit (the suite's default sends every file to the pipeline)."""
    monkeypatch.delenv("SLUICE_FAST_LANE_MAX_BYTES")


def loaded_rows() -> list[tuple[Any, ...]]:
    """(loan_id, lenders) of every processed kiva_lenders row."""
    rows = DuckDBWarehouse(load_settings()).query(
        "SELECT loan_id, lenders FROM {dataset}.kiva_lenders ORDER BY loan_id"
    )
    return [(row["loan_id"], row["lenders"]) for row in rows]


def log_rows() -> list[tuple[Any, ...]]:
    """(status, rows_loaded, job_id, finished_at) of every ingestion-log row."""
    rows = DuckDBWarehouse(load_settings()).query(
        "SELECT status, rows_loaded, job_id, finished_at FROM {dataset}.ingestion_log"
    )
    return [(r["status"], r["rows_loaded"], r["job_id"], r["finished_at"]) for r in rows]


def claim_state(gcs: GcsBuckets, blob: Blob) -> tuple[str, int]:
    """(state, attempt) of the blob's claim."""
    claim = read_claim(gcs.client, load_settings(), key_of(gcs, blob))
    assert claim is not None
    return claim.state, claim.attempt


def key_of(gcs: GcsBuckets, blob: Blob) -> str:
    return event_key(gcs.landing.name, blob.name, blob.generation)


def test_fast_lane_loads_a_small_file_in_the_function_and_launches_nothing(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    status = deliver(upload_client(), blob)

    settings = load_settings()
    assert status == 200 and launcher.attempts == 0
    assert loaded_rows() == GOOD_ROWS
    assert [row[:2] for row in log_rows()] == [("loaded", 2)]
    assert claim_state(gcs, blob) == ("loaded", 1)
    assert not [p for p in settings.staging_root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("limit", "lane"),
    [(len(GOOD), "fast"), (len(GOOD) - 1, "pipeline"), (0, "pipeline")],
    ids=["at-the-limit", "one-byte-over", "zero-means-always-pipeline"],
)
def test_fast_lane_takes_files_up_to_the_limit_and_launches_the_rest(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch, limit: int, lane: str
) -> None:
    monkeypatch.setenv("SLUICE_FAST_LANE_MAX_BYTES", str(limit))
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    status = deliver(upload_client(), blob)

    assert status == 200
    if lane == "fast":
        assert (launcher.attempts, claim_state(gcs, blob)) == (0, ("loaded", 1))
    else:
        assert (launcher.attempts, claim_state(gcs, blob)) == (1, ("launched", 1))


def test_fast_lane_compares_the_decompressed_size_with_the_limit(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    csv = GOOD + b"".join(b"%d,solo\n" % loan_id for loan_id in range(1, 200))
    packed = gzip.compress(csv)
    monkeypatch.setenv("SLUICE_FAST_LANE_MAX_BYTES", str(len(packed)))
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, packed, "incoming/kiva_lenders/a.csv.gz")

    deliver(upload_client(), blob)

    assert len(packed) < len(csv)
    assert launcher.attempts == 1  # its gzip bytes fit, its CSV does not


def test_fast_lane_same_event_ten_times_loads_once(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    client = upload_client()

    first = deliver(client, blob)
    logged = log_rows()
    again = [deliver(client, blob) for _ in range(9)]

    assert [first, *again] == [200] * 10 and launcher.attempts == 0
    assert log_rows() == logged  # the same row: finished_at unchanged, nothing reloaded
    assert loaded_rows() == GOOD_ROWS and len(claim_names(gcs)) == 1


def test_fast_lane_same_event_ten_times_concurrently_loads_once(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    client = upload_client()
    loads: list[str] = []
    real_load = loading.load_staged

    def counted(*args: Any, **kwargs: Any) -> Any:
        loads.append(threading.current_thread().name)
        return real_load(*args, **kwargs)

    monkeypatch.setattr("sluice.ingest.fast_lane.load_staged", counted)
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait()
        statuses.append(deliver(client, blob))

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    redelivered = [deliver(client, blob) for status in statuses if status != 200]

    assert set(statuses) <= {200, 503} and 200 in statuses
    assert redelivered == [200] * statuses.count(503)
    assert len(loads) == 1 and launcher.attempts == 0
    assert loaded_rows() == GOOD_ROWS and [row[0] for row in log_rows()] == ["loaded"]
    assert claim_state(gcs, blob) == ("loaded", 1)


def test_fast_lane_crash_right_after_the_claim_is_taken_over_after_the_lease(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_CLAIM_LEASE_SECONDS", "60")
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    settings = load_settings()
    crashed = claim_event(
        storage_client(settings), settings, key_of(gcs, blob), bucket=gcs.landing.name,
        name=blob.name, generation=blob.generation, dataset="kiva_lenders",
    )  # fmt: skip
    assert crashed is not None
    client = upload_client()

    within_lease = deliver(client, blob)
    monkeypatch.setenv("SLUICE_CLAIM_LEASE_SECONDS", "0")  # the lease has run out
    after_lease = deliver(client, blob)

    assert (within_lease, after_lease) == (503, 200) and launcher.attempts == 0
    assert claim_state(gcs, blob) == ("loaded", 2)
    assert loaded_rows() == GOOD_ROWS and [row[:2] for row in log_rows()] == [("loaded", 2)]


@pytest.mark.parametrize(
    "step",
    ["sluice.ingest.staging.write_parquet", "sluice.ingest.fast_lane.load_staged"],
    ids=["while-staging", "after-staging-before-the-load"],
)
def test_fast_lane_crash_before_the_load_is_loaded_by_the_takeover(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    client = upload_client()
    with monkeypatch.context() as crashing:
        crashing.setattr(step, _crash)
        with pytest.raises(Crash):
            deliver(client, blob)
    held = claim_state(gcs, blob)

    monkeypatch.setenv("SLUICE_CLAIM_LEASE_SECONDS", "0")
    status = deliver(client, blob)

    assert held == ("claimed", 1)
    assert status == 200 and launcher.attempts == 0
    assert claim_state(gcs, blob) == ("loaded", 2)
    assert loaded_rows() == GOOD_ROWS and [row[:2] for row in log_rows()] == [("loaded", 2)]


def test_fast_lane_crash_while_loading_leaves_nothing_and_the_takeover_loads(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = land(gcs, GOOD)
    client = upload_client()
    with monkeypatch.context() as crashing:
        crashing.setattr(DuckDBWarehouse, "load_replacing_source", _crash)
        with pytest.raises(Crash):
            deliver(client, blob)
    nothing = DuckDBWarehouse(load_settings()).query(
        "SELECT COUNT(*) AS n FROM {dataset}.kiva_lenders"
    )

    monkeypatch.setenv("SLUICE_CLAIM_LEASE_SECONDS", "0")
    status = deliver(client, blob)

    assert nothing == [{"n": 0}]
    assert status == 200 and claim_state(gcs, blob) == ("loaded", 2)
    assert loaded_rows() == GOOD_ROWS and [row[:2] for row in log_rows()] == [("loaded", 2)]


def test_fast_lane_crash_after_the_load_before_settling_does_not_load_twice(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)
    client = upload_client()
    loads: list[object] = []
    real_load = DuckDBWarehouse.load_replacing_source

    def counted(self: DuckDBWarehouse, *args: Any) -> None:
        loads.append(args[1])
        real_load(self, *args)

    monkeypatch.setattr(DuckDBWarehouse, "load_replacing_source", counted)
    with monkeypatch.context() as crashing:
        crashing.setattr(loading, "settle_claim", _crash)
        with pytest.raises(Crash):
            deliver(client, blob)
    committed, held = log_rows(), claim_state(gcs, blob)

    monkeypatch.setenv("SLUICE_CLAIM_LEASE_SECONDS", "0")
    status = deliver(client, blob)

    assert held == ("claimed", 1) and [row[:2] for row in committed] == [("loaded", 2)]
    assert status == 200 and launcher.attempts == 0
    assert claim_state(gcs, blob) == ("loaded", 2)
    assert len(loads) == 1  # the takeover read the log row and only settled the claim
    assert log_rows() == committed and loaded_rows() == GOOD_ROWS


def _crash(*args: object, **kwargs: object) -> None:
    raise Crash("the function's instance died here")


@pytest.mark.emulator
def test_fast_lane_loads_through_the_bigquery_adapter(
    gcs: GcsBuckets,
    monkeypatch: pytest.MonkeyPatch,
    bq_emulator: str,  # noqa: F811 - the fixture imported above
) -> None:
    suffix = uuid.uuid4().hex[:10]
    for name, value in {
        "SLUICE_WAREHOUSE": "bigquery", "SLUICE_BQ_PROJECT": EMULATOR_PROJECT,
        "SLUICE_BQ_ENDPOINT": bq_emulator, "SLUICE_WAREHOUSE_DATASET": f"fast_{suffix}",
        "SLUICE_COOKED_WAREHOUSE_DATASET": f"fast_cooked_{suffix}",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    launcher = install_launcher(monkeypatch)
    blob = land(gcs, GOOD)

    status = deliver(upload_client(), blob)

    with connected_warehouse(load_settings()) as warehouse:
        rows = warehouse.query("SELECT loan_id, lenders FROM {dataset}.kiva_lenders ORDER BY 1")
        [logged] = warehouse.query("SELECT status, rows_loaded FROM {dataset}.ingestion_log")
    assert status == 200 and launcher.attempts == 0
    assert [(r["loan_id"], r["lenders"]) for r in rows] == GOOD_ROWS
    assert (logged["status"], logged["rows_loaded"]) == ("loaded", 2)
    assert claim_state(gcs, blob) == ("loaded", 1)


def test_staged_files_in_the_bucket_are_written_read_and_removed(gcs: GcsBuckets) -> None:
    settings = load_settings()
    directory = f"gs://{gcs.pipeline.name}/staging/kiva_lenders/job-1"
    table = pa.table({"loan_id": [1, 2], "lenders": ["a", "b"]})

    path = staging.write_parquet(table, staging.join(directory, "rows-1.parquet"), settings)
    there = staging.exists(path, settings)
    read = staging.read_parquet(path, settings, columns=["loan_id"])
    removed = staging.remove_tree(directory, settings)

    assert there and read.column("loan_id").to_pylist() == [1, 2]
    assert removed == 1 and not staging.exists(path, settings)
    with pytest.raises(WarehouseError, match="expected a Parquet file, found none"):
        staging.read_parquet(path, settings)
