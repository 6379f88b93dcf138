"""The dashboard's charts come from the ``-- dashboard:`` headers of sql/*.sql, and its code
names no dataset and no table: a new dataset adds a contract, its SQL and its chart lines."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from sluice.contracts import Contract
from sluice.cook.summaries import summary_files, table_name
from sluice.dashboard.specs import chart_specs
from sluice.errors import ConfigError
from sluice.settings import REPO_ROOT

DASHBOARD_CODE = REPO_ROOT / "sluice" / "dashboard"
NAMES = re.compile(r"kiva|server_|pipeline_|loads_per_day", re.I)

HOURLY = """-- Hourly things.
-- dashboard:
--   section: Things
--   position: 10
--   title: Things per hour
--   kind: columns
--   x: hour
--   y: things
--   order: hour DESC
--   limit: 5
CREATE OR REPLACE TABLE {cooked_dataset}.things_per_hour AS SELECT 1 AS things
"""


def test_dashboard_code_names_no_dataset_and_no_table(contracts: dict[str, Contract]) -> None:
    tables = {table_name(path) for path in summary_files(REPO_ROOT / "sql")}
    files = [p for p in DASHBOARD_CODE.iterdir() if p.suffix in (".py", ".j2")]

    found = {
        f"{path.name}:{n}": line
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if NAMES.search(line) or any(name in line for name in [*tables, *contracts])
    }

    assert len(files) >= 4 and found == {}


def test_dashboard_code_git_grep_finds_no_dataset_or_table_name() -> None:
    pattern = "kiva|server_|pipeline_|loads_per_day"
    done = subprocess.run(
        ["git", "grep", "-n", "-E", pattern, "--", "sluice/dashboard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )

    if done.returncode == 128:
        pytest.skip(f"not a git checkout: {done.stderr.strip()}")
    assert (done.returncode, done.stdout) == (1, "")


def test_chart_specs_of_the_repository_read_tables_the_summaries_build() -> None:
    tables = {table_name(path) for path in summary_files(REPO_ROOT / "sql")}

    specs = chart_specs(REPO_ROOT / "sql")

    assert [s.section for s in specs if s.kind != "alerts"] and all(
        s.table in tables for s in specs
    )
    assert list(dict.fromkeys(s.section for s in specs)) == [
        "Server traffic",
        "Web traffic (access logs)",
        "Kiva funding",
        "Pipeline health",
    ]
    assert [s.kind for s in specs].count("alerts") == 1


def test_chart_spec_of_a_new_summary_builds_its_query(tmp_path: Path) -> None:
    (tmp_path / "10_things_per_hour.sql").write_text(HOURLY)
    (tmp_path / "20_plain.sql").write_text(
        "CREATE OR REPLACE TABLE {cooked_dataset}.plain AS SELECT 1"
    )

    [spec] = chart_specs(tmp_path)

    assert (spec.table, spec.title, spec.name) == (
        "things_per_hour",
        "Things per hour",
        "things_per_hour",
    )
    assert spec.sql() == (
        "SELECT hour, things FROM {cooked_dataset}.things_per_hour ORDER BY hour DESC LIMIT 5"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("--   kind: columns", "--   kind: pie", r"expected kind one of"),
        ("--   y: things", "--   y: things; DROP TABLE x", r"expected plain column names"),
        ("--   order: hour DESC", "--   order: hour) --", r"expected plain column names"),
        ("--   limit: 5", "--   colour: red", r"unknown field\(s\) colour"),
        ("--   title: Things per hour\n", "", r"expected field\(s\) title"),
        ("--   limit: 5", "--   peaks: {table: nowhere, x: a, y: b}", r"no file builds it"),
    ],
)
def test_chart_spec_refuses_a_bad_header_naming_its_file(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    (tmp_path / "10_things_per_hour.sql").write_text(HOURLY.replace(old, new))

    with pytest.raises(ConfigError, match=message) as refused:
        chart_specs(tmp_path)

    assert "10_things_per_hour.sql" in str(refused.value)
