"""Burst benchmark (issue 13): 1,000 server-log files land within one minute, as when 1,000
hosts rotate their access logs at the top of the hour, and two designs take them in.

    .venv/bin/python bench/burst_bench.py [--files 1000] [--seed 13]

A discrete-event simulation on a simulated clock (nothing sleeps; the same seed gives the
same table): the old design (a Dataflow job per file, launched on its event, Eventarc
redelivering past the 25-job quota) against the new one (the fast lane for files up to
``fast_lane_max_bytes``, batches by the real ``plan_batches`` and ``Settings`` defaults for
the rest), in two scenarios: typical hourly logs (7.8 MB a file) and big files (200 MB).
The world and every number it assumes are in ``bench/burst_model.py``, the designs in
``bench/burst_designs.py``. One burst is simulated; a day is 24 of them, so per-day figures
hold only while a burst drains within its hour (the table says when it does not).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.burst_designs import DATASET, DESIGNS, LANDING_BUCKET, Drop
from bench.burst_model import (
    BIG_FILE_BYTES,
    BURST_WINDOW_SECONDS,
    BURSTS_PER_DAY,
    FILE_SIZE_SPREAD,
    TYPICAL_FILE_BYTES,
    Ledger,
    bill,
    percentile,
)
from bench.machine import machine
from sluice.settings import Settings

FILES = 1000
SEED = 13
SCENARIOS = {
    "typical logs (7.8 MB)": TYPICAL_FILE_BYTES,
    "big files (200 MB)": BIG_FILE_BYTES,
}


def burst(files: int, size: int, seed: int) -> list[Drop]:
    """``files`` files of about ``size`` bytes, landing at random within the first minute."""
    rng = random.Random(seed)
    drops = [
        Drop(
            key=f"{LANDING_BUCKET}/{DATASET}/host-{host:04d}/access.log#1",
            at=rng.uniform(0, BURST_WINDOW_SECONDS),
            size=round(size * rng.uniform(1 - FILE_SIZE_SPREAD, 1 + FILE_SIZE_SPREAD)),
        )
        for host in range(files)
    ]
    return sorted(drops, key=lambda drop: drop.at)


def summarize(ledger: Ledger) -> dict[str, Any]:
    """The figures of one design in one scenario."""
    queryable = ledger.queryable_at
    waits = [queryable[key] - at for key, at in ledger.dropped_at.items() if key in queryable]
    cost = bill(ledger)
    return {
        "files": len(ledger.dropped_at),
        "loaded_once": sum(1 for count in ledger.loads.values() if count == 1),
        "loaded_more": sum(1 for count in ledger.loads.values() if count > 1),
        "lost": len(ledger.lost),
        "jobs_created": ledger.jobs_created,
        "launch_attempts": ledger.launch_attempts,
        "peak_jobs": ledger.peak_jobs,
        "refused_deliveries": ledger.refused_deliveries,
        "dml_refused": ledger.dml_refused,
        "peak_dml_outstanding": ledger.peak_dml_outstanding,
        "p50_minutes": percentile(waits, 0.50) / 60,
        "p95_minutes": percentile(waits, 0.95) / 60,
        "drained_minutes": max(ledger.queryable_at.values(), default=0.0) / 60,
        "per_day": {name: value * BURSTS_PER_DAY for name, value in cost.items()},
    }


def run(files: int = FILES, seed: int = SEED) -> dict[str, Any]:
    """Both designs in both scenarios: scenario -> design label -> figures."""
    settings = Settings()  # the shipped defaults, whatever SLUICE_* says
    results: dict[str, Any] = {"files": files, "seed": seed, "scenarios": {}}
    for scenario, size in SCENARIOS.items():
        drops = burst(files, size, seed)
        results["scenarios"][scenario] = {
            design.label: summarize(design(drops, settings, seed).run()) for design in DESIGNS
        }
    return results


ROWS: tuple[tuple[str, Any], ...] = (
    ("files loaded once", lambda r: f"{r['loaded_once']:,}"),
    ("files loaded twice or more", lambda r: f"{r['loaded_more']:,}"),
    ("files lost (Eventarc gave up after 24 h)", lambda r: f"{r['lost']:,}"),
    ("Dataflow jobs created", lambda r: f"{r['jobs_created']:,}"),
    ("Dataflow launch attempts", lambda r: f"{r['launch_attempts']:,}"),
    ("peak concurrent jobs (quota 25)", lambda r: f"{r['peak_jobs']}"),
    ("deliveries refused, no free instance (429)", lambda r: f"{r['refused_deliveries']:,}"),
    ("DML refused, table queue full", lambda r: f"{r['dml_refused']:,}"),
    ("peak DML outstanding on the table (limit 22)", lambda r: f"{r['peak_dml_outstanding']}"),
    ("drop to query p50 (min)", lambda r: f"{r['p50_minutes']:.1f}"),
    ("drop to query p95 (min)", lambda r: f"{r['p95_minutes']:.1f}"),
    ("last file queryable (min)", lambda r: f"{r['drained_minutes']:.0f}"),
    ("vCPU-hours per day", lambda r: f"{r['per_day']['vcpu_hours']:.1f}"),
    ("$ per day: Dataflow workers", lambda r: f"{r['per_day']['dataflow workers']:.2f}"),
    ("$ per day: launcher VMs", lambda r: f"{r['per_day']['launcher VMs']:.2f}"),
    ("$ per day: functions", lambda r: f"{r['per_day']['functions']:.2f}"),
    ("**$ per day**", lambda r: f"**{r['per_day']['dollars']:.2f}**"),
)


def markdown(results: dict[str, Any]) -> str:
    """The side-by-side table: a column per scenario and design."""
    columns = [
        (scenario, label, figures)
        for scenario, designs in results["scenarios"].items()
        for label, figures in designs.items()
    ]
    header = "| per burst of {:,} files | ".format(results["files"]) + " | ".join(
        f"{scenario}: {label}" for scenario, label, _ in columns
    )
    lines = [header + " |", "|---" + "|---:" * len(columns) + "|"]
    for name, cell in ROWS:
        lines.append(f"| {name} | " + " | ".join(cell(f) for _, _, f in columns) + " |")
    late = [f"{scenario}, {label}" for scenario, label, f in columns if f["drained_minutes"] > 60]
    if late:
        lines.append(
            f"\nPast the hour (the next burst lands before this one drains): {'; '.join(late)}."
        )
    return "\n".join(lines)


def print_table(results: dict[str, Any]) -> None:
    """Print the table with what it ran on."""
    print(
        f"\nBurst: {results['files']:,} files within a minute, simulated (seed {results['seed']})"
    )
    print(f"machine: {machine()}\n")
    print(markdown(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=FILES, help="files in the burst")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of every random draw")
    args = parser.parse_args(argv)
    print_table(run(args.files, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
