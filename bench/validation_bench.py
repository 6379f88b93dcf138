"""Validation at the door: throughput and peak memory against file size (``make bench``).

    .venv/bin/python bench/validation_bench.py [--sizes 100 500 2000]

Builds kiva_loans files of about 100 MB, 500 MB and 2 GB under bench/out/ (one generated
file, its data records appended again and again; cached), then validates each with
``sluice.ingest.validation.validate_stream`` in a fresh process, so the peak RSS is that run's
alone. A bare process that only imports the same modules gives the floor, so the table shows
what the validator itself adds. Validation is single-threaded: MB/s is per core.
Targets (issue 6): at least 100 MB/s per core; a 2 GB file in under 300 MB of RSS, flat in
file size. Sizes are in MB of 10^6 bytes, RSS included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT = BENCH_DIR / "out"
BASE_ROWS = 25_000
"""Rows of the generated file the bigger ones repeat (about 20 MB)."""
TARGET_MB_PER_S = 100.0
TARGET_PEAK_RSS_MB = 300.0

# Run in the child: the same imports in both modes, then validation unless asked not to.
CHILD_CODE = """
import json, sys, time
from sluice.ingest.validation import validate_stream
from sluice.contracts import load_contracts
from sluice.settings import load_settings
settings = load_settings()
contract = load_contracts(settings.contracts_dir)["kiva_loans"]
result = {}
if sys.argv[1] != "--imports-only":
    with open(sys.argv[1], "rb") as raw:
        start = time.perf_counter()
        report = validate_stream(raw, contract, settings)
        result["seconds"] = time.perf_counter() - start
    result.update(accepted=report.accepted, records=report.records, bytes=report.bytes_read,
                  problems=[p.message for p in report.problems])
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child of a big
# parent (make bench runs the ingest benchmark first) would report the parent's peak.
status = open("/proc/self/status").read().split("VmHWM:")[1]
result["peak_rss_kib"] = int(status.split()[0])
print(json.dumps(result))
"""


def base_file(seed: int = 1) -> Path:
    """The generated kiva_loans file every size is built from (generated once, cached)."""
    path = OUT / f"kiva_loans_{BASE_ROWS}_{seed}.csv"
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        command = [str(Path(sys.executable).parent / "sluice"), "generate", "kiva_loans"]
        command += [f"--rows={BASE_ROWS}", f"--seed={seed}", f"--out={temporary}"]
        env = {**os.environ, "SLUICE_HOME": str(OUT / "home")}
        subprocess.run(command, env=env, check=True, capture_output=True)
        temporary.replace(path)
    return path


def sized_file(size_mb: int, base: Path) -> Path:
    """A file of at least ``size_mb`` MB: ``base``'s header, then its records repeated."""
    path = OUT / f"kiva_loans_{size_mb}mb.csv"
    if path.exists():
        return path
    content = base.read_bytes()
    # The generator writes a one-line header (no quoted newline in column names).
    header_end = content.index(b"\n") + 1
    header, records = content[:header_end], content[header_end:]
    if not records.endswith(b"\n"):
        records += b"\n"
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as out:
        written = out.write(header)
        while written < size_mb * 1_000_000:
            written += out.write(records)
    temporary.replace(path)
    return path


def run_child(argument: str) -> dict[str, Any]:
    """Run ``CHILD_CODE`` in a fresh interpreter; its JSON result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_HOME"] = str(OUT / "home")
    done = subprocess.run(
        [sys.executable, "-c", CHILD_CODE, argument],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(sizes_mb: Sequence[int] = (100, 500, 2000)) -> list[dict[str, Any]]:
    """Validate a file of each size in its own process; one row of figures per size."""
    OUT.mkdir(parents=True, exist_ok=True)
    base = base_file()
    bare_rss_mb = run_child("--imports-only")["peak_rss_kib"] * 1024 / 1e6
    rows = []
    for size in sizes_mb:
        path = sized_file(size, base)
        measured = run_child(str(path))
        if not measured["accepted"]:
            raise RuntimeError(f"expected {path} accepted, found: {measured['problems']}")
        file_mb = measured["bytes"] / 1e6
        peak_mb = measured["peak_rss_kib"] * 1024 / 1e6
        rows.append(
            {
                "size_mb": size,
                "file_mb": file_mb,
                "records": measured["records"],
                "seconds": measured["seconds"],
                "mb_per_s": file_mb / measured["seconds"],
                "peak_rss_mb": peak_mb,
                "imports_only_rss_mb": bare_rss_mb,
                "validator_growth_mb": peak_mb - bare_rss_mb,
            }
        )
    return rows


def print_table(result: list[dict[str, Any]]) -> None:
    """The figures as a markdown table, with the targets they are held to."""
    print(
        "\nStreaming validation (`validate_stream`, single-threaded: MB/s is per core;"
        " each size in a fresh process)\n"
    )
    print(
        "| file MB | records | seconds | MB/s per core | peak RSS MB |"
        " imports-only RSS MB | validator's own MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in result:
        print(
            f"| {row['file_mb']:,.0f} | {row['records']:,} | {row['seconds']:.2f} |"
            f" {row['mb_per_s']:,.0f} | {row['peak_rss_mb']:,.0f} |"
            f" {row['imports_only_rss_mb']:,.0f} | {row['validator_growth_mb']:,.0f} |"
        )
    slowest = min(row["mb_per_s"] for row in result)
    highest = max(row["peak_rss_mb"] for row in result)
    growths = [row["validator_growth_mb"] for row in result]
    print(
        f"\ntargets: >= {TARGET_MB_PER_S:.0f} MB/s per core (slowest {slowest:,.0f}:"
        f" {'met' if slowest >= TARGET_MB_PER_S else 'MISSED'}); peak RSS < "
        f"{TARGET_PEAK_RSS_MB:.0f} MB (highest {highest:,.0f}:"
        f" {'met' if highest < TARGET_PEAK_RSS_MB else 'MISSED'}); validator's own memory"
        f" from {min(growths):,.0f} to {max(growths):,.0f} MB across sizes"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    args = parser.parse_args(argv)
    print_table(run(args.sizes))


if __name__ == "__main__":
    main()
