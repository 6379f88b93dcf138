"""The fast lane against the launch path, by file size: where SLUICE_FAST_LANE_MAX_BYTES sits.

    .venv/bin/python bench/fast_lane_bench.py [--rows 1000,10000,80000,160000] [--cpus 1]

For each size, one generated kiva_loans file (``sluice generate``, quoted newlines and all)
and one server_logs file of as many rows, each path in a fresh interpreter:

1. the fast lane, as ``on_upload`` runs it: validation, then
   ``sluice.ingest.fast_lane.load_in_function`` (parse, stage Parquet, one replacing load into
   a fresh DuckDB; then again as a newer generation, as a warm instance's next upload), pinned
   to ``--cpus`` cores with ``taskset`` (the deployed function has
   one vCPU: infra/functions.tf). Reports its imports, validation, load, peak RSS, and checks
   it never imported Beam;
2. the launch path as the local launcher runs it: validation, then ``python -m
   beam.pipeline`` (interpreter, Beam import, local runner, DuckDB), on every core.

The input is a local file in both, so the numbers are the work, not fake-gcs-server's
transfer. Dataflow's own start (minutes) is not measured here. Nothing is asserted: the
numbers go in the README's Performance section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from bench.ingest_bench import OUT, generate_input  # noqa: E402  (repo root on the path)
from bench.machine import machine  # noqa: E402

FAST_LANE_CODE = """
import json, resource, sys, time
from dataclasses import replace
start = time.perf_counter()
from sluice.contracts import load_contracts
from sluice.ingest.fast_lane import load_in_function
from sluice.ingest.launch import LaunchRequest
from sluice.ingest.validation import validate_stream
from sluice.schema import SourceRef
from sluice.settings import load_settings
imports = time.perf_counter() - start
path, dataset = sys.argv[1], sys.argv[2]
settings = load_settings()
contract = load_contracts(settings.contracts_dir)[dataset]
start = time.perf_counter()
with open(path, "rb") as raw:
    report = validate_stream(raw, contract, settings)
validation = time.perf_counter() - start
assert report.accepted, report.reason
source = SourceRef("gs://bench-landing/incoming/" + dataset + "/bench.csv", 1)
request = replace(LaunchRequest.for_object(dataset, source), input_uri=path)
start = time.perf_counter()
record = load_in_function(request, contract, settings, takeover=False)
load = time.perf_counter() - start
# The same file again as a newer generation: a warm instance's second upload.
request = replace(request, source=replace(source, generation=2))
start = time.perf_counter()
load_in_function(request, contract, settings, takeover=False)
warm = time.perf_counter() - start
print(json.dumps({
    "imports": imports, "validation": validation, "load": load, "load_warm": warm,
    "bytes": report.bytes_read, "rows_in": record.rows_in, "status": record.status,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "beam_imported": "apache_beam" in sys.modules,
}))
"""

VALIDATION_CODE = """
import json, sys, time
from sluice.contracts import load_contracts
from sluice.ingest.validation import validate_stream
from sluice.settings import load_settings
settings = load_settings()
contract = load_contracts(settings.contracts_dir)[sys.argv[2]]
start = time.perf_counter()
with open(sys.argv[1], "rb") as raw:
    report = validate_stream(raw, contract, settings)
print(json.dumps({"validation": time.perf_counter() - start}))
"""


def fresh_home(name: str) -> dict[str, str]:
    """The environment of a run with its own, empty SLUICE_HOME."""
    home = OUT / name
    shutil.rmtree(home, ignore_errors=True)
    return {**os.environ, "SLUICE_HOME": str(home), "PYTHONPATH": str(BENCH_DIR.parent)}


def bench_fast_lane(path: Path, dataset: str, cpus: int) -> dict[str, Any]:
    """Validation + the fast lane's load in a fresh interpreter on ``cpus`` cores."""
    pin = (
        ["taskset", "-c", ",".join(str(c) for c in range(cpus))] if shutil.which("taskset") else []
    )
    command = [*pin, sys.executable, "-c", FAST_LANE_CODE, str(path), dataset]
    start = time.perf_counter()
    done = subprocess.run(
        command, env=fresh_home("home-fast-lane"), check=True, capture_output=True, text=True
    )
    result = json.loads(done.stdout.splitlines()[-1])
    result["process"] = time.perf_counter() - start
    return result


def bench_launch_path(path: Path, dataset: str) -> dict[str, Any]:
    """Validation, then ``python -m beam.pipeline`` as the local launcher starts it."""
    env = fresh_home("home-launch-path")
    command = [sys.executable, "-c", VALIDATION_CODE, str(path), dataset]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    validation = json.loads(done.stdout.splitlines()[-1])["validation"]
    command = [sys.executable, "-m", "beam.pipeline", f"--input={path}", f"--dataset={dataset}"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return {"validation": validation, "pipeline": time.perf_counter() - start}


def run(rows: list[int], cpus: int, seed: int = 1) -> dict[str, Any]:
    """Both paths on each generated file."""
    results = []
    for dataset in ("kiva_loans", "server_logs"):
        for count in rows:
            path = generate_input(dataset, count, seed)
            fast = bench_fast_lane(path, dataset, cpus)
            launch = bench_launch_path(path, dataset)
            row = {"dataset": dataset, "rows": count, "mb": fast["bytes"] / 1e6}
            row.update({f"fast_{k}": v for k, v in fast.items()})
            row.update({f"launch_{k}": v for k, v in launch.items()})
            print(json.dumps(row), file=sys.stderr, flush=True)
            results.append(row)
    return {"machine": machine(), "cpus_fast_lane": cpus, "results": results}


def print_table(result: dict[str, Any]) -> None:
    """The README's table."""
    print(
        "| file | MB | fast lane, cold: validation + load (s) | warm load (s) | warm MB/s |"
        " peak RSS (MB) | launch path: validation + pipeline process (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in result["results"]:
        fast = r["fast_validation"] + r["fast_load"]
        launch = r["launch_validation"] + r["launch_pipeline"]
        print(
            f"| {r['dataset']} {r['rows']:,} rows | {r['mb']:.1f} | {fast:.2f} |"
            f" {r['fast_load_warm']:.2f} | {r['mb'] / r['fast_load_warm']:.0f} |"
            f" {r['fast_peak_rss_mb']:.0f} | {launch:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="1000,10000,80000,160000")
    parser.add_argument("--cpus", type=int, default=1)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    result = run([int(n) for n in args.rows.split(",")], args.cpus)
    (OUT / "fast_lane_results.json").write_text(json.dumps(result, indent=2))
    print_table(result)


if __name__ == "__main__":
    main()
