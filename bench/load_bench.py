"""Load on the real local stack: many files at once, then a burst of duplicate events.

    .venv/bin/python bench/load_bench.py [--files 200] [--bad 2] [--events 1000] [--seed 7]

1. generates ``--files`` CSV files (the three datasets in turn, 200-2,000 rows, 1% dirty
   rows), ``--bad`` of them with a broken header; starts the local stack as ``sluice up``
   does, uploads them all at once with ``sluice upload``'s code and waits for each claim to
   be final, sampling the summed RSS of every process of the stack;
2. checks one ingestion-log row per file and no other, bad files rejected, each good file's
   rows_in equal to its records (counted by the csv module), rows_in = loaded + dead, and
   the tables holding exactly the rows the log says;
3. sends ``--events`` finalize events for those objects to ``on_upload`` at once: each races
   ``claim_event`` on fake-gcs-server (create if generation 0, 412, read) and must stand
   back, leaving every claim unchanged and nothing launched or logged again.

Prints a markdown table, writes bench/out/load_results.json, exits 1 naming each failed
check. tests/bench/test_load_bench.py runs ``run_load`` at a small scale.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.machine import machine  # the repo root is on the path from here on
from local.eventarc import storage_event
from local.generate import generate
from local.jobs import LocalJobs
from local.landing import LandedObject, upload_file
from local.stack import LocalStack
from sluice.contracts import load_contracts
from sluice.gcs import storage_client
from sluice.ingest.claims import (
    CLAIMS_PREFIX,
    LAUNCHED,
    LOADED,
    REJECTED,
    claim_object_name,
    read_claim,
)
from sluice.settings import Settings, load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse

OUT = Path(__file__).resolve().parent / "out"
DATASETS = ("kiva_loans", "kiva_lenders", "server_logs")
THREADS = 16
"""Concurrent uploads, and concurrent event deliveries in the burst."""
# THREADS share one storage client's pool of 10 connections; urllib3 warns each time it
# closes a surplus one after use, which costs a reconnect and nothing else.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
FINAL = (LOADED, REJECTED, "failed")
CLAIM_NAME = re.compile(re.escape(CLAIMS_PREFIX) + r"[0-9a-f]{40}\.json")
PAGE = os.sysconf("SC_PAGE_SIZE")
TABLE = """\
| measure | value |
|---|---:|
| files (bad) | {files} ({bad}) |
| wall time, first upload to last final state | {wall_seconds:.1f} s |
| files/s | {files_per_second:.2f} |
| rows/s (rows_in of loaded files) | {rows_per_second:,.0f} |
| rows in = loaded + dead | {rows_in:,} = {rows_loaded:,} + {rows_dead:,} |
| peak RSS, all stack processes summed | {peak_rss_mb:,.0f} MB |
| peak concurrent pipelines | {peak_pipelines} |
| duplicate events (distinct keys) | {events} ({distinct_keys}) |
| events/s | {events_per_second:,.0f} |"""
LOG_SQL = "SELECT source_uri, status, rows_in, rows_loaded, rows_dead FROM {dataset}.ingestion_log"


@dataclass(frozen=True)
class InputFile:
    """One generated file to upload, and the data records it holds."""

    path: Path
    dataset: str
    records: int
    bad: bool


def make_inputs(
    out: Path, files: int, bad: int, rows: tuple[int, int], seed: int
) -> list[InputFile]:
    """``files`` generated CSV files, datasets in turn; ``bad`` of them with a broken header."""
    out.mkdir(parents=True, exist_ok=True)
    draw = random.Random(seed)
    broken = {int((k + 0.5) * files / bad) for k in range(bad)}
    inputs = []
    for number in range(files):
        dataset = DATASETS[number % len(DATASETS)]
        path = out / f"load-{number:04d}-{dataset}.csv"
        generate(dataset, draw.randint(*rows), path, seed=seed + number, dirty=0.01)
        if number in broken:  # the first column renamed: a required column is missing
            header, rest = path.read_bytes().split(b"\n", 1)
            path.write_bytes(b"not_a_column" + header[header.index(b",") :] + b"\n" + rest)
        with path.open(newline="", encoding="utf-8") as handle:
            records = sum(1 for _ in csv.DictReader(handle))  # not the generator's own count
        inputs.append(InputFile(path, dataset, records, number in broken))
    return inputs


def stack_usage(root: int) -> tuple[int, int]:
    """Summed RSS (bytes) of ``root`` and all its descendants, and how many run a pipeline."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a process that just ended
        children.setdefault(parent, []).append(int(entry.name))
    rss, pipelines, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            pipelines += b"local.pipeline" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
    return rss, pipelines


