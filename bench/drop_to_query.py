"""Drop to query on the local stack: how long from a file landing to its rows answering.

    .venv/bin/python bench/drop_to_query.py [--rows 10000] [--runs 2] [--lane fast|pipeline]

Starts the local stack (``sluice up``, as a developer does), generates a kiva_loans file,
runs ``sluice upload --wait`` on it (the real command, as a subprocess), then queries the
loaded rows until they answer. The total runs from the object's finalization to the query's
answer; each phase is read from the component that did the work, never estimated:

- object finalized: the landing object's ``timeCreated`` (storage);
- on_upload started / validated / process launched: on_upload's JSON log lines (``stage``
  ``received`` and ``validated``; the launcher's "started as pid");
- pipeline running: the first line of the job's log (Beam's runner starting the graph:
  everything before it is interpreter start, Beam import and pipeline construction);
  ``--lane fast`` (the default settings: a 10,000-row file is far under
  ``SLUICE_FAST_LANE_MAX_BYTES``) has neither: the function parses and loads the file
  itself, so its phases go from ``validated`` straight to ``parsed``;
  ``--lane pipeline`` runs the stack with ``SLUICE_FAST_LANE_MAX_BYTES=0``;
- parsed and staged: the ingestion log's ``finished_at`` (stamped before the load starts);
- loaded: the claim's ``updated_at`` when the pipeline marked it ``loaded``;
- ``--wait`` returned, rows queryable: this process's clock.
The first upload meets a cold function (lazy imports); later ones a warm one. Targets: < 5 s,
and < 1 s with a warm function.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from beam.pipeline import PIPELINE_STARTED
from bench.machine import machine
from sluice.gcs import parse_gs_uri, storage_client
from sluice.ingest.claims import LOADED, event_key, read_claim
from sluice.schema import SourceRef, job_name_for
from sluice.settings import Settings, load_settings
from sluice.warehouse import connected_warehouse

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent  # sluice is installed editable, so it imports from anywhere

OUT = BENCH_DIR / "out"
DATASET = "kiva_loans"
TARGET_SECONDS = 5.0
WARM_TARGET_SECONDS = 1.0
"""Issue 13's target: a 10,000-row file queryable within a second when the function is warm."""
_RECEIVED = ("event delivery (finalized -> on_upload started)", "finalized", "received")
_VALIDATED = ("validation (claim, validate_stream)", "received", "validated")
_SETTLED = (
    ("load (warehouse, claim settled)", "parsed", "loaded"),
    ("until queryable: `--wait` sees the claim, exits", "loaded", "waited"),
    ("until queryable: the query answers", "waited", "queryable"),
)
PHASES = {
    "pipeline": (
        _RECEIVED,
        _VALIDATED,
        ("launch (split index, start the process)", "validated", "launched"),
        ("pipeline start (interpreter, Beam import, graph)", "launched", "running"),
        ("parse + stage", "running", "parsed"),
        *_SETTLED,
    ),
    "fast": (
        _RECEIVED,
        _VALIDATED,
        ("parse + stage, in on_upload", "validated", "parsed"),
        *_SETTLED,
    ),
}
"""Each lane's phases: (label, from stamp, to stamp)."""
ROWS_SQL = (
    f"SELECT count(*) AS n FROM {{dataset}}.{DATASET}"
    " WHERE _source_uri = @uri AND _source_generation = @generation"
)
_JOB_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def child_environment(home: Path, lane: str = "fast") -> dict[str, str]:
    """This environment without SLUICE_* (so the home's stack is found), for one home; the
    pipeline lane turns the fast lane off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(SLUICE_HOME=str(home), NO_GCE_CHECK="True", SLUICE_COOK_INTERVAL_SECONDS="0")
    if lane == "pipeline":
        env["SLUICE_FAST_LANE_MAX_BYTES"] = "0"
    return env


def start_stack(
    home: Path, lane: str = "fast", timeout: float = 90.0
) -> tuple[subprocess.Popen[bytes], dict]:
    """``sluice up`` for ``home`` in the background; the process and its stack.json."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "up.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.cli", "up"],
            cwd=REPO,
            env=child_environment(home, lane),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = json.loads((home / "stack.json").read_text(encoding="utf-8"))
            if info.get("pid") == process.pid:
                return process, info
        except (OSError, ValueError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_stack(process)
            raise RuntimeError(f"sluice up did not start: {(home / 'up.log').read_text()}")
        time.sleep(0.1)


def stop_stack(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to ``sluice up`` (it stops every service); kill its group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def input_file(rows: int, seed: int, folder: Path) -> Path:
    """A generated kiva_loans file (``sluice generate``), cached by rows and seed."""
    path = folder / f"{DATASET}_{rows}_{seed}.csv"
    if not path.exists():
        command = [sys.executable, "-m", "local.cli", "generate", DATASET]
        command += [f"--rows={rows}", f"--seed={seed}", f"--out={path}"]
        env = child_environment(folder / "home-generate")
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    return path


def upload_wait(path: Path, home: Path) -> tuple[datetime, dict[str, Any]]:
    """``sluice upload PATH --wait --json``; when it returned, and its one result row."""
    command = [sys.executable, "-m", "local.cli", "upload", str(path), f"--dataset={DATASET}"]
    command += ["--wait", "--json", "--timeout=300"]
    done = subprocess.run(
        command, cwd=REPO, env=child_environment(home), capture_output=True, text=True
    )
    returned = datetime.now(UTC)
    if done.returncode != 0:
        raise RuntimeError(f"sluice upload exited {done.returncode}: {done.stdout}{done.stderr}")
    [row] = json.loads(done.stdout)
    return returned, row


def function_times(home: Path, key: str, lane: str) -> dict[str, datetime]:
    """When on_upload received, validated and launched the event ``key`` (its JSON log)."""
    times = {}
    for line in (home / "logs" / "on_upload.log").read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # gunicorn's own lines
        if entry.get("logging.googleapis.com/labels", {}).get("event_key") != key:
            continue
        at = datetime.fromisoformat(entry["time"])
        if entry.get("stage") in ("received", "validated"):
            times.setdefault(entry["stage"], at)
        elif entry.get("logger") == "local.launcher" and "started as pid" in entry["message"]:
            times.setdefault("launched", at)
    wanted = (
        {"received", "validated", "launched"} if lane == "pipeline" else {"received", "validated"}
    )
    missing = wanted - set(times)
    if missing:
        raise RuntimeError(f"expected on_upload log lines for {key}, found none for {missing}")
    return times


def first_job_log_time(home: Path, job_name: str) -> datetime:
    """When the pipeline process said it started, its imports done (local time, ms)."""
    log_file = home / "logs" / f"{job_name}.log"
    for line in log_file.read_text(encoding="utf-8").splitlines():
        match = _JOB_LOG_TIME.match(line)
        if match and PIPELINE_STARTED in line:
            return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
    raise RuntimeError(f"expected a timestamped line in {log_file}, found none")


def query_rows(settings: Settings, source: SourceRef, expected: int) -> tuple[datetime, int]:
    """Query the file's rows until all ``expected`` answer; when they did, and how many."""
    deadline = time.monotonic() + 60
    params = {"uri": source.uri, "generation": source.generation}
    while True:
        with connected_warehouse(settings) as warehouse:
            count = warehouse.query(ROWS_SQL, params)[0]["n"]
        if count >= expected or time.monotonic() > deadline:
            return datetime.now(UTC), count
        time.sleep(0.05)


def measure_drop(path: Path, home: Path, settings: Settings, lane: str) -> dict[str, Any]:
    """Upload ``path`` with ``--wait``, query its rows; every phase's seconds."""
    started, clock = datetime.now(UTC), time.perf_counter()
    waited, row = upload_wait(path, home)
    if row["status"] != LOADED:
        raise RuntimeError(f"expected {path} loaded, found {row}")
    source = SourceRef(row["uri"], int(row["generation"]))
    queryable, queried = query_rows(settings, source, row["rows_loaded"])
    wall_seconds = time.perf_counter() - clock  # a second clock, to cross-check the stamps
    bucket, name = parse_gs_uri(source.uri)
    client = storage_client(settings)
    key = event_key(bucket, name, source.generation)
    claim = read_claim(client, settings, key)
    blob = client.bucket(bucket).get_blob(name, generation=source.generation)
    job_name = job_name_for(DATASET, source)
    with connected_warehouse(settings) as warehouse:
        [logged] = warehouse.query(
            "SELECT finished_at FROM {dataset}.ingestion_log WHERE job_id = @job_id",
            {"job_id": job_name},
        )
    times = {
        "finalized": blob.time_created,
        **function_times(home, key, lane),
        "parsed": logged["finished_at"],
        "loaded": claim.updated_at,
        "waited": waited,
        "queryable": queryable,
    }
    if lane == "pipeline":
        times["running"] = first_job_log_time(home, job_name)
    phases = [
        (label, (times[end] - times[begin]).total_seconds()) for label, begin, end in PHASES[lane]
    ]
    return {
        "phases": phases,
        "total_seconds": (queryable - times["finalized"]).total_seconds(),
        "loaded_seconds": (times["loaded"] - times["finalized"]).total_seconds(),
        "upload_seconds": (times["finalized"] - started).total_seconds(),
        "cli_seconds": (waited - started).total_seconds(),
        "wall_seconds": wall_seconds,
        "rows_in": row["rows_in"],
        "rows_loaded": row["rows_loaded"],
        "rows_queried": queried,
    }


def run(
    rows: int = 10_000,
    runs: int = 2,
    seed: int = 5,
    home: Path | None = None,
    lane: str = "fast",
) -> dict[str, Any]:
    """Start a stack in ``home`` (default bench/out/home-drop, emptied), upload ``runs``
    copies of one generated file one after another, stop the stack; the figures."""
    home = home or OUT / "home-drop"
    shutil.rmtree(home, ignore_errors=True)
    source = input_file(rows, seed, OUT if home == OUT / "home-drop" else home.parent)
    # This process's query client loads DuckDB before the clock runs, as a query tool
    # that is already open has it loaded: its import is not the pipeline's latency.
    importlib.import_module("sluice.warehouse.duckdb")
    load_before = os.getloadavg()[0]
    process, info = start_stack(home, lane)
    try:
        environ = {"SLUICE_HOME": str(home), "SLUICE_GCS_ENDPOINT": info["gcs_endpoint"]}
        settings = load_settings(environ)
        drops = []
        for number in range(1, runs + 1):
            copy = home / "drops" / f"drop-{number}.csv"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
            drops.append(measure_drop(copy, home, settings, lane))
    finally:
        stop_stack(process)
    return {
        "rows": rows,
        "lane": lane,
        "file_mb": source.stat().st_size / 1e6,
        "drops": drops,
        "machine": machine(),
        "load_average": (load_before, os.getloadavg()[0]),
    }


def print_table(result: dict[str, Any]) -> None:
    """One column per upload (the first meets a cold function), one row per phase."""
    drops = result["drops"]
    names = ["first upload (cold function)", *(f"upload {n} (warm)" for n in range(2, 10))]
    print(
        f"\nDrop to query on the local stack, {result['lane']} lane: {result['rows']:,}-row"
        f" kiva_loans file ({result['file_mb']:.1f} MB), `sluice upload --wait`, then a query"
        " (seconds)\n"
    )
    print("| phase | " + " | ".join(names[: len(drops)]) + " |")
    print("|---|" + "---:|" * len(drops))
    for index, (label, _) in enumerate(drops[0]["phases"]):
        print(f"| {label} | " + " | ".join(f"{d['phases'][index][1]:.2f}" for d in drops) + " |")
    totals = " | ".join(f"**{d['total_seconds']:.2f}**" for d in drops)
    print(f"| **drop to query** | {totals} |")
    in_table = " | ".join(f"{d['loaded_seconds']:.2f}" for d in drops)
    print(f"| (of which until the rows are in the table and the claim settled) | {in_table} |")
    uploads = " | ".join(f"{d['upload_seconds']:.2f}" for d in drops)
    print(f"| (before the drop: CLI start and upload) | {uploads} |")
    loaded = ", ".join(f"{d['rows_queried']:,} of {d['rows_in']:,}" for d in drops)
    before, after = result["load_average"]
    print(f"\nrows queried: {loaded}; {_verdict(drops, TARGET_SECONDS, 'any upload')}", end="")
    if len(drops) > 1:
        print(f"; {_verdict(drops[1:], WARM_TARGET_SECONDS, 'a warm function')}", end="")
    print(f"\n{result['machine']}; load average {before:.1f} before, {after:.1f} after")


def _verdict(drops: list[dict[str, Any]], target: float, which: str) -> str:
    """Whether every one of ``drops`` was queryable within ``target`` seconds."""
    worst = max(d["total_seconds"] for d in drops)
    verdict = "met" if worst < target else "MISSED"
    return f"target < {target:g} s with {which}: {verdict} (worst {worst:.2f} s)"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--lane", choices=sorted(PHASES), default="fast")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    print_table(run(rows=args.rows, runs=args.runs, lane=args.lane))


if __name__ == "__main__":
    main()
