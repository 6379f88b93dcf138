"""Fixtures for the warehouse adapters: staged Parquet files and ingestion records."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice.contracts import Contract
from sluice.schema import IngestionRecord, SourceRef, dead_letter_schema, processed_schema
from sluice.settings import REPO_ROOT, Settings, load_settings
from sluice.warehouse.bigquery import BigQueryWarehouse
from sluice.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import require_tool

from .fake_bigquery import FakeBigQuery, serve

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

T0 = datetime(2024, 3, 15, 23, 30, tzinfo=UTC)
EMULATOR_VENV = Path(os.environ.get("BQEMU_VENV", REPO_ROOT / ".venv-bqemu"))
EMULATOR_PROJECT = "sluice-emulator"


def sample_rows(contract: Contract, source: SourceRef, count: int) -> pa.Table:
    """``count`` processed rows of ``source`` with a value of the right type in every column."""
    schema = processed_schema(contract)
    makers: dict[str, Callable[[str, int], object]] = {
        "string": lambda name, i: f"{name}-{i}",
        "integer": lambda name, i: 200 + i,
        "float": lambda name, i: i * 1.5,
        "boolean": lambda name, i: i % 2 == 0,
        "date": lambda name, i: date(2024, 1, 1) + timedelta(days=i),
        "timestamp": lambda name, i: T0 + timedelta(hours=i),
    }
    columns = {c.name: [makers[c.type](c.name, i) for i in range(count)] for c in contract.columns}
    columns["_source_uri"] = [source.uri] * count
    columns["_source_generation"] = [source.generation] * count
    columns["_source_line"] = list(range(2, count + 2))
    columns["_contract_version"] = [contract.version] * count
    columns["_ingested_at"] = [T0] * count
    return pa.table(columns, schema=schema)


def rows_from(contract: Contract, source: SourceRef, count: int, start: datetime) -> pa.Table:
    """``sample_rows`` whose ``timestamp`` runs hourly from ``start`` (their partitions)."""
    rows = sample_rows(contract, source, count)
    times = pa.array([start + timedelta(hours=i) for i in range(count)], rows["timestamp"].type)
    return rows.set_column(rows.schema.get_field_index("timestamp"), "timestamp", times)


def replayed_on_other_days(
    warehouse: Any, contract: Contract, stager: Stager, uri: str
) -> list[dict[str, Any]]:
    """Load ``uri`` with 30 rows from T0, then a newer generation of it with 5 rows 40 days
    later (other partitions); the table's rows of ``uri`` per day after the replay."""
    for generation, count, start in ((1, 30, T0), (2, 5, T0 + timedelta(days=40))):
        source = SourceRef(uri, generation)
        staged = stager.write(rows_from(contract, source, count, start))
        record = make_record(contract, source, count, 0)
        warehouse.load_replacing_source(contract, source, [staged], [], record)
    return warehouse.query(
        "SELECT DATE(timestamp) AS day, COUNT(*) AS n FROM {dataset}.server_logs"
        " WHERE _source_uri = @uri GROUP BY day ORDER BY day",
        {"uri": uri},
    )


REPLAYED_DAYS = [{"day": date(2024, 4, 24), "n": 1}, {"day": date(2024, 4, 25), "n": 4}]
"""What ``replayed_on_other_days`` leaves: the new version's rows only, none of March's."""


def sample_dead(contract: Contract, source: SourceRef, count: int) -> pa.Table:
    """``count`` dead letters of ``source``."""
    return pa.table(
        {
            "source_uri": [source.uri] * count,
            "source_generation": [source.generation] * count,
            "line": list(range(100, 100 + count)),
            "raw_text": [f"bad,row,{i}" for i in range(count)],
            "reason": ["column 'status': expected integer, found 'x'"] * count,
            "contract_version": [contract.version] * count,
            "ingested_at": [T0] * count,
        },
        schema=dead_letter_schema(),
    )


