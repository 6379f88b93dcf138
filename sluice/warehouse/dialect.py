"""BigQuery SQL for both warehouses: placeholder rendering and transpiling to DuckDB.

Summary SQL is written once, in BigQuery's dialect, with ``{dataset}`` and
``{cooked_dataset}`` placeholders. ``render`` replaces them with bare dataset names
(``sluice.kiva_loans``), never ``project.dataset``: BigQuery resolves an unqualified
``dataset.table`` in the query job's project (the client's ``bq_project``), and DuckDB reads
the same text as ``schema.table``, so one rendering serves both backends and no project id
(which may hold ``-``) ever needs quoting.

``to_duckdb`` transpiles with sqlglot and then fixes the differences sqlglot leaves in place
(measured with DuckDB 2.0 and sqlglot 30):

- ``EXTRACT(DAYOFWEEK ...)``: BigQuery counts Sunday=1..Saturday=7, DuckDB Sunday=0..6,
  so 1 is added.
- ``EXTRACT(WEEK ...)``: BigQuery's week starts on Sunday (days before the year's first
  Sunday are week 0), DuckDB's is the ISO week; rewritten to ``strftime(x, '%U')``.
- ``DATE_TRUNC(date, MONTH)`` (any non-week unit): DuckDB returns a TIMESTAMP where
  BigQuery keeps the DATE, so the result is cast back to DATE when the argument is provably
  a DATE: a DATE-typed expression (``DATE(ts)``, ``CAST(x AS DATE)``, a literal) or a column
  that ``schema`` says is DATE. Week units already come out right from sqlglot.
- ``DATE(ts)`` follows the session time zone in DuckDB: every DuckDB connection must run
  ``SET TimeZone='UTC'`` (``DuckDBWarehouse`` does).
- ``SAFE_DIVIDE(a, b)``: BigQuery answers NULL wherever ``a / b`` would raise, a zero
  divisor or a FLOAT64 overflow (``1e308 / 1e-10``); sqlglot only guards the zero divisor,
  and DuckDB's ``/`` gives Infinity on overflow, so a quotient that is not finite is NULL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from sluice.errors import ConfigError, WarehouseError
from sluice.settings import Settings

DATASET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# schema name -> table name -> column name -> type name (as DuckDB or BigQuery spells it)
CatalogTypes = Mapping[str, Mapping[str, Mapping[str, str]]]


def check_dataset_name(name: str, setting: str) -> str:
    """Return ``name`` when it is a plain identifier, else raise ConfigError."""
    if not DATASET_NAME.fullmatch(name):  # match() lets "$" accept a trailing newline
        raise ConfigError(
            f"{setting}: expected a name matching {DATASET_NAME.pattern}, found {name!r}"
        )
    return name


def render(sql: str, settings: Settings) -> str:
    """Replace ``{dataset}`` and ``{cooked_dataset}`` with the configured dataset names."""
    dataset = check_dataset_name(settings.warehouse_dataset, "SLUICE_WAREHOUSE_DATASET")
    cooked = check_dataset_name(
        settings.cooked_warehouse_dataset, "SLUICE_COOKED_WAREHOUSE_DATASET"
    )
    # str.replace, not str.format: other braces (JSON paths, regexes) must survive untouched.
    return sql.replace("{cooked_dataset}", cooked).replace("{dataset}", dataset)


def split_statements(sql: str) -> list[str]:
    """The statements of a BigQuery script, each as BigQuery SQL."""
    return [tree.sql(dialect="bigquery") for tree in _parse(sql)]


def to_duckdb(sql: str, schema: CatalogTypes | None = None) -> list[str]:
    """Transpile a BigQuery script to DuckDB statements, one string per statement.

    ``schema`` (schema -> table -> column -> type) lets DATE columns be recognised; a
    script whose later statements read tables made by earlier ones should be transpiled
    one statement at a time (``split_statements``) with a fresh catalog each time.
    """
    statements: list[str] = []
    for tree in _parse(sql):
        _fix_bigquery_semantics(tree, schema or {})
        statements.append(tree.sql(dialect="duckdb"))
    return statements


def reads_column_types(sql: str) -> bool:
    """Whether ``to_duckdb`` may look ``sql``'s columns up in ``schema``: only a DATE_TRUNC
    operand is, so other SQL needs no catalog (reading it is the slowest part of a short
    query on a fresh DuckDB connection)."""
    return "DATE_TRUNC" in sql.upper()


def _parse(sql: str) -> list[exp.Expr]:
    try:
        trees = sqlglot.parse(sql, read="bigquery")
    except sqlglot.errors.ParseError as exc:
        raise WarehouseError(f"cannot parse BigQuery SQL: {exc}") from None
    return [tree for tree in trees if tree is not None]


def _fix_bigquery_semantics(tree: exp.Expr, schema: CatalogTypes) -> None:
    annotate_types(tree, dialect="bigquery")
    # Reversed pre-order visits descendants before ancestors, so an outer rewrite copies an
    # inner node that is already fixed.
    targets = [n for n in tree.find_all(exp.Extract, exp.DateTrunc, exp.SafeDivide, bfs=False)]
    for node in reversed(targets):
        if isinstance(node, exp.Extract):
            _fix_extract(node)
        elif isinstance(node, exp.SafeDivide):
            _fix_safe_divide(node)
        elif _is_calendar_unit(node) and _is_date_typed(node.this, tree, schema):
            node.replace(exp.Cast(this=node.copy(), to=exp.DataType.build("DATE")))


def _fix_extract(node: exp.Extract) -> None:
    part = node.this.name.upper()
    operand = node.expression
    if part == "DAYOFWEEK":
        fresh = exp.Extract(this=exp.var("DAYOFWEEK"), expression=operand.copy())
        node.replace(exp.paren(exp.Add(this=fresh, expression=exp.Literal.number(1))))
    elif part == "WEEK":
        week = exp.Anonymous(
            this="STRFTIME", expressions=[operand.copy(), exp.Literal.string("%U")]
        )
        node.replace(exp.Cast(this=week, to=exp.DataType.build("BIGINT")))


def _fix_safe_divide(node: exp.SafeDivide) -> None:
    dividend, divisor = _operand(node.this), _operand(node.expression)
    quotient = exp.Div(this=dividend, expression=divisor)
    finite = exp.Anonymous(this="ISFINITE", expressions=[quotient])
    # CASE WHEN b <> 0 AND ISFINITE(a / b) THEN a / b END: NULL (no ELSE) where BigQuery is.
    when = exp.If(this=exp.and_(divisor.copy().neq(0), finite), true=quotient.copy())
    node.replace(exp.Case(ifs=[when]))


def _operand(node: exp.Expr) -> exp.Expr:
    """A copy of ``node``, in parentheses when it is itself an operation (``a + b``)."""
    return exp.paren(node.copy()) if isinstance(node, exp.Binary) else node.copy()


def _is_calendar_unit(node: exp.DateTrunc) -> bool:
    unit = node.args.get("unit")
    # WEEK / WEEK(<day>) parse to WeekStart; sqlglot already casts those to DATE.
    return (
        unit is not None
        and not isinstance(unit, exp.WeekStart)
        and unit.name.upper()
        not in (
            "WEEK",
            "ISOWEEK",
        )
    )


def _is_date_typed(node: exp.Expr, tree: exp.Expr, schema: CatalogTypes) -> bool:
    if node.type is not None and node.type.is_type(exp.DType.DATE):
        return True
    if isinstance(node, exp.Column):
        return _column_type(node, tree, schema) == "DATE"
    return False


def _column_type(column: exp.Column, tree: exp.Expr, schema: CatalogTypes) -> str | None:
    """The catalog type of ``column`` when the statement's tables name it unambiguously."""
    tables = [t for t in tree.find_all(exp.Table) if t.name]
    if column.table:
        tables = [t for t in tables if column.table in (t.alias_or_name, t.name)]
    found = set()
    for table in tables:
        columns = schema.get(table.db, {}).get(table.name, {})
        if column.name in columns:
            found.add(columns[column.name].upper())
    return found.pop() if len(found) == 1 else None
