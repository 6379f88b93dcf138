"""Ingest throughput against two baselines measured in the same run (part of ``make bench``).

    .venv/bin/python bench/ingest_bench.py [--rows 500000] [--seed 1]

1. generates a file of the dataset (kiva_loans: quoted newlines and all; server_logs: short
   rows, a timestamp each) with ``sluice generate``;
2. validates it as the function does, keeping the split index validation records;
3. times the pipeline (``python -m beam.pipeline``) from CSV to rows in DuckDB: in parallel
   ranges from that index, and serially (one range, one process) as it ran before splits;
4. times ``sluice ingest`` as a user runs it: one read of the file, validation handing each
   chunk to parse threads, then the load (no Beam);
5. times DuckDB's own ``read_csv`` into a table on the same file (the columnar ceiling), and
   counts the CPU seconds of both, which others' work on a shared machine moves far less
   than the wall clock;
6. times the workshop-style per-row Beam pipeline (ReadFromText, csv per line, dict per
   row, Parquet out) on the same file (the floor this project replaces);
and prints rows/s and the ratios. Nothing here is asserted: the numbers go in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
sys.path.insert(0, str(BENCH_DIR.parent))

from bench.machine import machine  # noqa: E402  (the repo root is on the path from here on)


def timed(label: str, work) -> tuple[float, object]:
    """Run ``work()`` once; return (seconds, result) and say so on stderr."""
    print(f"  {label} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    print(f"  {label}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds, result


def timed_with_cpu(label: str, work: Callable[[], Any]) -> tuple[float, float, Any]:
    """``timed``, plus the CPU seconds (user + system) of the processes ``work`` ran and
    waited for: a figure that others' work on a shared machine moves far less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, result = timed(label, work)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, result


