"""Ingest one CSV file: parse and type it by its contract, stage Parquet, load the warehouse.

Locally (Beam's Python FnApiRunner, DuckDB warehouse under ``$SLUICE_HOME``)::

    python -m beam.pipeline --input data/samples/kiva_loans.csv --dataset kiva_loans

On Dataflow (the flex template passes the same parameters; by hand it looks like this)::

    python -m beam.pipeline \\
        --input gs://LANDING_BUCKET/incoming/kiva_loans/loans.csv.gz --dataset kiva_loans \\
        --source_generation 1732443303123456 \\
        --staging_location gs://PIPELINE_BUCKET/staging \\
        --warehouse bigquery --warehouse_target PROJECT --warehouse_dataset sluice \\
        --event_key LANDING_BUCKET/incoming/kiva_loans/loans.csv.gz#1732443303123456 \\
        --pipeline_bucket PIPELINE_BUCKET \\
        --runner DataflowRunner --project PROJECT --region REGION \\
        --temp_location gs://PIPELINE_BUCKET/temp \\
        --sdk_container_image REGION-docker.pkg.dev/PROJECT/sluice/pipeline:latest \\
        --sdk_location container

On Beam's DaskRunner (``pip install dask distributed``; without an address Beam starts a
``distributed.LocalCluster`` itself)::

    python -m beam.pipeline --input data/samples/kiva_loans.csv --dataset kiva_loans \\
        --runner apache_beam.runners.dask.dask_runner.DaskRunner \\
        --dask_client_address tcp://127.0.0.1:8786

The graph: Byte ranges (the input file, its ranges planned on a worker by
``beam.ranges.plan_ranges``: building the graph reads nothing) -> Spread ranges -> Parse CSV
-> (rows) Stage rows, (dead) Stage dead letters -> Load warehouse (once, after every range
is staged, with everything staged as one side input). Locally the ranges are parsed by
``settings.pipeline_workers`` threads (default: one per core; Beam's multi-threading mode).
The parameter names are ``beam.options.PIPELINE_PARAMETERS``; everything else on the command
line goes to Beam's ``PipelineOptions``. Without ``--runner`` the pipeline runs on Beam's
Python FnApiRunner: in Beam 2.77 the default DirectRunner first tries to download the Prism
binary from the internet.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
)
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from beam.loading import IngestionRecords, LoadWarehouseFn
from beam.options import PipelineParams, add_pipeline_arguments, resolve_params
from beam.ranges import InputFile
from beam.transforms import ByteRanges, ParsedBatches, StagedParquet
from sluice.contracts import load_contract_set
from sluice.errors import WarehouseError
from sluice.schema import IngestionRecord
from sluice.warehouse import connected_warehouse, warehouse_class

LOG = logging.getLogger(__name__)


PIPELINE_STARTED = "pipeline started"
"""The first line a run logs, once its imports are done (bench/drop_to_query.py reads it)."""
WORKER_IMAGE_ENV = "SLUICE_WORKER_IMAGE"
"""Set in the flex template image to the image's own name (beam/Dockerfile)."""


def build_pipeline(params: PipelineParams, options: PipelineOptions) -> beam.Pipeline:
    """The unrun pipeline for one file; FnApiRunner unless ``options`` name a runner.

    Building reads only the contracts: the input is first opened by a worker.
    """
    settings = params.settings
    # One by one: another dataset's broken contract never stops this file.
    contract = load_contract_set(settings.contracts_dir).contract(params.dataset)
    runner = None
    if not options.view_as(StandardOptions).runner:
        runner = FnApiRunner()
        # The range count is unknown until a worker plans them: a file of one range
        # leaves the other threads idle, which costs nothing.
        use_local_workers(options, settings.pipeline_workers or os.cpu_count() or 1)
    pipeline = beam.Pipeline(runner=runner, options=options)
    files = params.files()
    loads, staged = [], []
    for number, file in enumerate(files):
        # A batch's files each get their own steps (labels end in their number).
        suffix = "" if len(files) == 1 else f" {number}"
        parsed = (
            pipeline
            | f"Byte ranges{suffix}"
            >> ByteRanges(
                InputFile(file.input, file.source, file.split_index, contract.format), settings
            )
            # Unfused from the planning, so each range can go to another worker.
            | f"Spread ranges{suffix}" >> beam.Reshuffle()
            | f"Parse CSV{suffix}"
            >> ParsedBatches(
                file.input,
                contract,
                file.source,
                settings=settings,
                ingested_at=file.started_at,
                chunk_bytes=settings.chunk_bytes,
                max_record_bytes=settings.max_record_bytes,
            )
        )
        rows = parsed.rows | f"Stage rows{suffix}" >> StagedParquet(
            file.staging_dir, "rows", settings
        )
        dead = parsed.dead | f"Stage dead letters{suffix}" >> StagedParquet(
            file.staging_dir, "dead", settings
        )
        staged.append((rows, dead, parsed.rejected))
        loads.append(
            LoadWarehouseFn(
                contract,
                file.source,
                settings,
                job_name=params.job_name,
                started_at=file.started_at,
                staging_dir=file.staging_dir,
                event_key=file.event_key,
                input_path=file.input,
            )
        )
    _ = pipeline | "Load warehouse" >> IngestionRecords(loads, staged)
    return pipeline


