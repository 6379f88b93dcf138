"""Values never reach SQL text or a shell; identifiers come only from validated names.

- Every f-string of SQL in the code interpolates only identifiers (contract, schema and
  setting names, quoted by the adapters) or SQL built from them: the scan below lists each
  interpolation, and any one not reviewed here fails the test.
- The DuckDB adapter, given a hostile source uri, reason and raw text, runs no statement
  holding them, stores them exactly, and keeps its tables.
- No process is started through a shell; contract, column and dataset names that are not
  plain identifiers are refused.

Proven elsewhere and not repeated: BigQuery's transaction holds no values and its log row is
one parameterised MERGE (tests/sluice/warehouse/test_bigquery.py::
test_load_replacing_source_runs_one_transaction_with_no_values_in_sql and
test_record_ingestion_is_one_parameterised_merge); a dataset setting with quotes is refused
(tests/sluice/warehouse/test_duckdb.py::test_duckdb_warehouse_rejects_unsafe_dataset_name);
contract names with backticks, spaces, leading digits or underscores are refused
(tests/sluice/test_contracts.py::test_load_contract_refuses_names_that_are_not_identifiers).
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice.contracts import Contract, load_contract
from sluice.errors import ConfigError, ContractError
from sluice.schema import IngestionRecord, SourceRef, dead_letter_schema, processed_schema
from sluice.settings import REPO_ROOT, Settings, load_settings
from sluice.warehouse.dialect import render
from sluice.warehouse.duckdb import DuckDBWarehouse

CODE = [REPO_ROOT / "main.py"] + [
    path
    for package in ("sluice", "functions", "beam", "local")
    for path in (REPO_ROOT / package).rglob("*.py")
]
SQL = re.compile(r"\b(SELECT|INSERT|DELETE|UPDATE|MERGE|CREATE|ALTER|DROP|TRUNCATE)\b")
IDENTIFIER_BUILDERS = {"quote", "_table", "_staging_table"}
"""Calls that quote an identifier (DuckDB double quotes, BigQuery backticks)."""
REVIEWED = {
    # Column lists, placeholders ($name / @name) and type names built from the schema.
    "sluice/warehouse/duckdb.py": {
        "definitions",
        "names",
        "placeholders",
        "log_table",  # self._table(...)
        "superseded",  # write_modes.newer_load over $uri and $generation
    },
    # Quoted table names and $name / subquery expressions passed in, fragments made of them,
    # column names through the caller's quote, and a dataset name the contract checked.
    "sluice/warehouse/write_modes.py": {
        "log",
        "rows",
        "staged",
        "uri",
        "generation",
        "guard",
        "later",
        "older",
        "same_key",
        "names",
        "insert",
        "contract.name",
    },
    "sluice/warehouse/bigquery.py": {"source", "updates", "names", "inserts"},
    # Quoted table names passed in, and SQL fragments made of them (the script has no values).
    "sluice/warehouse/bigquery_staging.py": {
        "staged['log']",
        "targets['log']",
        "targets['rows']",
        "targets['dead']",
        "staged",
        "target",
        "uri",
        "generation",
        "newer",
        "columns",
        "where",
        "superseded_values",
        "', '.join((f'`{n}`' for n in log_names))",
    },
    # Cooked table names from sql/ file names (lower-case identifiers), a regex, a message.
    "sluice/cook/summaries.py": {"table", "re.escape(target)", "path", "target"},
    # Parameter-name indexes (@dataset_0 ...) and fragments of them; alert table columns.
    "sluice/warehouse/state.py": {
        "i",
        "union",
        "source",
        "checked",
        "columns",
        "', '.join(OPEN_ALERTS_COLUMNS)",
    },
    # Chart fields from sql/ headers, each checked against an identifier pattern on load.
    "sluice/dashboard/specs.py": {"self.x", "self.y", "self.table", "', '.join(self.selected())"},
    "local/demo.py": {"settings.duckdb_file"},  # a printed hint, not SQL
}
FORMATTED = "<% or str.format>"
"""What the scan lists for SQL built with ``%`` or ``str.format``."""
HOSTILE = 'x\'); DROP TABLE sluice.ingestion_log; --\n"$1" `t` ;'
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def sql_interpolations(path: Path) -> list[str]:
    """Each expression an f-string of SQL in ``path`` interpolates (by its source text), and
    FORMATTED for SQL built with ``%`` or ``str.format``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if SQL.search(text):
                found += [
                    ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)
                ]
        formatted = isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod)
        template = node.left if formatted else getattr(node, "func", None)
        if (
            isinstance(node, ast.Call)
            and isinstance(template, ast.Attribute)
            and template.attr == "format"
        ):
            template, formatted = template.value, True
        if formatted and isinstance(template, ast.Constant) and SQL.search(str(template.value)):
            found.append(FORMATTED)
    return found


def is_identifier(expression: str) -> bool:
    """An UPPER_CASE constant (subscripted or not) or a call that quotes an identifier."""
    if expression == FORMATTED:
        return False
    tree = ast.parse(expression, mode="eval").body
    if isinstance(tree, ast.Call):
        func = tree.func
        return (
            func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        ) in IDENTIFIER_BUILDERS
    names = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name)]
    return bool(names) and names[0].isupper()


def test_sql_text_interpolates_only_reviewed_identifiers() -> None:
    unreviewed = [
        f"{path.relative_to(REPO_ROOT)}: {{{expression}}}"
        for path in CODE
        for expression in sql_interpolations(path)
        if not is_identifier(expression)
        and expression not in REVIEWED.get(str(path.relative_to(REPO_ROOT)), set())
    ]
    scanned = sum(len(sql_interpolations(path)) for path in CODE)

    assert scanned > 40  # the scan sees the adapters' SQL
    assert unreviewed == []


