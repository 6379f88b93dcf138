"""What the command line promises a shell, checked on the ``sluice`` process itself: an error
is one unwrapped line and exit 2, a rejected file exit 1, Ctrl-C 130 and SIGTERM 143 with
nothing half-loaded and nothing staged left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local.generate import generate
from sluice.errors import MissingTable
from sluice.settings import REPO_ROOT, load_settings
from sluice.warehouse import connected_warehouse

LOAD_ROWS = 200_000
"""Rows of the file an interrupted ingest loads: its load takes long enough to be hit."""


def sluice_process(home: Path, *argv: str, **environ: str) -> subprocess.Popen[str]:
    """Start ``sluice ARGV`` for ``home`` with stdout and stderr piped (not a terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(SLUICE_HOME=str(home), NO_GCE_CHECK="True", **environ)
    return subprocess.Popen(
        [sys.executable, "-m", "local.cli", *argv],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # our own signal target, like a terminal's foreground job
    )


def run_sluice(home: Path, *argv: str, **environ: str) -> tuple[int, str, str]:
    """Run ``sluice ARGV`` to its end; (exit code, stdout, stderr)."""
    process = sluice_process(home, *argv, **environ)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_error_is_one_unwrapped_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    not_a_number = "lots-" * 20

    code, _, err = run_sluice(tmp_path / "home", "status", SLUICE_MAX_FILE_BYTES=not_a_number)

    assert code == 2
    assert err.splitlines() == [
        f"sluice: error: SLUICE_MAX_FILE_BYTES: expected an integer, found {not_a_number!r}"
    ]


def test_home_that_is_a_file_is_a_setup_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file where SLUICE_HOME wants a directory")

    code, _, err = run_sluice(home, "status")

    assert code == 2
    assert err.splitlines() == [
        f"sluice: error: SLUICE_HOME: expected a directory at {home}, found a file at {home}"
    ]


def test_ingest_with_split_bytes_zero_is_a_setup_error(tmp_path: Path) -> None:
    code, _, err = run_sluice(
        tmp_path / "home",
        "ingest",
        str(REPO_ROOT / "data" / "samples" / "kiva_loans.csv"),
        "--dataset=kiva_loans",
        SLUICE_SPLIT_BYTES="0",
    )

    assert code == 2
    assert err.splitlines() == [
        "sluice: error: SLUICE_SPLIT_BYTES: expected an integer >= 1, found 0"
    ]


def test_ingest_into_a_corrupt_warehouse_is_a_setup_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "warehouse.duckdb").write_bytes(b"\x00garbage, not a database\xff" * 1000)

    code, _, err = run_sluice(
        home,
        "ingest",
        str(REPO_ROOT / "data" / "samples" / "kiva_loans.csv"),
        "--dataset=kiva_loans",
    )

    [line] = err.splitlines()
    assert code == 2
    assert line.startswith(f"sluice: error: {home / 'warehouse.duckdb'}: expected a DuckDB")
    assert "found one DuckDB cannot open" in line


def test_status_with_a_negative_limit_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run_sluice(tmp_path / "home", "status", "--limit", "-1")

    assert code == 2
    assert err.splitlines() == [
        "sluice: error: argument --limit: expected a whole number >= 0, found '-1'"
        " (see sluice status --help)"
    ]


@pytest.fixture(scope="module")
def big_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server_logs file of ``LOAD_ROWS`` rows, made once for the module."""
    path = tmp_path_factory.mktemp("big") / "logs.csv"
    generate("server_logs", LOAD_ROWS, path, seed=1)
    return path


def staged_files(home: Path) -> list[Path]:
    """Every staged Parquet file (or any other file) under the home's staging directory."""
    return [p for p in (home / "staging").rglob("*") if p.is_file()]


def wait_for_phase(process: subprocess.Popen[str], home: Path, phase: str) -> None:
    """Return once the ingest is in ``phase``: ``parse`` when a first file is staged, ``load``
    when the warehouse file grows past its size at that moment (rows going in)."""
    size_when_staged = None
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if staged_files(home):
            warehouse = home / "warehouse.duckdb"
            size = warehouse.stat().st_size if warehouse.exists() else 0
            size_when_staged = size if size_when_staged is None else size_when_staged
            if phase == "parse" or size > size_when_staged:
                return
        time.sleep(0.005)
    pytest.fail(f"the ingest never reached its {phase} phase: {process.communicate()[1]}")


def loaded_rows(home: Path, dataset: str) -> tuple[int, list[tuple[str, int]]]:
    """(rows in the dataset's table, (status, rows_loaded) of each ingestion-log row)."""
    with connected_warehouse(load_settings({"SLUICE_HOME": str(home)})) as warehouse:
        try:
            [rows] = warehouse.query(f"SELECT COUNT(*) AS n FROM {{dataset}}.{dataset}")
            log = warehouse.query("SELECT status, rows_loaded FROM {dataset}.ingestion_log")
        except MissingTable:
            return 0, []
    return rows["n"], [(row["status"], row["rows_loaded"]) for row in log]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "phase"),
    [(signal.SIGINT, "load"), (signal.SIGTERM, "load"), (signal.SIGTERM, "parse")],
    ids=["ctrl-c-load", "sigterm-load", "sigterm-parse"],
)
def test_ingest_stopped_by_a_signal_exits_128_plus_it_and_leaves_nothing_behind(
    tmp_path: Path, big_logs: Path, signum: signal.Signals, phase: str
) -> None:
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    scratch.mkdir()
    process = sluice_process(
        home,
        "ingest",
        str(big_logs),
        "--dataset=server_logs",
        SLUICE_SPLIT_BYTES=str(8 * 1024**2),  # several ranges: several staged files
        TMPDIR=str(scratch),
    )
    wait_for_phase(process, home, phase)

    process.send_signal(signum)
    _, err = process.communicate(timeout=120)

    rows, log = loaded_rows(home, "server_logs")
    assert process.returncode == 128 + signum, err
    assert err.splitlines() == [
        "sluice: error: interrupted"
        if signum == signal.SIGINT
        else "sluice: error: terminated (SIGTERM)"
    ]
    assert (rows, log) in ((0, []), (LOAD_ROWS, [("loaded", LOAD_ROWS)]))
    assert staged_files(home) == []
    assert list(scratch.iterdir()) == []
