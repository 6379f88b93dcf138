"""The warehouse port owns its state tables: no SQL against ``ingestion_log`` or ``alerts``
outside ``sluice/warehouse/``.

Every string literal (f-strings and ``+`` chains of literals included; docstrings left out)
of every module of the deployable and runnable code is read with ``ast``; one that holds a
SQL statement naming either table, by name or through the ``INGESTION_LOG_TABLE`` /
``ALERTS_TABLE`` constants, is a breach: that access belongs in ``sluice.warehouse.state``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.settings import REPO_ROOT

SCANNED = ("sluice", "beam", "local", "functions", "main.py")
OWNER = REPO_ROOT / "sluice" / "warehouse"
STATE_TABLES = r"(?:ingestion_log|alerts|INGESTION_LOG_TABLE|ALERTS_TABLE)"
SQL_VERB = re.compile(r"\b(?:select|insert|merge|delete|update|create|drop|alter|truncate)\b", re.I)
TABLE_REFERENCE = re.compile(
    rf"\b(?:from|into|join|update|merge|table|exists|using)\s+[^\s,;()]*?\b{STATE_TABLES}\b", re.I
)


def scanned_files() -> list[Path]:
    """Every Python file of the scanned trees outside the warehouse package."""
    files: list[Path] = []
    for name in SCANNED:
        path = REPO_ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return [path for path in files if OWNER not in path.parents]


def literal_text(node: ast.expr) -> str | None:
    """The text of a string literal, an f-string (``{expression}`` kept as written) or a
    ``+`` chain holding one; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(part.value)
            if isinstance(part, ast.Constant)
            else "{" + ast.unparse(part.value) + "}"
            for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = literal_text(node.left), literal_text(node.right)
        if left is None and right is None:
            return None
        # A name in the chain (a table constant) stays visible, as in an f-string.
        return (left or "{" + ast.unparse(node.left) + "}") + (
            right or "{" + ast.unparse(node.right) + "}"
        )
    return None


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the nodes that are docstrings (module, class, function, attribute)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for statement in body:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                found.add(id(statement.value))
    return found


def state_table_sql(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every literal in ``source`` that is SQL naming a state table."""
    tree = ast.parse(source)
    skip = docstrings(tree)
    inner: set[int] = set()  # parts of a JoinedStr or + chain already read as a whole
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in inner or not isinstance(node, ast.expr):
            continue
        text = literal_text(node)
        if text is None:
            continue
        inner.update(id(child) for child in ast.walk(node) if child is not node)
        if SQL_VERB.search(text) and TABLE_REFERENCE.search(text):
            yield node.lineno, " ".join(text.split())[:120]


@pytest.mark.parametrize(
    "source",
    [
        'SQL = """\nSELECT status FROM {dataset}.ingestion_log WHERE job_id = @job_id\n"""',
        'x = f"SELECT * FROM {{dataset}}.{INGESTION_LOG_TABLE} WHERE a = 1"',
        'x = f"MERGE {{dataset}}.{ALERTS_TABLE} AS T USING (SELECT 1) AS S ON TRUE"',
        "def f(c):\n    return f'CREATE TABLE IF NOT EXISTS {{dataset}}.{ALERTS_TABLE} ({c})'",
        "x = 'SELECT * FROM {dataset}.' + ALERTS_TABLE",
        'QUERIES = {"alerts": "SELECT * FROM {dataset}.alerts"}',
        "q = 'delete from sluice.ingestion_log where true'",
    ],
)
def test_the_rule_finds_sql_on_a_state_table(source: str) -> None:
    assert list(state_table_sql(source)) != []


@pytest.mark.parametrize(
    "source",
    [
        '"""Reads ``SELECT ... FROM {dataset}.ingestion_log`` through the port."""',
        'title = "open alerts (as of the last cook)"',
        'x = "SELECT * FROM {dataset}.kiva_loans"',
        'log.info("settled it from the ingestion-log row; alerts cleared")',
        'x = f"SELECT {columns} FROM {table}"',
    ],
)
def test_the_rule_ignores_prose_and_other_tables(source: str) -> None:
    assert list(state_table_sql(source)) == []


def test_no_module_outside_the_warehouse_writes_sql_on_its_state_tables() -> None:
    breaches = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {text}"
        for path in scanned_files()
        for line, text in state_table_sql(path.read_text(encoding="utf-8"))
    ]

    assert breaches == [], (
        "SQL against ingestion_log/alerts belongs in sluice.warehouse.state (use the port's"
        " typed methods):\n" + "\n".join(breaches)
    )