def use_local_workers(options: PipelineOptions, workers: int) -> None:
    """Parse on ``workers`` threads of the local runner, unless the options already say.

    Threads, not processes: the parsing runs in numpy, pyarrow and DuckDB, which release
    the GIL, and a worker process would first spend a second importing Beam (measured on
    2 cores: threads 6-7 s for the 500k-row benchmark file, processes 8-9 s, one 8-9 s).
    """
    chosen = options.get_all_options(drop_default=True)
    if workers <= 1 or "direct_num_workers" in chosen or "direct_running_mode" in chosen:
        return
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = workers
    direct.direct_running_mode = "multi_threading"


def read_ingestion_records(params: PipelineParams) -> list[IngestionRecord]:
    """The ingestion-log row this job wrote for each of its files (read back, so they are
    what the warehouse holds)."""
    records = []
    with connected_warehouse(params.settings) as warehouse:
        for file in params.files():
            record = warehouse.latest_ingestion(file.source, job_name=params.job_name)
            if record is None:
                raise WarehouseError(
                    f"expected an ingestion-log row for {file.source.uri} (job"
                    f" {params.job_name}), found none"
                )
            records.append(record)
    return records


def parse_arguments(argv: Sequence[str] | None) -> tuple[PipelineParams, PipelineOptions]:
    """Split the command line: our parameters resolved, everything else to Beam."""
    parser = add_pipeline_arguments(argparse.ArgumentParser(description=__doc__))
    known, beam_args = parser.parse_known_args(argv)
    if known.staging_location:
        # Beam has a --staging_location of its own (Dataflow stages the SDK there, and the
        # flex-template launcher passes it): both kinds of staged files share the location,
        # ours under <dataset>/<job_name>/, so Beam gets the value too.
        beam_args.append(f"--staging_location={known.staging_location}")
    worker_image = os.environ.get(WORKER_IMAGE_ENV)
    if worker_image and not any(a.startswith("--sdk_container_image") for a in beam_args):
        # Inside the template image: the workers run this same image (it knows its own
        # name from the build), so they import the same sluice/ and beam/.
        beam_args.append(f"--sdk_container_image={worker_image}")
    return resolve_params(known), PipelineOptions(beam_args)


def run(argv: Sequence[str] | None = None) -> IngestionRecord | None:
    """Run the pipeline to completion and return the ingestion record it wrote (of its first
    file: ``run_files`` returns a batch's every record).

    Returns None only when Beam merely writes a template (``--template_location``).
    """
    records = run_files(argv)
    return records[0] if records else None


def run_files(argv: Sequence[str] | None = None) -> list[IngestionRecord]:
    """Run the pipeline to completion; the ingestion record of each file it loaded (none
    when Beam merely writes a template)."""
    params, options = parse_arguments(argv)
    LOG.info("%s: %s started (Beam imported)", PIPELINE_STARTED, params.job_name)
    pipeline = build_pipeline(params, options)
    # The record is read back from the warehouse after the run: its client library loads
    # while this process only waits for the runner's workers.
    threading.Thread(target=warehouse_class, args=(params.settings,), daemon=True).start()
    result = pipeline.run()
    if options.view_as(GoogleCloudOptions).template_location:
        LOG.info("template written; job %s not run here", params.job_name)
        return []
    result.wait_until_finish()
    return read_ingestion_records(params)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: log to stderr, run, log the ingestion record."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # Our DoFns' postponed annotations make Beam log one "string literal type hint" line per
    # hint at INFO: noise in every job log.
    logging.getLogger("apache_beam.typehints.native_type_compatibility").setLevel(logging.WARNING)
    for record in run_files(argv):
        LOG.info("ingestion record: %s", record.as_dict())


if __name__ == "__main__":
    main()
