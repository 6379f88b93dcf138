"""BigQuery adapter at the HTTP boundary: the real client against a recording REST fake."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
import pytest

from sluice.contracts import Column, Contract
from sluice.errors import (
    ConfigError,
    ContractError,
    MissingTable,
    TransientError,
    WarehouseError,
)
from sluice.schema import SourceRef, processed_schema
from sluice.settings import Settings, load_settings
from sluice.warehouse import open_warehouse
from sluice.warehouse.bigquery import BigQueryWarehouse
from sluice.warehouse.loads import load_key

from .conftest import Stager, make_record
from .fake_bigquery import FakeBigQuery

pytest_plugins = ["tests.gcs_fixtures"]

SOURCE = SourceRef("gs://landing/incoming/kiva_loans/2024/loans.csv", 1711000000000000)


@pytest.fixture
def loans(contracts: dict[str, Contract]) -> Contract:
    """The kiva_loans contract: MONTH partitions on a timestamp, two cluster columns."""
    return contracts["kiva_loans"]


@pytest.fixture
def bq(bq_settings: Settings) -> Iterator[BigQueryWarehouse]:
    """A BigQuery adapter with short timeouts."""
    warehouse = BigQueryWarehouse(bq_settings, api_timeout=1.5, job_timeout=5)
    yield warehouse
    warehouse.close()


def load(bq: BigQueryWarehouse, stager: Stager, contract: Contract, rows: int, dead: int) -> str:
    """Load ``rows`` + ``dead`` staged rows of SOURCE; the load key."""
    record = make_record(contract, SOURCE, rows, dead)
    bq.load_replacing_source(
        contract, SOURCE, [stager.rows(SOURCE, rows)], [stager.dead(SOURCE, dead)], record
    )
    return load_key("sluice", record)


@pytest.fixture
def loan_stager(tmp_path: object, loans: Contract, stager: Stager) -> Stager:
    """A stager writing kiva_loans rows."""
    stager.contract = loans
    return stager


def test_open_warehouse_chooses_bigquery_without_calling_it(
    bq_settings: Settings, fake: FakeBigQuery
) -> None:
    warehouse = open_warehouse(bq_settings)

    assert isinstance(warehouse, BigQueryWarehouse)
    assert fake.requests == []


def test_bigquery_warehouse_requires_a_project(isolated_env: object) -> None:
    with pytest.raises(ConfigError, match="SLUICE_BQ_PROJECT"):
        BigQueryWarehouse(load_settings(warehouse="bigquery"))


def test_ensure_tables_partitions_and_clusters_from_the_contract(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    bq.ensure_tables(loans)

    datasets = {
        r.json()["datasetReference"]["datasetId"]: r.json() for r in fake.sent("POST", "/datasets$")
    }
    assert set(datasets) == {"sluice", "sluice_cooked", "sluice_staging"}
    assert datasets["sluice_staging"]["defaultTableExpirationMs"] == "86400000"
    assert {d["location"] for d in datasets.values()} == {"US"}
    tables = {
        r.json()["tableReference"]["tableId"]: r.json() for r in fake.sent("POST", "/tables$")
    }
    processed = tables["kiva_loans"]
    assert processed["timePartitioning"] == {"type": "MONTH", "field": "posted_time"}
    # the file first: a reload's replacing delete reads only that file's blocks
    assert processed["clustering"] == {"fields": ["_source_uri", "country_code", "sector_name"]}
    fields = {f["name"]: f["type"] for f in processed["schema"]["fields"]}
    assert list(fields) == processed_schema(loans).names
    assert (fields["posted_time"], fields["loan_id"], fields["funded_amount"]) == (
        "TIMESTAMP",
        "INT64",
        "FLOAT64",
    )
    assert tables["ingestion_log"]["timePartitioning"] == {"type": "DAY", "field": "started_at"}
    assert tables["kiva_loans_dead_letter"]["timePartitioning"]["field"] == "ingested_at"


def test_ensure_tables_reclusters_an_older_table_by_source_first(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    bq.ensure_tables(loans)
    fake.tables["sluice.kiva_loans"]["clustering"] = {"fields": ["country_code", "sector_name"]}
    fake.requests.clear()

    bq.ensure_tables(loans)

    [patch] = fake.sent("PATCH", "/tables/kiva_loans$")
    assert patch.json()["clustering"] == {"fields": ["_source_uri", "country_code", "sector_name"]}
    assert fake.sent("PATCH", "/tables/kiva_loans_dead_letter$") == []


def test_ensure_tables_twice_adds_only_new_contract_columns(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    bq.ensure_tables(loans)
    bq.ensure_tables(loans)
    assert fake.sent("PATCH", "/tables/") == []
    newer = dataclasses.replace(
        loans, version=2, columns=(*loans.columns, Column("region", "string", since=2))
    )

    bq.ensure_tables(newer)

    [patch] = fake.sent("PATCH", "/tables/kiva_loans$")
    names = [f["name"] for f in patch.json()["schema"]["fields"]]
    assert names[-1] == "region"
    assert names[:-1] == processed_schema(loans).names


def retyped(contract: Contract, column: str, kind: str, **changes: object) -> Contract:
    """Version 2 of ``contract`` with ``column`` retyped to ``kind``."""
    columns = tuple(
        dataclasses.replace(c, type=kind) if c.name == column else c for c in contract.columns
    )
    return dataclasses.replace(contract, version=2, columns=columns, **changes)


def test_ensure_tables_refuses_a_type_change_without_touching_the_table(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    bq.ensure_tables(loans)

    with pytest.raises(ContractError) as caught:
        bq.ensure_tables(retyped(loans, "loan_id", "string"))

    assert str(caught.value) == (
        "table sluice.kiva_loans: contract 'kiva_loans' version 2 makes a breaking change: "
        "column 'loan_id' is integer in the table, string in the contract; "
        "declare table_version: 2 in the contract to start a new table"
    )
    assert fake.sent("PATCH", "/tables/") == []
    fields = fake.tables["sluice.kiva_loans"]["schema"]["fields"]
    assert {f["name"]: f["type"] for f in fields}["loan_id"] == "INT64"


def test_ensure_tables_refuses_a_removed_column(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    bq.ensure_tables(loans)
    fewer = dataclasses.replace(
        loans, version=2, columns=tuple(c for c in loans.columns if c.name != "sector_name")
    )

    with pytest.raises(ContractError, match=r"column 'sector_name' \(string\) is in the table"):
        bq.ensure_tables(fewer)

    assert fake.sent("PATCH", "/tables/") == []


def test_ensure_tables_with_a_new_table_version_creates_the_versioned_table(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    bq.ensure_tables(loans)

    bq.ensure_tables(retyped(loans, "loan_id", "string", table_version=2))

    created = fake.tables["sluice.kiva_loans_v2"]["schema"]["fields"]
    assert {f["name"]: f["type"] for f in created}["loan_id"] == "STRING"
    assert fake.tables["sluice.kiva_loans"]["schema"]["fields"][0]["type"] == "INT64"
    assert fake.sent("PATCH", "/tables/") == []


def test_ensure_tables_reads_the_legacy_type_names_the_api_answers(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    bq.ensure_tables(loans)
    legacy = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}
    for f in fake.tables["sluice.kiva_loans"]["schema"]["fields"]:
        f["type"] = legacy.get(f["type"], f["type"])

    bq.ensure_tables(loans)

    assert fake.sent("PATCH", "/tables/") == []


def test_load_replacing_source_stages_parquet_with_deterministic_job_ids(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract, loan_stager: Stager
) -> None:
    key = load(bq, loan_stager, loans, rows=3, dead=1)

    loads = [job for job in fake.job_inserts() if "load" in job["configuration"]]
    assert [job["jobReference"]["jobId"] for job in loads] == [
        f"sluice_load_{key}_rows_0",
        f"sluice_load_{key}_dead_0",
        f"sluice_load_{key}_log_0",
    ]
    config = loads[0]["configuration"]["load"]
    assert config["sourceFormat"] == "PARQUET"
    assert config["writeDisposition"] == "WRITE_TRUNCATE"
    assert config["destinationTable"] == {
        "projectId": "proj-1",
        "datasetId": "sluice_staging",
        "tableId": f"_staging_{key}_rows",
    }
    [log_upload] = [
        body for body in fake.uploads.values() if b"source_uri" in body and b"rows_in" in body
    ]
    staged_log = pq.read_table(io.BytesIO(log_upload)).to_pylist()
    assert staged_log == [make_record(loans, SOURCE, 3, 1).as_dict()]


def test_load_replacing_source_runs_one_transaction_with_no_values_in_sql(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract, loan_stager: Stager
) -> None:
    key = load(bq, loan_stager, loans, rows=3, dead=1)

    [tx] = [job for job in fake.job_inserts() if "query" in job["configuration"]]
    assert tx["jobReference"]["jobId"] == f"sluice_tx_{key}_0"
    sql = tx["configuration"]["query"]["query"]
    staged_log = f"`proj-1.sluice_staging._staging_{key}_log`"
    # the uri is a script variable (a constant to BigQuery, so clustering prunes by it)
    assert sql.startswith(
        f"DECLARE _sluice_uri STRING DEFAULT (SELECT source_uri FROM {staged_log});\n"
        f"DECLARE _sluice_generation INT64 DEFAULT (SELECT source_generation FROM {staged_log});"
        "\nDECLARE _sluice_seen BOOL DEFAULT TRUE;\nBEGIN TRANSACTION;\n"
    )
    # a file never loaded before has no rows or dead letters to delete: no DELETE runs
    assert (
        "BEGIN TRANSACTION;\nSET _sluice_seen = EXISTS (SELECT 1 FROM"
        " `proj-1.sluice.ingestion_log` WHERE source_uri = _sluice_uri);"
    ) in sql
    seen = "IF _sluice_seen"
    assert f"{seen} THEN\n  DELETE FROM `proj-1.sluice.kiva_loans_dead_letter`" in sql
    assert (
        f"{seen} THEN\n  DELETE FROM `proj-1.sluice.kiva_loans` WHERE _source_uri = _sluice_uri"
        in sql
    )
    # kiva_loans merges on loan_id: an older file's version of a staged key goes first
    assert "DELETE FROM `proj-1.sluice.kiva_loans` AS existing WHERE NOT EXISTS" in sql
    assert f"FROM `proj-1.sluice_staging._staging_{key}_rows` AS incoming WHERE NOT EXISTS" in sql
    assert sql.endswith("COMMIT TRANSACTION;")
    # rows, dead letters, the log row, and the superseded row a newer generation makes
    assert sql.count("INSERT INTO") == 4 and sql.count("DELETE FROM") == 5
    # every statement is guarded by "no newer generation is loaded"
    assert sql.count("AND source_generation > _sluice_generation") == 9
    assert SOURCE.uri not in sql
    dropped = {r.path.rsplit("/", 1)[1] for r in fake.sent("DELETE", "/tables/")}
    assert dropped == {f"_staging_{key}_{kind}" for kind in ("rows", "dead", "log")}


def test_load_replacing_source_retry_reuses_loads_and_supersedes_a_failed_transaction(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract, loan_stager: Stager
) -> None:
    fake.fail_job(r"^sluice_tx_.*_0$", "backendError", "transaction backend failure")
    with pytest.raises(TransientError, match="transaction backend failure"):
        load(bq, loan_stager, loans, rows=3, dead=1)

    key = load(bq, loan_stager, loans, rows=3, dead=1)

    # A local upload is sent again (its 409 comes after the bytes), but no second load job
    # exists: the retry found the first three by id.
    load_jobs = [job for job in fake.jobs.values() if "load" in job["configuration"]]
    assert len(load_jobs) == 3
    reused = {r.path.rsplit("/", 1)[1] for r in fake.sent("GET", "/jobs/sluice_load_")}
    assert reused == {f"sluice_load_{key}_{kind}_0" for kind in ("rows", "dead", "log")}
    tx_ids = [
        job["jobReference"]["jobId"]
        for job in fake.job_inserts()
        if job["jobReference"]["jobId"].startswith("sluice_tx_")
    ]
    assert tx_ids == [f"sluice_tx_{key}_0", f"sluice_tx_{key}_0", f"sluice_tx_{key}_1"]


def test_load_replacing_source_refuses_counts_that_disagree_before_the_transaction(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract, loan_stager: Stager
) -> None:
    record = make_record(loans, SOURCE, 5, 0)

    with pytest.raises(WarehouseError, match="expected 5 rows"):
        bq.load_replacing_source(loans, SOURCE, [loan_stager.rows(SOURCE, 3)], [], record)

    assert not [job for job in fake.job_inserts() if "query" in job["configuration"]]


def test_query_sends_typed_named_parameters_and_returns_dicts(
    bq: BigQueryWarehouse, fake: FakeBigQuery
) -> None:
    fake.query_schema = [{"name": "uri", "type": "STRING"}, {"name": "n", "type": "INTEGER"}]
    fake.query_rows = [["gs://a", "2"], ["gs://b", "7"]]
    since = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    rows = bq.query(
        "SELECT uri, n FROM {dataset}.t WHERE n > @n AND at > @since AND d = @day AND ok = @ok",
        {"n": 1, "since": since, "day": date(2024, 1, 2), "ok": True},
    )

    assert rows == [{"uri": "gs://a", "n": 2}, {"uri": "gs://b", "n": 7}]
    [job] = fake.job_inserts()
    query = job["configuration"]["query"]
    assert query["query"].startswith("SELECT uri, n FROM sluice.t WHERE")
    params = {
        p["name"]: (p["parameterType"]["type"], p["parameterValue"]["value"])
        for p in query["queryParameters"]
    }
    assert params == {
        "n": ("INT64", "1"),
        "since": ("TIMESTAMP", "2024-01-02 03:04:05+00:00"),
        "day": ("DATE", "2024-01-02"),
        "ok": ("BOOL", "true"),
    }


def test_record_ingestion_is_one_parameterised_merge(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    record = make_record(loans, SOURCE, 0, 0, "rejected", "header: missing 'loan_id'")

    bq.record_ingestion(record)

    [job] = fake.job_inserts()
    query = job["configuration"]["query"]
    assert query["query"].startswith("MERGE `proj-1.sluice.ingestion_log` AS T")
    assert SOURCE.uri not in query["query"] and "loan_id" not in query["query"]
    params = {p["name"]: p for p in query["queryParameters"]}
    assert set(params) == set(record.as_dict())
    assert params["reason"]["parameterValue"]["value"] == "header: missing 'loan_id'"
    assert params["started_at"]["parameterType"]["type"] == "TIMESTAMP"
    assert params["source_generation"]["parameterValue"]["value"] == str(SOURCE.generation)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_query_maps_persistent_overload_to_transient_error(
    bq_settings: Settings, fake: FakeBigQuery, status: int
) -> None:
    impatient = BigQueryWarehouse(bq_settings, api_timeout=0.3, job_timeout=1)
    for _ in range(20):
        fake.fail_next("POST .*/jobs$", status)

    with pytest.raises(TransientError, match="BigQuery query"):
        impatient.query("SELECT 1")


def test_query_recovers_from_one_service_unavailable(
    bq: BigQueryWarehouse, fake: FakeBigQuery
) -> None:
    fake.fail_next(
        "POST .*/jobs$",
        503,
        {"code": 503, "message": "busy", "errors": [{"reason": "backendError"}]},
    )
    fake.query_schema = [{"name": "x", "type": "INTEGER"}]
    fake.query_rows = [["1"]]

    assert bq.query("SELECT 1 AS x") == [{"x": 1}]
    assert len(fake.sent("POST", "/jobs$")) == 2


def test_run_script_reports_an_invalid_query_as_permanent(
    bq: BigQueryWarehouse, fake: FakeBigQuery
) -> None:
    fake.fail_job(r"^sluice_", "invalidQuery", "Unrecognized name: nope")

    with pytest.raises(WarehouseError, match="Unrecognized name") as caught:
        bq.run_script("SELECT nope FROM {cooked_dataset}.t")

    assert not isinstance(caught.value, TransientError)


LOG_SCHEMA = [
    {"name": name, "type": kind}
    for name, kind in [
        ("dataset", "STRING"), ("source_uri", "STRING"), ("source_generation", "INTEGER"),
        ("status", "STRING"), ("rows_in", "INTEGER"), ("rows_loaded", "INTEGER"),
        ("rows_dead", "INTEGER"), ("reason", "STRING"), ("job_id", "STRING"),
        ("started_at", "TIMESTAMP"), ("finished_at", "TIMESTAMP"), ("enrichment", "STRING"),
    ]
]  # fmt: skip


def cell(value: object) -> str | None:
    """A value as BigQuery's REST answer writes it (timestamps in microseconds)."""
    if isinstance(value, datetime):
        return str(int(value.timestamp() * 1_000_000))
    return None if value is None else str(value)


