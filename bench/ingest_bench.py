"""Ingest throughput against two baselines measured in the same run (``make bench``).

    .venv/bin/python bench/ingest_bench.py [--rows 500000] [--seed 1]

1. generates a kiva_loans file (quoted newlines and all) with ``sluice generate``;
2. times ``sluice ingest`` on it (validation + Beam pipeline + DuckDB load), as a user runs it;
3. times DuckDB's own ``read_csv`` into a table on the same file (the columnar ceiling);
4. times the workshop-style per-row Beam pipeline (ReadFromText, csv per line, dict per
   row, Parquet out) on the same file (the floor this project replaces);
and prints rows/s and the ratios. Nothing here is asserted: the numbers go in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
sys.path.insert(0, str(BENCH_DIR.parent))


def timed(label: str, work) -> tuple[float, object]:
    """Run ``work()`` once; return (seconds, result) and say so on stderr."""
    print(f"  {label} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    print(f"  {label}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds, result


def sluice_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``sluice`` command with its own SLUICE_HOME."""
    env = {**os.environ, "SLUICE_HOME": str(home)}
    command = [str(Path(sys.executable).parent / "sluice"), *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True)


def generate_input(rows: int, seed: int) -> Path:
    """The benchmark file, generated once per (rows, seed) and reused."""
    path = OUT / f"kiva_loans_{rows}_{seed}.csv"
    if not path.exists():
        sluice_cli(
            "generate",
            "kiva_loans",
            f"--rows={rows}",
            f"--seed={seed}",
            f"--out={path}",
            home=OUT / "home",
        )
    return path


def bench_sluice_ingest(path: Path) -> dict[str, int]:
    """``sluice ingest`` end to end into a fresh DuckDB file; returns the ingest record."""
    home = OUT / "home-ingest"
    subprocess.run(["rm", "-rf", str(home)], check=True)
    done = sluice_cli("ingest", str(path), "--dataset=kiva_loans", "--json", home=home)
    return json.loads(done.stdout)[0]


def bench_duckdb_read_csv(path: Path) -> int:
    """DuckDB read_csv of the same file into a table; returns rows."""
    import duckdb

    db = OUT / "read_csv.duckdb"
    db.unlink(missing_ok=True)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "CREATE TABLE loans AS SELECT * FROM read_csv(?, header = true, quote = '\"', "
            "escape = '\"', strict_mode = false)",
            [str(path)],
        )
        return con.execute("SELECT count(*) FROM loans").fetchone()[0]


def bench_validation(path: Path) -> int:
    """Streaming validation alone (what the function does at the door); returns records."""
    from functions.validation import validate_stream
    from sluice.contracts import load_contracts
    from sluice.settings import load_settings

    settings = load_settings()
    contract = load_contracts(settings.contracts_dir)["kiva_loans"]
    with path.open("rb") as raw:
        return validate_stream(raw, contract, settings).records


def bench_per_row_beam(path: Path) -> int:
    """The workshop-style per-row Beam pipeline; returns rows it wrote."""
    from bench.per_row_baseline import run_baseline

    out_dir = OUT / "per_row"
    subprocess.run(["rm", "-rf", str(out_dir)], check=True)
    return run_baseline(path, out_dir)


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    print(f"machine: {machine()}", file=sys.stderr)
    gen_s, path = timed(
        f"generate {args.rows:,} kiva_loans rows", lambda: generate_input(args.rows, args.seed)
    )
    size_mb = path.stat().st_size / 1e6
    ingest_s, record = timed(
        "sluice ingest (validate + pipeline + load)", lambda: bench_sluice_ingest(path)
    )
    valid_s, _ = timed("validation alone", lambda: bench_validation(path))
    duck_s, duck_rows = timed("duckdb read_csv into a table", lambda: bench_duckdb_read_csv(path))
    per_row_s, per_row_rows = timed(
        "per-row Beam pipeline to Parquet", lambda: bench_per_row_beam(path)
    )

    rows = record["rows_in"]
    # Every path consumed the same file, so each is measured in the file's records per
    # second; the per-row baseline writes fewer, wrong rows (quoted newlines split them).
    paths = {
        "sluice_ingest": ("`sluice ingest` (validate + Beam + DuckDB load)", ingest_s),
        "duckdb_read_csv": ("DuckDB `read_csv` into a table", duck_s),
        "per_row_beam": ("per-row Beam pipeline to Parquet (workshop style)", per_row_s),
    }
    results = {
        "machine": machine(),
        "file": {"rows": rows, "mb": round(size_mb, 1), "generate_seconds": gen_s},
        "validation": {"seconds": valid_s, "mb_per_s": size_mb / valid_s},
        "ingest_record": record,
        "duckdb_rows": duck_rows,
        "per_row_rows_written": per_row_rows,
        **{key: {"seconds": s, "rows_per_s": rows / s} for key, (_, s) in paths.items()},
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))

    print(f"\n{rows:,}-row kiva_loans file, {size_mb:,.0f} MB; {machine()}\n")
    print("| path | seconds | file rows/s | sluice ingest is |")
    print("|---|---:|---:|---:|")
    for label, seconds in paths.values():
        ratio = seconds / ingest_s
        print(f"| {label} | {seconds:.1f} | {rows / seconds:,.0f} | {ratio:.2f}x as fast |")
    print(
        f"| validation alone (streaming, at the door) | {valid_s:.1f} | {rows / valid_s:,.0f} |"
        f" {size_mb / valid_s:,.0f} MB/s |"
    )
    print(
        f"\nrows in {rows:,} = loaded {record['rows_loaded']:,} + dead {record['rows_dead']:,};"
        f" DuckDB read {duck_rows:,} rows; the per-row baseline wrote {per_row_rows:,} rows"
        " (it splits quoted newlines into rows)."
    )


if __name__ == "__main__":
    main()
