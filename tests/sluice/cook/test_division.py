"""A bare ``a / b`` in summary SQL is refused before it runs: by the cook's plan and by
``sluice check``, in one line naming the file and the line; ``SAFE_DIVIDE`` is the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.cook.summaries import plan_summaries
from sluice.settings import REPO_ROOT
from tests.local.test_cli import run_cli

HEAD = "CREATE OR REPLACE TABLE {cooked_dataset}.{table} AS\n"


def summary(sql_dir: Path, name: str, select: str) -> Path:
    """Write ``sql_dir/<name>`` building the table its name promises from ``select``."""
    sql_dir.mkdir(exist_ok=True)
    table = name.split("_", 1)[1].removesuffix(".sql")
    path = sql_dir / name
    path.write_text(HEAD.replace("{table}", table) + select, encoding="utf-8")
    return path


def test_plan_refuses_a_bare_division_naming_file_and_line(tmp_path: Path) -> None:
    path = summary(
        tmp_path,
        "10_means.sql",
        "SELECT\n  path,\n  SUM(latency_ms)\n    / COUNT(latency_ms) AS mean\n"
        "FROM {dataset}.server_logs GROUP BY path",
    )

    usable, [failure] = plan_summaries(tmp_path)

    assert usable == [] and failure.table == "means"
    assert str(failure) == (
        f"{path}: expected SAFE_DIVIDE(a, b), found SUM(latency_ms) / COUNT(latency_ms) at line 5"
    )


def test_plan_refuses_small_literal_divisors_and_division_inside_a_cte(tmp_path: Path) -> None:
    summary(tmp_path, "10_zero.sql", "SELECT 1 / 0 AS x")
    summary(tmp_path, "15_tiny.sql", "SELECT 1e308\n/ 0.5 AS x")  # overflows: not safe either
    summary(
        tmp_path,
        "20_nested.sql",
        "WITH t AS (SELECT status / (status - 200) AS x FROM {dataset}.server_logs)\n"
        "SELECT x FROM t",
    )

    _, failures = plan_summaries(tmp_path)

    assert [f.reason for f in failures] == [
        "expected SAFE_DIVIDE(a, b), found 1 / 0 at line 2",
        "expected SAFE_DIVIDE(a, b), found 1e308 / 0.5 at line 3",
        "expected SAFE_DIVIDE(a, b), found status / (status - 200) at line 2",
    ]


def test_plan_accepts_safe_divide_and_number_divisors_of_at_least_one(tmp_path: Path) -> None:
    summary(
        tmp_path,
        "10_rates.sql",
        "SELECT SAFE_DIVIDE(COUNTIF(status >= 500), COUNT(*)) AS rate,\n"
        "  SUM(latency_ms) / 1000.0 AS seconds, COUNT(*) / -(2) AS half, MAX(status) / 1e2 AS x\n"
        "FROM {dataset}.server_logs",
    )

    usable, failures = plan_summaries(tmp_path)

    assert failures == [] and [table for _, table, _, _ in usable] == ["rates"]


def test_shipped_summaries_use_safe_divide() -> None:
    assert plan_summaries(REPO_ROOT / "sql")[1] == []


def test_check_prints_the_bare_division_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = summary(tmp_path, "10_ratio.sql", "SELECT COUNT(*) / SUM(status) AS r\nFROM t")
    monkeypatch.setenv("SLUICE_SQL_DIR", str(tmp_path))

    code, out, _ = run_cli(capsys, "check")

    assert code == 2
    assert out.splitlines() == [
        f"{path}: expected SAFE_DIVIDE(a, b), found COUNT(*) / SUM(status) at line 2"
    ]