@contextmanager
def peak_usage(interval: float = 0.25) -> Iterator[dict[str, int]]:
    """The peak ``stack_usage`` of this process (the whole stack) while the block runs."""
    peaks = {"rss": 0, "pipelines": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            for key, value in zip(peaks, stack_usage(os.getpid()), strict=True):
                peaks[key] = max(peaks[key], value)

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join()


def wait_until_final(settings: Settings, landed: list[LandedObject], timeout: float) -> dict:
    """Each object's claim state once every one is loaded, rejected or failed (or timeout)."""
    client, jobs = storage_client(settings), LocalJobs(settings)
    by_claim = {claim_object_name(one.event_key): one for one in landed}
    seen: dict[str, int] = {}
    states = dict.fromkeys(landed, "pending")
    job_names = {one: one.job_name for one in landed}
    deadline = time.monotonic() + timeout
    while not all(s in FINAL for s in states.values()) and time.monotonic() < deadline:
        time.sleep(1.0)
        # One listing a round; only a claim whose generation moved is read again.
        for blob in client.list_blobs(settings.pipeline_bucket, prefix=CLAIMS_PREFIX):
            one = by_claim.get(blob.name)
            if one is not None and seen.get(blob.name) != blob.generation:
                seen[blob.name] = blob.generation
                claim = read_claim(client, settings, one.event_key)
                states[one] = claim.state if claim else "pending"
                if claim is not None and claim.job_name:
                    job_names[one] = claim.job_name  # its batch's job
        for one in [o for o, s in states.items() if s == LAUNCHED]:
            if jobs.running_pid(job_names[one]) is None:
                again = read_claim(client, settings, one.event_key)  # it may have just settled
                states[one] = again.state if again and again.state != LAUNCHED else "failed"
    return states


def check_loads(
    settings: Settings, inputs: list[InputFile], landed: list[LandedObject], states: dict
) -> tuple[list[str], dict[str, int]]:
    """Problems with the outcome of the uploads (none when all is well), and the row sums."""
    problems = [
        f"{o.uri}: expected a final claim, found {s!r}"
        for o, s in states.items()
        if s not in (LOADED, REJECTED)
    ]
    warehouse = DuckDBWarehouse(settings)
    rows = warehouse.query(LOG_SQL)
    count = Counter(row["source_uri"] for row in rows)
    expected = {one.uri: source for one, source in zip(landed, inputs, strict=True)}
    problems += [
        f"{uri}: expected 1 ingestion-log row, found {count[uri]}"
        for uri in sorted(set(count) | set(expected))
        if count[uri] != 1
    ]
    for row in rows:
        source = expected.get(row["source_uri"])
        if source is None:
            continue  # an unexpected row: named above
        status = REJECTED if source.bad else LOADED
        if row["status"] != status or row["rows_in"] != row["rows_loaded"] + row["rows_dead"]:
            problems.append(f"expected {status} and rows_in = loaded + dead, found {row}")
        if not source.bad and row["rows_in"] != source.records:
            problems.append(f"expected rows_in {source.records}, found {row}")
    loaded = [row for row in rows if row["status"] == LOADED and row["source_uri"] in expected]
    sums = {"input_rows": sum(source.records for source in inputs if not source.bad)}
    sums |= {
        key: sum(row[key] for row in loaded) for key in ("rows_in", "rows_loaded", "rows_dead")
    }
    if sums["rows_in"] != sums["input_rows"]:
        problems.append(f"expected sum(rows_in) {sums['input_rows']}, found {sums['rows_in']}")
    datasets = {source.dataset for source in inputs}  # the others' tables were never made
    for contract in load_contracts(settings.contracts_dir).values():
        if contract.name not in datasets:
            continue
        mine = [row for row in loaded if expected[row["source_uri"]].dataset == contract.name]
        for table, key in (
            (contract.table, "rows_loaded"),
            (contract.dead_letter_table, "rows_dead"),
        ):
            logged = sum(row[key] for row in mine)
            found = warehouse.query(f"SELECT COUNT(*) AS n FROM {{dataset}}.{table}")[0]["n"]
            if table == contract.table and contract.write == "merge":
                # One row per key: the files' repeats of a key collapse to the newest.
                problems += _merged_problems(warehouse, contract, logged, found)
            elif found != logged:
                problems.append(f"{table}: expected {logged} rows (the log's sum), found {found}")
    return problems, sums


def _merged_problems(warehouse: Any, contract: Any, logged: int, found: int) -> list[str]:
    """A merged table: one row per primary key, and between one row and the rows the files
    loaded (the log's sum) when they loaded any."""
    keys = ", ".join(contract.primary_key)
    distinct = warehouse.query(
        f"SELECT COUNT(*) AS n FROM (SELECT DISTINCT {keys} FROM {{dataset}}.{contract.table})"
    )[0]["n"]
    if distinct != found or found > logged or (logged and not found):
        return [
            f"{contract.table}: expected one row per ({keys}), {min(logged, 1)} to {logged}"
            f" rows (the log's sum), found {found} rows and {distinct} keys"
        ]
    return []


def post_event(url: str, one: LandedObject, number: int) -> int:
    """POST one finalize CloudEvent for ``one`` to on_upload as the bridge does; the status."""
    attributes = {"eventType": "OBJECT_FINALIZE", "bucketId": one.bucket, "objectId": one.name}
    data = json.dumps({"bucket": one.bucket, "name": one.name, "generation": str(one.generation)})
    event = storage_event(f"burst-{number}", attributes, data.encode(), datetime.now(UTC))
    assert event is not None  # a finalize with bucket, name and generation always has a trigger
    request = urllib.request.Request(url, data=event.body, headers=event.headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def burst(stack: LocalStack, landed: list[LandedObject], events: int) -> tuple[list[str], dict]:
    """``events`` duplicate finalize events at once; the problems, and what was measured."""
    settings, client = stack.settings, storage_client(stack.settings)

    def snapshot() -> tuple[dict[str, int], int, int]:
        listed = client.list_blobs(settings.pipeline_bucket, prefix=CLAIMS_PREFIX)
        claims = {b.name: b.generation for b in listed if CLAIM_NAME.fullmatch(b.name)}
        jobs = len(list(LocalJobs(settings).jobs_dir.glob("*.pid")))
        return claims, jobs, len(DuckDBWarehouse(settings).query(LOG_SQL))

    before = snapshot()
    targets = [landed[n % len(landed)] for n in range(events)]
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        statuses = Counter(
            pool.map(post_event, [stack.upload_url] * events, targets, range(events))
        )
    seconds = time.perf_counter() - started
    after = snapshot()
    keys = {claim_object_name(one.event_key) for one in targets}
    problems = []
    if set(statuses) != {200}:
        problems.append(f"burst: expected 200 for every duplicate, found {dict(statuses)}")
    if after[0] != before[0] or not keys <= set(after[0]):
        changed = len(set(after[0].items()) ^ set(before[0].items()))
        problems.append(f"burst: expected {len(before[0])} claims unchanged, found {changed} not")
    if after[1:] != before[1:]:
        problems.append(f"burst: expected (jobs, log rows) {before[1:]}, found {after[1:]}")
    return problems, {
        "events": events,
        "distinct_keys": len(keys),
        "burst_seconds": seconds,
        "events_per_second": events / seconds,
        "event_statuses": dict(statuses),
    }


def run_load(
    home: Path,
    *,
    files: int,
    bad: int,
    events: int,
    seed: int = 7,
    rows: tuple[int, int] = (200, 2000),
    timeout: float = 900.0,
    environ: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The whole benchmark in ``home`` (emptied first: a stack keeps its bucket and warehouse
    there), with the stack's settings plus ``environ`` (``SLUICE_*``); its figures, with
    ``problems`` empty when all is well."""
    shutil.rmtree(home, ignore_errors=True)
    inputs = make_inputs(home / "inputs", files, bad, rows, seed)
    settings = load_settings(
        {"SLUICE_HOME": str(home / "stack"), "SLUICE_COOK_INTERVAL_SECONDS": "0", **(environ or {})}
    )
    contracts = load_contracts(settings.contracts_dir)
    os.environ.setdefault("NO_GCE_CHECK", "True")  # the functions inherit it: no metadata probe
    with LocalStack(settings) as stack, peak_usage() as peaks:
        client = storage_client(stack.settings)

        def upload(source: InputFile) -> LandedObject:
            return upload_file(client, stack.settings, source.path, contracts[source.dataset])

        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            landed = list(pool.map(upload, inputs))
        uploaded = time.perf_counter() - started
        states = wait_until_final(stack.settings, landed, timeout)
        wall = time.perf_counter() - started
        problems, sums = check_loads(stack.settings, inputs, landed, states)
        burst_problems, burst_figures = burst(stack, landed, events)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "files": files,
        "bad": bad,
        **sums,
        "upload_seconds": uploaded,
        "wall_seconds": wall,
        "files_per_second": files / wall,
        "rows_per_second": sums["rows_in"] / wall,
        "peak_rss_mb": peaks["rss"] / 2**20,
        "peak_pipelines": peaks["pipelines"],
        **burst_figures,
        "problems": problems + burst_problems,
    }


def markdown(result: dict[str, Any]) -> str:
    """The figures as a small markdown table."""
    return TABLE.format(**result)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark with the command line's counts; exit 1 when a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--bad", type=int, help="broken-header files (default 1%%, at least 1)")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for files")
    args = parser.parse_args(argv)
    bad = args.bad if args.bad is not None else max(1, args.files // 100)
    if not 0 <= bad < args.files or args.events < 1:
        parser.error(f"expected 0 <= --bad < --files and --events >= 1, found {vars(args)}")
    home = OUT / "load-home"
    result = run_load(
        home, files=args.files, bad=bad, events=args.events, seed=args.seed, timeout=args.timeout
    )
    (OUT / "load_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    for problem in result["problems"]:
        print(f"check failed: {problem}", file=sys.stderr)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
