"""``sluice demo``: the committed samples in, the cooked summaries out, on the local warehouse.

By default the samples take the cloud's path through the local stack: uploaded to the
landing bucket, each finalize event delivered to ``on_upload``, which validates the file and
launches the pipeline, which loads DuckDB; then the ``cook`` function runs over HTTP. A
stack already running for this SLUICE_HOME (``sluice up``) is used; otherwise one is started
and stopped around the demo. ``--direct`` does the same work in this process, without the
stack (no ports, no child processes: quicker, and handy where the stack cannot run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import output
from local.ingest import ingest_file
from sluice.contracts import ContractSet, load_contract_set
from sluice.cook.summaries import FailedSummary, SkippedSummary, cook_and_check_alerts
from sluice.dashboard.page import render_dashboard
from sluice.errors import MissingTable, TransientError
from sluice.settings import REPO_ROOT, Settings
from sluice.warehouse import Warehouse, connected_warehouse

SAMPLES_DIR = REPO_ROOT / "data" / "samples"
DASHBOARD_FILE = "dashboard.html"
"""Where under SLUICE_HOME the demo writes the dashboard page."""
DEMO_TIMEOUT_SECONDS = 900.0
"""How long the demo waits for the samples to load through the stack."""

# What the demo prints once the summaries are cooked: (title, BigQuery-dialect query).
DEMO_VIEWS: tuple[tuple[str, str], ...] = (
    (
        "Kiva: top countries by amount funded",
        "SELECT country_code, country_name, loans, funded_amount, loan_amount, funding_ratio"
        " FROM {cooked_dataset}.kiva_loans_by_country ORDER BY funded_amount DESC LIMIT 8",
    ),
    (
        "Kiva: sectors",
        "SELECT * FROM {cooked_dataset}.kiva_loans_by_sector ORDER BY loans DESC LIMIT 8",
    ),
    (
        "Kiva: borrower gender mix",
        "SELECT * FROM {cooked_dataset}.kiva_gender_mix ORDER BY loans DESC",
    ),
    (
        "Kiva: most active lenders",
        "SELECT * FROM {cooked_dataset}.kiva_top_lenders ORDER BY lender_rank LIMIT 5",
    ),
    (
        "Server logs: requests per day",
        "SELECT * FROM {cooked_dataset}.server_requests_per_day ORDER BY day",
    ),
    (
        "Server logs: peak hour of each day",
        "SELECT * FROM {cooked_dataset}.server_peak_hour ORDER BY day",
    ),
    (
        "Server logs: share of requests by status class",
        "SELECT status_class, SUM(requests) AS requests"
        " FROM {cooked_dataset}.server_error_rate GROUP BY status_class ORDER BY status_class",
    ),
    (
        "Server logs: busiest paths and their latency",
        "SELECT path, requests, p50_latency_ms, p95_latency_ms, p99_latency_ms"
        " FROM {cooked_dataset}.server_latency_by_path ORDER BY requests DESC LIMIT 8",
    ),
    (
        "Server logs: traffic by country",
        "SELECT * FROM {cooked_dataset}.server_traffic_by_country ORDER BY requests DESC LIMIT 8",
    ),
    (
        "Pipeline health: last load per dataset",
        "SELECT dataset, last_loaded_at, last_rows_loaded, files_loaded, files_rejected"
        " FROM {cooked_dataset}.pipeline_last_load ORDER BY dataset",
    ),
)


def sample_files(contracts: ContractSet, directory: Path = SAMPLES_DIR) -> list[tuple[str, Path]]:
    """(dataset, path) of every committed sample: a file named ``<dataset>.<anything>``
    (``access_logs.log.gz``) whose dataset has a contract, usable or broken (so not the
    README)."""
    datasets = set(contracts.contracts) | {broken.dataset for broken in contracts.broken}
    named = ((p.name.split(".", 1), p) for p in sorted(directory.iterdir()) if p.is_file())
    return [(parts[0], p) for parts, p in named if len(parts) == 2 and parts[0] in datasets]


@dataclass
class DemoRun:
    """What the demo did: the samples' outcomes, the cooked tables, and every problem (a
    broken contract or SQL file, a failed or skipped summary) as one line each."""

    ingested: list[dict[str, Any]] = field(default_factory=list)
    cooked: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run_demo(settings: Settings, *, direct: bool = False) -> int:
    """Ingest every sample, cook, print the main summaries. A broken contract or summary
    stops only its own dataset or table: the rest still loads, cooks and prints, then each
    problem is printed on one line. 0 when every sample loaded, 1 when one was rejected,
    2 when a contract or SQL file is broken."""
    contracts = load_contract_set(settings.contracts_dir)
    run = DemoRun(problems=[f"broken contract {broken}" for broken in contracts.broken])
    for dataset, path in sample_files(contracts):
        if dataset not in contracts.contracts:
            empty = dict.fromkeys(("rows_in", "rows_loaded", "rows_dead"))
            run.ingested.append({"file": path.name, "status": "broken contract", **empty})
    ingest = _ingest_directly if direct else _ingest_through_stack
    ingest(settings, contracts, run)
    output.print_table(run.ingested, title="ingested samples")
    output.print_table(run.cooked, title="cooked tables")
    with connected_warehouse(settings) as warehouse:
        for title, sql in DEMO_VIEWS:
            try:
                rows = warehouse.query(sql)
            except MissingTable:
                continue  # a summary that was not built: listed among the problems
            output.print_table(rows, title=title)
        page = write_dashboard(warehouse, settings)
    output.console.print(
        f"\nWarehouse: {settings.duckdb_file}. Explore with, for example:\n"
        '  sluice query "SELECT * FROM {cooked_dataset}.server_requests_per_hour LIMIT 24"\n'
        "  sluice status"
    )
    output.console.print(f"Dashboard (a self-contained page, works offline): {page}")
    from local.stack import running_stack

    running = running_stack(settings)
    if running is not None and running.get("dashboard_url"):
        output.console.print(f"Dashboard of the running stack: {running['dashboard_url']}")
    for problem in run.problems:
        output.print_error(problem)
    if run.problems:
        output.print_error("the other datasets and summaries are ready; see `sluice status`")
        return 2
    return 0 if all(row["status"] == "loaded" for row in run.ingested) else 1


def write_dashboard(warehouse: Warehouse, settings: Settings) -> Path:
    """Render the dashboard to ``<home>/dashboard.html``; its path."""
    path = settings.home / DASHBOARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_dashboard(warehouse, settings), encoding="utf-8")
    return path


def _ingest_through_stack(settings: Settings, contracts: ContractSet, run: DemoRun) -> None:
    """Upload the samples, wait for their outcomes, cook over HTTP (the stack's own path)."""
    from local.stack import LocalStack, call_cook_report, running_stack, settings_for_stack

    running = running_stack(settings)
    stack = None
    if running is None:
        with output.console.status("starting the local stack"):
            stack = LocalStack(settings).start()
    try:
        stack_settings = stack.settings if stack else settings_for_stack(settings)
        run.ingested += _upload_and_wait(stack_settings, contracts)
        with output.console.status("cooking summaries (the cook function)"):
            url = stack.cook_url if stack else running["cook_url"]
            report = call_cook_report(url, with_failures=True)
    finally:
        if stack is not None:
            with output.console.status("stopping the local stack"):
                stack.stop()
    run.cooked += [{"cooked table": t["table"], "rows": t["rows"]} for t in report["tables"]]
    # The answer's JSON back into the report's own types, which word each problem.
    failed = [FailedSummary(**f) for f in report.get("failed", [])]
    skipped = [SkippedSummary(**s) for s in report.get("skipped", [])]
    run.problems += [str(problem) for problem in [*failed, *skipped]]


def _upload_and_wait(settings: Settings, contracts: ContractSet) -> list[dict[str, Any]]:
    from local.landing import upload_file, wait_for_outcomes
    from sluice.gcs import storage_client

    client = storage_client(settings)
    landed = []
    for dataset, path in _usable_samples(contracts):
        with output.console.status(f"uploading {path.name} to gs://{settings.landing_bucket}"):
            landed.append(upload_file(client, settings, path, contracts.contract(dataset)))
    with output.console.status("validating and loading (on_upload, then the pipeline)"):
        results = wait_for_outcomes(client, settings, landed, timeout=DEMO_TIMEOUT_SECONDS)
    unsettled = [f"{r.landed.uri} is {r.state!r}" for r in results if not r.final]
    if unsettled:
        raise TransientError(
            f"expected every sample loaded within {DEMO_TIMEOUT_SECONDS:g} s, found "
            f"{', '.join(unsettled)}; the logs are in {settings.home / 'logs'}"
        )
    return [
        {
            "file": Path(result.landed.name).name,
            "status": result.state,
            "rows_in": result.rows_in,
            "rows_loaded": result.rows_loaded,
            "rows_dead": result.rows_dead,
        }
        for result in results
    ]


def _ingest_directly(settings: Settings, contracts: ContractSet, run: DemoRun) -> None:
    """Validate and run the pipeline in this process, then cook (no stack)."""
    for dataset, path in _usable_samples(contracts):
        with output.console.status(f"ingesting {path.name} as {dataset}"):
            outcome = ingest_file(path, contracts.contract(dataset), settings)
        run.ingested.append({"file": path.name, **_counts(outcome.record)})
    with connected_warehouse(settings) as warehouse, output.console.status("cooking summaries"):
        report = cook_and_check_alerts(warehouse, settings)
    run.cooked += [{"cooked table": t.table, "rows": t.rows} for t in report.tables]
    run.problems += [str(problem) for problem in [*report.failed, *report.skipped]]


def _usable_samples(contracts: ContractSet) -> list[tuple[str, Path]]:
    """The samples whose dataset has a usable contract."""
    return [(d, path) for d, path in sample_files(contracts) if d in contracts.contracts]


def _counts(record) -> dict[str, object]:
    return {
        "status": record.status,
        "rows_in": record.rows_in,
        "rows_loaded": record.rows_loaded,
        "rows_dead": record.rows_dead,
    }