def test_latest_ingestion_is_one_parameterised_query_read_as_a_record(
    bq: BigQueryWarehouse, fake: FakeBigQuery, loans: Contract
) -> None:
    written = make_record(loans, SOURCE, 3, 1)
    fake.query_schema = LOG_SCHEMA
    fake.query_rows = [[cell(value) for value in written.as_dict().values()]]

    found = bq.latest_ingestion(SOURCE, job_name=written.job_id)

    assert found == written
    [job] = fake.job_inserts()
    query = job["configuration"]["query"]
    assert "FROM sluice.ingestion_log WHERE" in query["query"]
    assert SOURCE.uri not in query["query"]
    params = {p["name"]: p["parameterValue"]["value"] for p in query["queryParameters"]}
    assert params == {
        "source_uri": SOURCE.uri,
        "generation": str(SOURCE.generation),
        "job_id": written.job_id,
    }


def test_query_of_a_missing_table_raises_missing_table(
    bq: BigQueryWarehouse, fake: FakeBigQuery
) -> None:
    fake.fail_job(
        r"^sluice_",
        "notFound",
        "Not found: Table proj-1:sluice.alerts was not found in location US",
    )

    with pytest.raises(MissingTable, match=r"table proj-1:sluice\.alerts"):
        bq.query("SELECT * FROM {dataset}.alerts")


def test_open_alerts_without_an_alerts_table_is_empty(
    bq: BigQueryWarehouse, fake: FakeBigQuery
) -> None:
    fake.fail_job(r"^sluice_", "notFound", "Not found: Table proj-1:sluice.alerts")

    assert bq.open_alerts() == []
    [job] = fake.job_inserts()
    assert job["configuration"]["query"]["query"].startswith("SELECT dataset, rule, alert,")


def test_other_not_found_answers_stay_warehouse_errors(
    bq: BigQueryWarehouse, fake: FakeBigQuery
) -> None:
    fake.fail_job(r"^sluice_", "notFound", "Not found: Job proj-1:sluice_x")

    with pytest.raises(WarehouseError) as caught:
        bq.query("SELECT 1")

    assert not isinstance(caught.value, MissingTable)
