"""``sluice demo``: the committed samples in, the cooked summaries out, on the local warehouse."""

from __future__ import annotations

from pathlib import Path

from functions.cook import cook
from local import output
from local.ingest import ingest_file
from sluice.contracts import get_contract, load_contracts
from sluice.settings import REPO_ROOT, Settings
from sluice.warehouse import open_warehouse

SAMPLES_DIR = REPO_ROOT / "data" / "samples"

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


def sample_files(directory: Path = SAMPLES_DIR) -> list[tuple[str, Path]]:
    """(dataset, path) of every committed sample; the dataset is the file name's stem."""
    samples = sorted(p for p in directory.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    return [(p.name.split(".", 1)[0], p) for p in samples]


def run_demo(settings: Settings) -> int:
    """Ingest every sample, cook, print the main summaries; 0 when every sample loaded."""
    contracts = load_contracts(settings.contracts_dir)
    ingested = []
    for dataset, path in sample_files():
        with output.console.status(f"ingesting {path.name} as {dataset}"):
            outcome = ingest_file(path, get_contract(contracts, dataset), settings)
        ingested.append({"file": path.name, **_counts(outcome.record)})
    output.print_table(ingested, title="ingested samples")

    warehouse = open_warehouse(settings)
    try:
        with output.console.status("cooking summaries"):
            tables = cook(warehouse, settings)
        output.print_table(
            [{"cooked table": t.table, "rows": t.rows} for t in tables], title="cooked tables"
        )
        for title, sql in DEMO_VIEWS:
            output.print_table(warehouse.query(sql), title=title)
    finally:
        warehouse.close()
    output.console.print(
        f"\nWarehouse: {settings.duckdb_file}. Explore with, for example:\n"
        '  sluice query "SELECT * FROM {cooked_dataset}.server_requests_per_hour LIMIT 24"\n'
        "  sluice status"
    )
    return 0 if all(row["status"] == "loaded" for row in ingested) else 1


def _counts(record) -> dict[str, object]:
    return {
        "status": record.status,
        "rows_in": record.rows_in,
        "rows_loaded": record.rows_loaded,
        "rows_dead": record.rows_dead,
    }
