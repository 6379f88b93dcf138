"""Access-log ingest against DuckDB and GoAccess on one combined-log file (part of ``make bench``).

    .venv/bin/python bench/access_log_bench.py [--rows 1000000] [--seed 1]

On one file of Combined Log Format lines, generated once per (rows, seed) with ``sluice
generate access_logs``, in the same run:

1. ``sluice ingest --dataset access_logs`` into the local DuckDB warehouse, as
   bench/ingest_bench.py times it (validation, parallel ranges, staging, the load);
2. DuckDB alone (the columnar ceiling): ``read_csv`` with a delimiter that never occurs
   reads the lines, ``regexp_extract`` with named groups takes the fields Sluice keeps, a
   second one splits the request line, ``strptime`` types the time as a TIMESTAMPTZ,
   ``CAST`` the status and size, ``-`` is NULL; into a table of a DuckDB database file. Twice:
   one ``regexp_extract`` of every field, as people write it, and the fields four at a time,
   as Sluice extracts them (RE2 is several times slower past four groups). Neither undoes
   the servers' escapes (``\\"``, ``\\xHH``) nor enriches, which Sluice does;
3. GoAccess (``--log-format=COMBINED``, a JSON report to a file), the tool people run on
   these logs; "not installed" when it is not on PATH.

Each runs in a fresh process, so start-up is in every column; CPU seconds (user + system)
sit beside the wall clock, as a shared machine moves them far less. Rows/s count the rows
each tool made; the row counts must agree (DuckDB's tables and GoAccess's total requests
against Sluice's ``rows_in``). Targets from the issue: Sluice at least 0.5x DuckDB and 2x
GoAccess; whether they are met is printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from bench import ingest_bench  # noqa: E402  (the repo root is on the path from here on)
from bench.ingest_bench import (  # noqa: E402
    bench_sluice_ingest,
    generate_input,
    timed,
    timed_with_cpu,
)
from bench.machine import machine  # noqa: E402

DATASET = "access_logs"
TOOLS = {
    "sluice": "`sluice ingest` into the warehouse (validation + parallel pipeline)",
    "duckdb": "DuckDB: one `regexp_extract` of every field, `strptime`, into a table",
    "duckdb_split": "DuckDB, as above with the fields four at a time (RE2's one-pass limit)",
    "goaccess": "GoAccess `--log-format=COMBINED`, JSON report",
}
TARGETS = {"duckdb": 0.5, "duckdb_split": 0.5, "goaccess": 2.0}
"""Sluice's rows/s over each tool's, at least (the issue's targets)."""

_QUOTED = r'(?:[^"\\]|\\.)*'  # as Sluice reads a quoted field: \" never closes it
LINE_FIELDS = {
    "client_ip": r"\S+",
    "ident": r"\S+",
    "user_name": r"\S+",
    "time": r"[^\]]*",
    "request": _QUOTED,
    "status": r"\S+",
    "bytes_sent": r"\S+",
    "referrer": _QUOTED,
    "user_agent": _QUOTED,
}
LINE_SHAPE = r'^{} {} {} \[{}\] "{}" {} {} "{}" "{}"$'
KEPT = [name for name in LINE_FIELDS if name != "ident"]
"""The fields Sluice's table keeps (all but the ident)."""
DUCKDB_EXTRACTS = {"duckdb": [KEPT], "duckdb_split": [KEPT[:4], KEPT[4:]]}
"""Each DuckDB query's ``regexp_extract`` calls, by the fields each one captures. RE2 (in
DuckDB as in Arrow) extracts up to four groups with its fast one-pass matcher and more with a
slower one; Sluice extracts four at a time, so the second query gives DuckDB the same."""
REQUEST_PATTERN = r"^([A-Z][A-Z0-9_-]*) ([^ ?]*)(?:\?([^ ]*))? ([A-Z]+/[0-9]+(?:\.[0-9]+)?)$"
REQUEST_GROUPS = ["method", "path", "query", "protocol"]

DUCKDB_EXTRACT = """
CREATE TABLE access_logs AS
WITH fields AS (
    SELECT {extracts}
    FROM read_csv($path, columns = {'line': 'VARCHAR'}, header = false, delim = E'\\x1f',
                  quote = '', escape = '', auto_detect = false)
), matched AS (
    SELECT *, unnest(regexp_extract(request, $request_pattern, $request_groups))
    FROM fields
    WHERE client_ip <> ''
)
SELECT
    client_ip,
    nullif(user_name, '-') AS user_name,
    strptime(time, '%d/%b/%Y:%H:%M:%S %z') AS timestamp,
    nullif(method, '') AS method,
    nullif(path, '') AS path,
    nullif(query, '') AS query,
    nullif(protocol, '') AS protocol,
    CAST(status AS INTEGER) AS status,
    CAST(nullif(bytes_sent, '-') AS BIGINT) AS bytes_sent,
    nullif(referrer, '-') AS referrer,
    nullif(user_agent, '-') AS user_agent,
    request
FROM matched
"""

DUCKDB_SCRIPT = """
import json, sys, duckdb
sql, db, path, parameters = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
with duckdb.connect(db) as con:
    con.execute(sql, {"path": path, **parameters})
    print(con.execute("SELECT count(*) FROM access_logs").fetchone()[0])
"""


def line_pattern(capturing: list[str]) -> str:
    """A combined-log line, with a group for each field in ``capturing`` and no other."""
    pieces = (f"({p})" if name in capturing else f"(?:{p})" for name, p in LINE_FIELDS.items())
    return LINE_SHAPE.format(*pieces)


def bench_duckdb_regex(path: Path, query: str = "duckdb") -> int:
    """DuckDB's regex extraction of every field into a table of a fresh database file, in a
    fresh Python as ``sluice ingest`` runs (start-up in both columns); returns rows.

    ``query`` names the ``regexp_extract`` calls (``DUCKDB_EXTRACTS``)."""
    db = ingest_bench.OUT / "access_logs_regex.duckdb"
    db.unlink(missing_ok=True)
    batches = DUCKDB_EXTRACTS[query]
    extracts = ", ".join(
        f"unnest(regexp_extract(line, $pattern_{n}, $groups_{n}))" for n in range(len(batches))
    )
    parameters: dict[str, Any] = {
        "request_pattern": REQUEST_PATTERN,
        "request_groups": REQUEST_GROUPS,
    }
    for n, names in enumerate(batches):
        parameters[f"pattern_{n}"], parameters[f"groups_{n}"] = line_pattern(names), names
    sql = DUCKDB_EXTRACT.replace("{extracts}", extracts)
    command = [sys.executable, "-c", DUCKDB_SCRIPT, sql, str(db), str(path),
               json.dumps(parameters)]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stdout.split()[-1])