def test_sql_scan_catches_a_value_interpolated_into_sql(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(uri, con):\n    con.execute(f\"DELETE FROM t WHERE uri = '{uri}'\")\n"
        '    con.execute("SELECT * FROM t WHERE a = %s" % uri)\n'
        '    con.execute(f"SELECT * FROM {quote(TABLE)} WHERE x = {self._table(n)}")\n'
    )

    found = sql_interpolations(bad)

    assert [e for e in found if not is_identifier(e)] == ["uri", FORMATTED]


class RecordingConnection:
    """A real DuckDB connection that keeps the text of every statement it is given."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
        self._connection = connection
        self._statements = statements

    def execute(self, sql: str, *args: Any) -> Any:
        """Record ``sql``, then run it."""
        self._statements.append(sql)
        return self._connection.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def test_duckdb_adapter_carries_hostile_values_only_as_parameters(
    settings: Settings,
    contracts: dict[str, Contract],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    statements: list[str] = []
    real_connect = duckdb.connect
    monkeypatch.setattr(
        duckdb, "connect", lambda *a, **k: RecordingConnection(real_connect(*a, **k), statements)
    )
    contract, source = contracts["kiva_lenders"], SourceRef(f"gs://landing/{HOSTILE}", 7)
    rows, dead = tmp_path / "rows.parquet", tmp_path / "dead.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [{"lenders": HOSTILE, "_source_uri": source.uri}], schema=processed_schema(contract)
        ),
        rows,
    )
    dead_row = {"source_uri": source.uri, "raw_text": HOSTILE, "reason": HOSTILE}
    pq.write_table(pa.Table.from_pylist([dead_row], schema=dead_letter_schema()), dead)
    record = IngestionRecord(
        "kiva_lenders", source.uri, 7, "loaded", 2, 1, 1, None, "job-1", NOW, NOW
    )
    rejected = IngestionRecord(
        "kiva_lenders", source.uri, 6, "rejected", 0, 0, 0, HOSTILE, "job-0", NOW, NOW
    )
    warehouse = DuckDBWarehouse(settings)

    warehouse.ensure_tables(contract)
    warehouse.record_ingestion(rejected)
    warehouse.load_replacing_source(contract, source, [str(rows)], [str(dead)], record)
    log = warehouse.query(
        "SELECT source_generation, reason FROM {dataset}.ingestion_log WHERE source_uri = @uri"
        " ORDER BY source_generation",
        {"uri": source.uri},
    )
    lenders = warehouse.query("SELECT lenders, _source_uri FROM {dataset}.kiva_lenders")
    letters = warehouse.query("SELECT raw_text, reason FROM {dataset}.kiva_lenders_dead_letter")

    assert log == [
        {"source_generation": 6, "reason": HOSTILE},
        {"source_generation": 7, "reason": None},
    ]
    assert lenders == [{"lenders": HOSTILE, "_source_uri": source.uri}]
    assert letters == [{"raw_text": HOSTILE, "reason": HOSTILE}]
    assert len(statements) > 10
    assert [s for s in statements if "DROP" in s or "$1" in s or source.uri in s] == []


def test_no_process_is_started_through_a_shell() -> None:
    starts, problems = 0, []
    for path in [*CODE, *(REPO_ROOT / "bench").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            called = ast.unparse(node.func)
            where = f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
            if called in ("os.system", "os.popen") or called.endswith("create_subprocess_shell"):
                problems.append(f"{where}: {called}")
            if not called.startswith("subprocess."):
                continue
            starts += 1
            shell = [k.value for k in node.keywords if k.arg == "shell"]
            if shell and not (isinstance(shell[0], ast.Constant) and shell[0].value is False):
                problems.append(f"{where}: shell={ast.unparse(shell[0])}")
            if node.args and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp):
                problems.append(f"{where}: a command line as one string")

    assert starts >= 2  # the local stack's services and the local pipeline jobs
    assert problems == []


@pytest.mark.parametrize(
    "name",
    [
        "kiva_loans\n",
        "kiva\nDROP",
        "a.b",
        "a-b",
        "x;y",
        "../x",
        "a/b",
        "ünï",
        "a" * 129,
        "x'y",
        "kiva ",
    ],
)
def test_contract_dataset_and_column_names_that_are_not_identifiers_are_refused(
    tmp_path: Path, name: str
) -> None:
    quoted = json.dumps(name)  # a YAML double-quoted string: "\\n" is a real newline
    dataset = tmp_path / "dataset.yaml"
    dataset.write_text(f"name: {quoted}\nversion: 1\ncolumns:\n  - {{name: a, type: string}}\n")
    column = tmp_path / "column.yaml"
    column.write_text(f"name: x\nversion: 1\ncolumns:\n  - {{name: {quoted}, type: string}}\n")

    with pytest.raises(ContractError, match="expected letters, digits and '_'"):
        load_contract(dataset)
    with pytest.raises(ContractError, match="expected letters, digits and '_'"):
        load_contract(column)


@pytest.mark.parametrize("setting", ["warehouse_dataset", "cooked_warehouse_dataset"])
@pytest.mark.parametrize("value", ["sluice\n", "sluice\nDROP", "sluice.x", "a b"])
def test_dataset_settings_that_are_not_identifiers_are_refused(setting: str, value: str) -> None:
    settings = load_settings(**{setting: value})

    with pytest.raises(ConfigError, match=f"SLUICE_{setting.upper()}"):
        DuckDBWarehouse(settings)
    with pytest.raises(ConfigError, match=f"SLUICE_{setting.upper()}"):
        render("SELECT 1 FROM {dataset}.t, {cooked_dataset}.u", settings)
