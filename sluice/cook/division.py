"""Summary SQL divides with ``SAFE_DIVIDE(a, b)``, never ``a / b``: one answer on both warehouses.

BigQuery's ``/`` raises on a zero divisor (and on a FLOAT64 overflow), which fails the whole
summary; DuckDB's ``/`` answers the same division with Infinity or NaN, which then sits in a
cooked table. ``SAFE_DIVIDE`` is NULL in both cases on BigQuery, and ``sluice.warehouse.dialect``
transpiles it to DuckDB with the same meaning. So a bare ``/`` is refused before anything
runs, by ``sluice check`` and by the cook's plan, naming the file and the line. Dividing by a
number literal of magnitude 1 or more (``hours / 24``) can neither fail nor overflow, and is
allowed.
"""

from __future__ import annotations

from pathlib import Path

from sqlglot import exp

from sluice.errors import ConfigError

FOUND_MAX_CHARS = 80


def refuse_bare_division(path: Path, statements: list[exp.Expr]) -> None:
    """Raise ConfigError at the first ``a / b`` of ``statements`` whose divisor is not a
    number literal of magnitude 1 or more; ``statements`` are ``path``'s parsed BigQuery SQL."""
    divisions = [d for statement in statements for d in statement.find_all(exp.Div)]
    bare = [d for d in divisions if not _is_safe_divisor(d.expression)]
    if not bare:
        return
    first = min(bare, key=_position)
    found = " ".join(first.sql(dialect="bigquery").split())
    if len(found) > FOUND_MAX_CHARS:
        found = found[:FOUND_MAX_CHARS] + "..."
    raise ConfigError(
        f"{path}: expected SAFE_DIVIDE(a, b), found {found} at line {_position(first)[0]}"
    )


def _is_safe_divisor(node: exp.Expr) -> bool:
    """A number literal of magnitude 1 or more: never zero, and ``|a / b| <= |a|``."""
    while isinstance(node, exp.Paren | exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and node.is_number and abs(float(node.this)) >= 1


def _position(division: exp.Div) -> tuple[int, int]:
    """(line, column) of the divisor's first token: where the ``/`` is, give or take a line."""
    for side in (division.expression, division.this):
        found = [
            (node.meta["line"], node.meta["col"]) for node in side.walk() if "line" in node.meta
        ]
        if found:
            return min(found)
    return (0, 0)
