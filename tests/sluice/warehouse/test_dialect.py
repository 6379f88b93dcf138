"""BigQuery -> DuckDB dialect: each known trap checked against BigQuery's documented answer."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import duckdb
import pytest

from sluice.errors import ConfigError, WarehouseError
from sluice.settings import load_settings
from sluice.warehouse.dialect import reads_column_types, render, split_statements, to_duckdb


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session set to UTC, as the adapter's connections are."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("CREATE SCHEMA s")
    connection.execute("CREATE TABLE s.t (d DATE, ts TIMESTAMPTZ)")
    connection.execute(
        "INSERT INTO s.t VALUES (DATE '2024-03-15', TIMESTAMPTZ '2024-03-15 23:30:00+00')"
    )
    return connection


def run(con: duckdb.DuckDBPyConnection, bigquery_sql: str, **kwargs: object) -> list[tuple]:
    [statement] = to_duckdb(bigquery_sql, **kwargs)  # type: ignore[arg-type]
    return con.execute(statement).fetchall()


@pytest.mark.parametrize(
    ("day", "bigquery_dayofweek"),
    [("2024-01-07", 1), ("2024-01-08", 2), ("2024-01-13", 7)],  # Sunday, Monday, Saturday
)
def test_to_duckdb_dayofweek_counts_sunday_as_one(
    con: duckdb.DuckDBPyConnection, day: str, bigquery_dayofweek: int
) -> None:
    rows = run(con, f"SELECT EXTRACT(DAYOFWEEK FROM DATE '{day}')")

    assert rows == [(bigquery_dayofweek,)]


def test_to_duckdb_dayofweek_keeps_precedence_inside_arithmetic(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = run(con, "SELECT 7 - EXTRACT(DAYOFWEEK FROM DATE '2024-01-13')")  # Saturday: 7

    assert rows == [(0,)]


@pytest.mark.parametrize(
    ("day", "bigquery_week"),
    # Weeks start on Sunday; days before the year's first Sunday are week 0.
    [("2024-01-01", 0), ("2024-01-07", 1), ("2023-12-31", 53), ("2024-03-15", 10)],
)
def test_to_duckdb_week_starts_on_sunday(
    con: duckdb.DuckDBPyConnection, day: str, bigquery_week: int
) -> None:
    rows = run(con, f"SELECT EXTRACT(WEEK FROM DATE '{day}')")

    assert rows == [(bigquery_week,)]


def test_to_duckdb_date_trunc_of_a_date_expression_stays_a_date(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = run(con, "SELECT DATE_TRUNC(DATE(ts), MONTH) FROM s.t")

    assert rows == [(date(2024, 3, 1),)]
    assert type(rows[0][0]) is date


def test_to_duckdb_date_trunc_of_a_date_column_stays_a_date_with_schema(
    con: duckdb.DuckDBPyConnection,
) -> None:
    schema = {"s": {"t": {"d": "DATE", "ts": "TIMESTAMP WITH TIME ZONE"}}}

    rows = run(
        con, "SELECT DATE_TRUNC(x.d, YEAR), DATE_TRUNC(d, QUARTER) FROM s.t AS x", schema=schema
    )

    assert rows == [(date(2024, 1, 1), date(2024, 1, 1))]
    assert {type(value) for value in rows[0]} == {date}


def test_to_duckdb_timestamp_trunc_stays_a_timestamp(con: duckdb.DuckDBPyConnection) -> None:
    rows = run(con, "SELECT TIMESTAMP_TRUNC(ts, MONTH) FROM s.t")

    assert isinstance(rows[0][0], datetime)
    assert rows[0][0].isoformat() == "2024-03-01T00:00:00+00:00"


def test_to_duckdb_date_trunc_week_starts_on_sunday(con: duckdb.DuckDBPyConnection) -> None:
    rows = run(con, "SELECT DATE_TRUNC(DATE '2024-03-15', WEEK)")  # a Friday

    assert rows == [(date(2024, 3, 10),)]


def test_to_duckdb_date_of_a_timestamp_is_the_utc_date(con: duckdb.DuckDBPyConnection) -> None:
    rows = run(con, "SELECT DATE(ts) FROM s.t")

    assert rows == [(date(2024, 3, 15),)]


@pytest.mark.parametrize(
    ("dividend", "divisor", "bigquery_answer"),
    [
        ("3", "4", 0.75),
        ("1", "0", None),  # a zero divisor: NULL, where DuckDB's / gives Infinity
        ("0", "0", None),  # and NaN
        ("CAST(1e308 AS FLOAT64)", "1e-10", None),  # an overflow: NULL, not Infinity
        ("-1e308", "0.5", None),
        ("NULL", "2", None),
        ("1 + 2", "2 - 1", 3.0),  # operations as operands keep their precedence
    ],
)
def test_to_duckdb_safe_divide_is_null_wherever_the_division_fails(
    con: duckdb.DuckDBPyConnection, dividend: str, divisor: str, bigquery_answer: float | None
) -> None:
    rows = run(con, f"SELECT SAFE_DIVIDE({dividend}, {divisor})")

    assert rows == [(bigquery_answer,)]


def test_to_duckdb_turns_named_parameters_into_duckdb_parameters(
    con: duckdb.DuckDBPyConnection,
) -> None:
    [statement] = to_duckdb("SELECT COUNT(*) FROM s.t WHERE d = @day AND @n > 0")

    rows = con.execute(statement, {"day": date(2024, 3, 15), "n": 1}).fetchall()

    assert rows == [(1,)]


def test_to_duckdb_returns_one_string_per_statement() -> None:
    statements = to_duckdb("CREATE TABLE s.a AS SELECT 1 AS x;\nSELECT COUNTIF(x > 0) FROM s.a;")

    assert len(statements) == 2
    assert statements[0].startswith("CREATE TABLE")


def test_to_duckdb_reports_unparseable_sql() -> None:
    with pytest.raises(WarehouseError, match="cannot parse BigQuery SQL"):
        to_duckdb("SELECT FROM WHERE (")


def test_split_statements_keeps_bigquery_dialect() -> None:
    statements = split_statements("SELECT DATE_TRUNC(d, MONTH) FROM s.t; SELECT 2")

    assert statements == ["SELECT DATE_TRUNC(d, MONTH) FROM s.t", "SELECT 2"]


def test_render_replaces_both_placeholders_only(isolated_env: object) -> None:
    settings = load_settings(warehouse_dataset="raw", cooked_warehouse_dataset="cooked")

    sql = render("SELECT '{x}' FROM {dataset}.t JOIN {cooked_dataset}.u USING (k)", settings)

    assert sql == "SELECT '{x}' FROM raw.t JOIN cooked.u USING (k)"


@pytest.mark.parametrize("name", ["my-project.ds", "1abc", "a b", ""])
def test_render_rejects_dataset_names_that_need_quoting(isolated_env: object, name: str) -> None:
    settings = dataclasses.replace(load_settings(), cooked_warehouse_dataset=name)

    with pytest.raises(ConfigError, match="SLUICE_COOKED_WAREHOUSE_DATASET"):
        render("SELECT 1", settings)


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("SELECT DATE_TRUNC(d, MONTH) FROM s.t", True),
        ("select date_trunc(d, month) from s.t", True),
        ("SELECT d, TIMESTAMP_TRUNC(ts, MONTH) FROM s.t WHERE d > @since", False),
    ],
)
def test_reads_column_types_only_for_date_trunc(sql: str, reads: bool) -> None:
    # Act
    needed = reads_column_types(sql)

    # Assert: only DATE_TRUNC's fix looks columns up, so other SQL needs no catalog read.
    assert needed is reads
