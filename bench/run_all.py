"""``make bench``: every benchmark of the project in one run, each against its own baseline.

    .venv/bin/python bench/run_all.py [--quick]

1. ingest throughput (bench/ingest_bench.py): the pipeline against DuckDB ``read_csv`` and
   the workshop-style per-row Beam pipeline on a 500k-row kiva_loans file (wide rows,
   quoted newlines) and a 1M-row server_logs file (short rows);
2. access-log ingest (bench/access_log_bench.py): ``sluice ingest`` of a 1M-line combined
   log against DuckDB's ``regexp_extract`` and GoAccess on the same file;
3. validation speed and peak memory at 100 MB, 500 MB and 2 GB (bench/validation_bench.py);
4. the function's weight: ``import main``, first request, deploy size (bench/function_bench.py);
5. drop to query on the local stack, phase by phase (bench/drop_to_query.py);
6. load on the local stack: 200 files (1% bad), then 1,000 duplicate events (bench/load_bench.py);
7. a burst of 1,000 server-log files within a minute, simulated: a Dataflow job per file
   against the fast lane and batches (bench/burst_bench.py).

``--quick`` runs every part at a small size, to check the benchmarks themselves. The figures
go to bench/out/bench_results.json and the tables to stdout, for the README. Nothing is
asserted except the load checks, whose failures make the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import (
    access_log_bench,
    burst_bench,
    drop_to_query,
    function_bench,
    ingest_bench,
    load_bench,
    validation_bench,
)
from bench.machine import machine

OUT = Path(__file__).resolve().parent / "out"
SIZES = {
    "full": {
        "rows": 500_000,
        "log_rows": 1_000_000,
        "access_log_lines": 1_000_000,
        "sizes_mb": (100, 500, 2000),
        "files": 200,
        "events": 1000,
        "burst_files": 1000,
    },
    "quick": {
        "rows": 20_000,
        "log_rows": 50_000,
        "access_log_lines": 50_000,
        "sizes_mb": (20, 50),
        "files": 12,
        "events": 50,
        "burst_files": 120,
    },
}


def run_all(size: dict[str, Any]) -> dict[str, Any]:
    """Run every benchmark in turn, printing each table as soon as it is measured."""
    results: dict[str, Any] = {"machine": machine()}
    print(f"machine: {results['machine']}")
    results["ingest"] = ingest_bench.run("kiva_loans", size["rows"])
    ingest_bench.print_table(results["ingest"])
    results["ingest_logs"] = ingest_bench.run("server_logs", size["log_rows"])
    ingest_bench.print_table(results["ingest_logs"])
    results["access_logs"] = access_log_bench.run(size["access_log_lines"])
    access_log_bench.print_table(results["access_logs"])
    results["validation"] = validation_bench.run(size["sizes_mb"])
    validation_bench.print_table(results["validation"])
    results["function"] = function_bench.run()
    function_bench.print_table(results["function"])
    results["drop_to_query"] = drop_to_query.run(runs=3)
    drop_to_query.print_table(results["drop_to_query"])
    bad = max(1, size["files"] // 100)
    results["load"] = load_bench.run_load(
        OUT / "load-home", files=size["files"], bad=bad, events=size["events"], seed=7,
        timeout=900.0,
    )  # fmt: skip
    print("\nLoad on the local stack\n")
    print(load_bench.markdown(results["load"]))
    results["burst"] = burst_bench.run(files=size["burst_files"])
    burst_bench.print_table(results["burst"])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the benches")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = run_all(SIZES["quick" if args.quick else "full"])
    results["seconds"] = time.perf_counter() - started
    (OUT / "bench_results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    problems = results["load"]["problems"]
    for problem in problems:
        print(f"check failed: {problem}", file=sys.stderr)
    print(f"\nall benchmarks: {results['seconds'] / 60:.1f} min")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