def run_tool(command: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command of this virtualenv with its own SLUICE_HOME (emptied first)."""
    subprocess.run(["rm", "-rf", str(home)], check=True)
    environ = {**os.environ, "SLUICE_HOME": str(home), **env}
    return subprocess.run(command, env=environ, check=True, capture_output=True, text=True)


def venv_tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def generate_input(dataset: str, rows: int, seed: int, suffix: str = ".csv") -> Path:
    """The benchmark file, generated once per (dataset, rows, seed) and reused."""
    path = OUT / f"{dataset}_{rows}_{seed}{suffix}"
    if not path.exists():
        command = [venv_tool("sluice"), "generate", dataset, f"--rows={rows}"]
        run_tool([*command, f"--seed={seed}", f"--out={path}"], OUT / "home-generate")
    return path


def validate_with_index(path: Path, dataset: str) -> dict[str, Any]:
    """Validation alone (what the function does at the door); writes the split index."""
    from local.ingest import local_source
    from sluice.contracts import load_contracts
    from sluice.ingest.validation import validate_stream
    from sluice.settings import load_settings

    settings = load_settings()
    contract = load_contracts(settings.contracts_dir)[dataset]
    with path.open("rb") as raw:
        report = validate_stream(raw, contract, settings)
    index = report.split_index(local_source(path))
    index_path = OUT / "split-index.json"
    index_path.write_text(index.to_json() if index else "")
    return {"records": report.records, "split_points": len(report.split_points)}


def run_pipeline(path: Path, dataset: str, home: Path, *args: str, **env: str) -> dict[str, Any]:
    """``python -m beam.pipeline`` on the file into a fresh DuckDB; its ingestion record."""
    command = [sys.executable, "-m", "beam.pipeline", f"--input={path}", f"--dataset={dataset}"]
    done = run_tool([*command, *args], home, **env)
    record = [line for line in done.stderr.splitlines() if "ingestion record:" in line]
    return {"log": record[-1].split("ingestion record: ", 1)[-1] if record else ""}


def bench_sluice_ingest(path: Path, dataset: str) -> dict[str, int]:
    """``sluice ingest`` end to end into a fresh DuckDB file; returns the ingest record."""
    command = [venv_tool("sluice"), "ingest", str(path), f"--dataset={dataset}", "--json"]
    return json.loads(run_tool(command, OUT / "home-ingest").stdout)[0]


DUCKDB_READ_CSV = """
import sys, duckdb
with duckdb.connect(sys.argv[1]) as con:
    con.execute(
        "CREATE TABLE loans AS SELECT * FROM read_csv(?, header = true, quote = '\\"', "
        "escape = '\\"', strict_mode = false)",
        [sys.argv[2]],
    )
    print(con.execute("SELECT count(*) FROM loans").fetchone()[0])
"""


def bench_duckdb_read_csv(path: Path) -> int:
    """DuckDB read_csv of the same file into a table, in a fresh Python as the pipeline
    runs (interpreter start and imports included on both sides); returns rows."""
    db = OUT / "read_csv.duckdb"
    db.unlink(missing_ok=True)
    command = [sys.executable, "-c", DUCKDB_READ_CSV, str(db), str(path)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stdout.split()[-1])


def bench_per_row_beam(path: Path, dataset: str) -> int:
    """The workshop-style per-row Beam pipeline; returns rows it wrote."""
    from bench.per_row_baseline import run_baseline

    out_dir = OUT / "per_row"
    subprocess.run(["rm", "-rf", str(out_dir)], check=True)
    return run_baseline(path, out_dir, dataset=dataset)


def run(dataset: str = "kiva_loans", rows: int = 500_000, seed: int = 1) -> dict[str, Any]:
    """Every ingest measurement on one generated file of ``dataset``, in one run."""
    OUT.mkdir(parents=True, exist_ok=True)
    _, path = timed(
        f"generate {rows:,} {dataset} rows", lambda: generate_input(dataset, rows, seed)
    )
    size_mb = path.stat().st_size / 1e6
    index = f"--split_index={OUT / 'split-index.json'}"
    valid_s, validation = timed(
        "validation (records the split index)", lambda: validate_with_index(path, dataset)
    )
    parallel_s, _ = timed(
        "pipeline, parallel ranges",
        lambda: run_pipeline(path, dataset, OUT / "home-parallel", index),
    )
    serial_s, _ = timed(
        "pipeline, one range in one process",
        lambda: run_pipeline(
            path, dataset, OUT / "home-serial",
            SLUICE_SPLIT_BYTES=str(10**12), SLUICE_PIPELINE_WORKERS="1",
        ),
    )  # fmt: skip
    ingest_s, ingest_cpu, record = timed_with_cpu(
        "sluice ingest", lambda: bench_sluice_ingest(path, dataset)
    )
    duck_s, duck_cpu, duck_rows = timed_with_cpu(
        "duckdb read_csv into a table", lambda: bench_duckdb_read_csv(path)
    )
    per_row_s, per_row_rows = timed(
        "per-row Beam pipeline", lambda: bench_per_row_beam(path, dataset)
    )
    return {
        "machine": machine(),
        "dataset": dataset,
        "file": {"rows": record["rows_in"], "mb": round(size_mb, 1)},
        "validation": {"seconds": valid_s, "mb_per_s": size_mb / valid_s, **validation},
        "ingest_record": record,
        "duckdb_rows": duck_rows,
        "per_row_rows_written": per_row_rows,
        "cpu_seconds": {"sluice_ingest": ingest_cpu, "duckdb_read_csv": duck_cpu},
        "seconds": {
            "pipeline_parallel": parallel_s,
            "pipeline_serial": serial_s,
            "sluice_ingest": ingest_s,
            "duckdb_read_csv": duck_s,
            "per_row_beam": per_row_s,
        },
    }


LABELS = {
    "pipeline_parallel": "pipeline, parallel ranges (CSV -> DuckDB rows)",
    "pipeline_serial": "pipeline, one range in one process (before splits)",
    "sluice_ingest": "`sluice ingest` (validation feeding parse threads, no Beam)",
    "duckdb_read_csv": "DuckDB `read_csv` into a table",
    "per_row_beam": "per-row Beam pipeline to Parquet (workshop style)",
}


def print_table(result: dict[str, Any]) -> None:
    """The markdown table of one ``run``: rows/s and ratios against both baselines."""
    rows, seconds = result["file"]["rows"], result["seconds"]
    duck, per_row = seconds["duckdb_read_csv"], seconds["per_row_beam"]
    name, mb = result["dataset"], result["file"]["mb"]
    print(f"\n{rows:,}-row {name} file, {mb:,.0f} MB; {result['machine']}\n")
    print("| path | seconds | file rows/s | vs DuckDB read_csv | vs per-row Beam |")
    print("|---|---:|---:|---:|---:|")
    for key, label in LABELS.items():
        s = seconds[key]
        print(f"| {label} | {s:.1f} | {rows / s:,.0f} | {duck / s:.2f}x | {per_row / s:.1f}x |")
    cpu = result["cpu_seconds"]
    print(
        f"\nCPU seconds: `sluice ingest` {cpu['sluice_ingest']:.1f}, DuckDB read_csv"
        f" {cpu['duckdb_read_csv']:.1f}"
        f" ({cpu['duckdb_read_csv'] / cpu['sluice_ingest']:.2f}x in CPU)."
    )
    validation = result["validation"]
    print(
        f"\nvalidation: {validation['seconds']:.1f} s, {validation['mb_per_s']:,.0f} MB/s,"
        f" {validation['split_points']} split points recorded."
        f"\nrows in {rows:,} = loaded {result['ingest_record']['rows_loaded']:,}"
        f" + dead {result['ingest_record']['rows_dead']:,}; DuckDB read"
        f" {result['duckdb_rows']:,} rows; the per-row baseline wrote"
        f" {result['per_row_rows_written']:,} rows (a record split by a quoted newline"
        " fails its line-by-line parse and is dropped)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="kiva_loans")
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    result = run(args.dataset, args.rows, args.seed)
    (OUT / "ingest_results.json").write_text(json.dumps(result, indent=2, default=str))
    print_table(result)


if __name__ == "__main__":
    main()