def bench_goaccess(goaccess: str, path: Path) -> dict[str, int]:
    """GoAccess's report of the file, written as JSON; the requests it counted."""
    report = ingest_bench.OUT / "goaccess.json"
    report.unlink(missing_ok=True)
    command = [goaccess, str(path), "--log-format=COMBINED", "--no-global-config",
               "--no-progress", f"--output={report}"]  # fmt: skip
    # Nothing on stdin: GoAccess reads a pipe there as one more log.
    subprocess.run(command, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    general = json.loads(report.read_text())["general"]
    return {key: int(general[key]) for key in ("total_requests", "valid_requests")}


def goaccess_version(goaccess: str) -> str:
    """``GoAccess 1.7`` (the tool prints ``GoAccess - 1.7.``)."""
    done = subprocess.run([goaccess, "--version"], check=True, capture_output=True, text=True)
    return done.stdout.splitlines()[0].replace(" - ", " ").rstrip(".")


def run(rows: int = 1_000_000, seed: int = 1) -> dict[str, Any]:
    """Sluice, DuckDB and GoAccess on one generated combined-log file, in one run."""
    ingest_bench.OUT.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]  # other work on the machine moves every figure
    _, path = timed(
        f"generate {rows:,} {DATASET} lines", lambda: generate_input(DATASET, rows, seed, ".log")
    )
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    counts: dict[str, int] = {}
    seconds["sluice"], cpu["sluice"], record = timed_with_cpu(
        "sluice ingest (validate + pipeline)", lambda: bench_sluice_ingest(path, DATASET)
    )
    counts["sluice"] = record["rows_in"]
    for query in DUCKDB_EXTRACTS:
        seconds[query], cpu[query], counts[query] = timed_with_cpu(
            f"{query}: regexp_extract into a table",
            lambda query=query: bench_duckdb_regex(path, query),
        )
    versions = {"duckdb": version("duckdb"), "goaccess": "not installed"}
    requests: dict[str, int] = {}
    goaccess = shutil.which("goaccess")
    if goaccess is None:
        print("  goaccess: not installed (Debian: apt-get install -y goaccess)", file=sys.stderr)
    else:
        versions["goaccess"] = goaccess_version(goaccess)
        seconds["goaccess"], cpu["goaccess"], requests = timed_with_cpu(
            "goaccess --log-format=COMBINED", lambda: bench_goaccess(goaccess, path)
        )
        counts["goaccess"] = requests["total_requests"]
    rows_per_s = {tool: counts[tool] / seconds[tool] for tool in seconds}
    ratios = {tool: rows_per_s["sluice"] / rows_per_s[tool] for tool in TARGETS if tool in seconds}
    return {
        "machine": machine(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "dataset": DATASET,
        "file": {"lines": rows, "mb": round(path.stat().st_size / 1e6, 1)},
        "versions": versions,
        "ingest_record": record,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": counts,
        "goaccess_requests": requests,
        "rows_per_s": rows_per_s,
        "counts_agree": len(set(counts.values())) == 1,
        "ratios": ratios,
        "targets": {
            tool: {"at_least": target, "met": ratios[tool] >= target if tool in ratios else None}
            for tool, target in TARGETS.items()
        },
    }


def print_table(result: dict[str, Any]) -> None:
    """The markdown table of one ``run``: seconds, rows, rows/s, Sluice's ratio to each."""
    seconds, counts, ratios = result["seconds"], result["rows"], result["ratios"]
    load = result["load_average"]
    print(
        f"\n{result['file']['lines']:,}-line combined access log, {result['file']['mb']:,.0f} MB;"
        f" {result['machine']}; DuckDB {result['versions']['duckdb']},"
        f" {result['versions']['goaccess']}; load average {load['before']:.1f} before,"
        f" {load['after']:.1f} after\n"
    )
    print("| tool | seconds | CPU seconds | rows | rows/s | Sluice's rows/s over it | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for tool, label in TOOLS.items():
        target = result["targets"].get(tool)
        goal = f"at least {target['at_least']}x: " if target else ""
        if tool not in seconds:
            print(f"| {label} | not installed | | | | | {goal}not measured |")
            continue
        ratio = f"{ratios[tool]:.2f}x" if tool in ratios else ""
        verdict = (goal + ("met" if target["met"] else "missed")) if target else ""
        print(
            f"| {label} | {seconds[tool]:.1f} | {result['cpu_seconds'][tool]:.1f} |"
            f" {counts[tool]:,} |"
            f" {result['rows_per_s'][tool]:,.0f} | {ratio} | {verdict} |"
        )
    record = result["ingest_record"]
    agree = "agree" if result["counts_agree"] else "DO NOT AGREE"
    print(
        f"\nrow counts {agree}: Sluice's rows_in {record['rows_in']:,} (loaded"
        f" {record['rows_loaded']:,}, dead {record['rows_dead']:,}), DuckDB's tables"
        f" {counts['duckdb']:,} and {counts['duckdb_split']:,}, GoAccess's total requests"
        f" {format(counts['goaccess'], ',') if 'goaccess' in counts else 'not measured'}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="lines in the log file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    result = run(args.rows, args.seed)
    results = ingest_bench.OUT / "access_log_results.json"
    results.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_table(result)


if __name__ == "__main__":
    main()