def make_record(
    contract: Contract,
    source: SourceRef,
    loaded: int,
    dead: int,
    status: str = "loaded",
    reason: str | None = None,
) -> IngestionRecord:
    """An ingestion record whose counts add up."""
    return IngestionRecord(
        dataset=contract.name,
        source_uri=source.uri,
        source_generation=source.generation,
        status=status,
        rows_in=loaded + dead,
        rows_loaded=loaded,
        rows_dead=dead,
        reason=reason,
        job_id=f"test-{source.generation}",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
    )


class Stager:
    """Writes staged Parquet files under a test's temporary directory."""

    def __init__(self, root: Path, contract: Contract) -> None:
        self.root = root
        self.contract = contract
        self.count = 0

    def write(self, table: pa.Table) -> str:
        """Write ``table`` as one Parquet file; its path."""
        self.count += 1
        path = self.root / f"part-{self.count:04d}.parquet"
        pq.write_table(table, path)
        return str(path)

    def rows(self, source: SourceRef, count: int) -> str:
        """One staged file of ``count`` processed rows."""
        return self.write(sample_rows(self.contract, source, count))

    def dead(self, source: SourceRef, count: int) -> str:
        """One staged file of ``count`` dead letters."""
        return self.write(sample_dead(self.contract, source, count))


@pytest.fixture
def fake() -> Iterator[FakeBigQuery]:
    """A recording BigQuery REST fake on a loopback port."""
    state = FakeBigQuery()
    server = serve(state)
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def bq_settings(isolated_env: object, fake: FakeBigQuery, gcs: GcsBuckets) -> Settings:
    """Settings pointing the BigQuery adapter at the fake, its load slots at the test's
    pipeline bucket (a module using this names ``tests.gcs_fixtures`` as a plugin)."""
    return load_settings(warehouse="bigquery", bq_project="proj-1", bq_endpoint=fake.endpoint)


@pytest.fixture
def contract(contracts: dict[str, Contract]) -> Contract:
    """A shipped contract with timestamp, integer, float and string columns."""
    return contracts["server_logs"]


@pytest.fixture
def stager(tmp_path: Path, contract: Contract) -> Stager:
    """A Stager writing under the test's tmp_path."""
    root = tmp_path / "staged"
    root.mkdir()
    return Stager(root, contract)


def emulator_warehouse(bq_emulator: str, gcs: GcsBuckets) -> BigQueryWarehouse:
    """A BigQuery adapter on the emulator with datasets of its own (created on first use),
    its load slots in the test's pipeline bucket."""
    suffix = uuid.uuid4().hex[:10]
    settings = load_settings(
        warehouse="bigquery",
        bq_project=EMULATOR_PROJECT,
        bq_endpoint=bq_emulator,
        warehouse_dataset=f"raw_{suffix}",
        cooked_warehouse_dataset=f"cooked_{suffix}",
        gcs_endpoint=gcs.endpoint,
        pipeline_bucket=gcs.pipeline.name,
    )
    return BigQueryWarehouse(settings, api_timeout=10, job_timeout=30)


@pytest.fixture
def warehouse(settings: Settings, contract: Contract) -> DuckDBWarehouse:
    """A DuckDB warehouse under the test's SLUICE_HOME with the contract's tables created."""
    wh = DuckDBWarehouse(settings)
    wh.ensure_tables(contract)
    return wh


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The REST endpoint of a BigQuery emulator (bqemulator) running from its own venv."""
    binary = EMULATOR_VENV / "bin" / "bqemulator"
    require_tool(
        "bqemulator",
        f"no {binary}: build it with tests/sluice/warehouse/bqemulator_env.sh",
        path=binary,
    )
    port = _free_port()
    log_path = tmp_path_factory.mktemp("bqemulator") / "bqemulator.log"
    endpoint = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(binary), "start", "--rest-port", str(port), "--grpc-port", "0",
             "--project", EMULATOR_PROJECT, "--log-level", "warning"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        ready = f"{endpoint}/bigquery/v2/projects/{EMULATOR_PROJECT}/datasets"
        while not _answers(ready):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(
                    f"bqemulator did not answer on {endpoint} (exit {process.poll()}); "
                    f"rebuild with tests/sluice/warehouse/bqemulator_env.sh. Log tail:\n{tail}"
                )
            time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
