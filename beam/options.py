"""The pipeline's parameters: one list, shared by the command line and the flex template.

``PIPELINE_PARAMETERS`` is the single source of the names (the flex template's
``metadata.json`` must list exactly these). ``add_pipeline_arguments`` turns it into argparse
flags; ``resolve_params`` fills every default and folds the warehouse flags into ``Settings``.

Precedence: a flag beats the ``SLUICE_*`` environment variable, which beats the default.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sluice.errors import ConfigError
from sluice.gcs import gs_uri, is_local_path
from sluice.ingest.launch import job_staging_dir
from sluice.schema import SourceRef, job_name_for
from sluice.settings import Settings, load_settings


@dataclass(frozen=True)
class Parameter:
    """One pipeline parameter, as the flex template's metadata.json describes it."""

    name: str
    label: str
    help_text: str
    is_optional: bool = True
    old_names: tuple[str, ...] = ()
    """Earlier names of the flag, still accepted on the command line."""


PIPELINE_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("input", "Input file", "File to ingest (path or gs:// URI; plain or gzip)."),
    Parameter("dataset", "Dataset", "Contract name of the file's dataset.", False),
    Parameter("source_uri", "Source URI", "Lineage URI; default the input (absolute if local)."),
    Parameter("source_generation", "Source generation", "Object generation (int); default mtime."),
    Parameter("staging_location", "Staging location", "Directory/URI for staged Parquet."),
    Parameter("warehouse", "Warehouse", "Warehouse backend: duckdb or bigquery."),
    Parameter("warehouse_target", "Warehouse target", "DuckDB file path or BigQuery project."),
    Parameter("warehouse_dataset", "Warehouse dataset", "Dataset/schema of processed tables."),
    Parameter(
        "job_name",
        "Job name",
        "Job name (the Dataflow job's, and the ingestion log's job_id); default from the source.",
        old_names=("job_id",),
    ),
    Parameter("started_at", "Started at", "ISO 8601 start time of the ingestion; default now."),
    Parameter("contracts_dir", "Contracts directory", "Directory of contract YAML files."),
    Parameter(
        "event_key",
        "Event key",
        "Event key whose claim is marked loaded or rejected at the end.",
        old_names=("claim",),
    ),
    Parameter("pipeline_bucket", "Pipeline bucket", "Bucket holding the claim objects."),
    Parameter(
        "batch",
        "Batch manifest",
        "A batch job's manifest (path or gs:// URI) of the files it loads, instead of --input.",
    ),
    Parameter(
        "split_index",
        "Split index",
        "Split points validation recorded (path or gs:// URI); default: found by a quick pass.",
    ),
)
PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PIPELINE_PARAMETERS)
WAREHOUSES = ("duckdb", "bigquery")


@dataclass(frozen=True)
class FileParams:
    """One file a run loads: the input of a single-file run, or one file of a batch."""

    input: str
    source: SourceRef
    staging_dir: str
    """Its own staging directory (a batch's files each have one inside the job's)."""
    started_at: datetime
    event_key: str | None = None
    split_index: str | None = None


@dataclass(frozen=True)
class PipelineParams:
    """Every parameter resolved to a concrete value."""

    input: str
    dataset: str
    source: SourceRef
    staging_location: str
    job_name: str
    started_at: datetime
    settings: Settings
    event_key: str | None = None
    """The event key (``bucket/name#generation``) whose claim this run settles, if any."""
    split_index: str | None = None
    """Where validation stored the input's split points, if it did."""
    batch: tuple[FileParams, ...] = ()
    """A batch job's files (``--batch``); then ``input`` and ``source`` name the manifest."""

    @property
    def staging_dir(self) -> str:
        """This job's own staging directory: ``<staging_location>/<dataset>/<job_name>``."""
        return job_staging_dir(self.staging_location, self.dataset, self.job_name)

    def files(self) -> tuple[FileParams, ...]:
        """Every file this run loads, in order."""
        if self.batch:
            return self.batch
        single = FileParams(
            self.input, self.source, self.staging_dir, self.started_at, self.event_key,
            self.split_index,
        )  # fmt: skip
        return (single,)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one ``--<name>`` flag per entry of ``PIPELINE_PARAMETERS``."""
    kinds: dict[str, dict[str, object]] = {
        "source_generation": {"type": int},
        "warehouse": {"choices": WAREHOUSES},
    }
    for param in PIPELINE_PARAMETERS:
        parser.add_argument(
            f"--{param.name}",
            *(f"--{old}" for old in param.old_names),
            dest=param.name,
            required=not param.is_optional,
            help=param.help_text,
            **kinds.get(param.name, {}),  # type: ignore[arg-type]
        )
    return parser


def parse_started_at(text: str | None) -> datetime:
    """An ISO 8601 timestamp (naive means UTC), or now when not given."""
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--started_at: expected an ISO 8601 timestamp, found {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def resolve_source(input_uri: str, source_uri: str | None, generation: int | None) -> SourceRef:
    """The lineage reference: local paths default to their absolute path and mtime (µs)."""
    if is_local_path(input_uri):
        path = Path(input_uri)
        if not path.is_file():
            raise ConfigError(f"--input: expected a readable file, found nothing at {path}")
        if generation is None:
            generation = path.stat().st_mtime_ns // 1000
        return SourceRef(source_uri or str(path.resolve()), generation)
    if generation is None:
        raise ConfigError(
            f"--source_generation: expected the object generation for {input_uri}, found none"
        )
    return SourceRef(source_uri or input_uri, generation)


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the warehouse and contracts flags."""
    settings = load_settings(
        warehouse=args.warehouse,
        warehouse_dataset=args.warehouse_dataset,
        pipeline_bucket=args.pipeline_bucket,
        contracts_dir=Path(args.contracts_dir) if args.contracts_dir else None,
    )
    if args.warehouse_target:
        if settings.warehouse == "bigquery":
            settings = replace(settings, bq_project=args.warehouse_target)
        else:
            settings = replace(settings, duckdb_path=Path(args.warehouse_target).absolute())
    elif settings.warehouse == "duckdb" and settings.duckdb_path is None:
        # Workers may run elsewhere than the launcher's working directory: pin the file.
        settings = replace(settings, duckdb_path=settings.duckdb_file.absolute())
    return settings


def resolve_params(args: argparse.Namespace) -> PipelineParams:
    """Fill every default of the parsed flags."""
    settings = resolve_settings(args)
    staging = args.staging_location or str(settings.staging_root.absolute())
    if is_local_path(staging):
        staging = os.path.abspath(staging)
    if bool(args.input) == bool(args.batch):
        raise ConfigError(
            "expected exactly one of --input (a file) and --batch (a batch manifest),"
            f" found {'both' if args.input else 'neither'}"
        )
    if args.batch:
        return resolve_batch(args, settings, staging)
    source = resolve_source(args.input, args.source_uri, args.source_generation)
    return PipelineParams(
        input=os.path.abspath(args.input) if is_local_path(args.input) else args.input,
        dataset=args.dataset,
        source=source,
        staging_location=staging,
        job_name=args.job_name or job_name_for(args.dataset, source),
        started_at=parse_started_at(args.started_at),
        settings=settings,
        event_key=args.event_key or None,
        split_index=args.split_index or None,
    )


def resolve_batch(args: argparse.Namespace, settings: Settings, staging: str) -> PipelineParams:
    """The parameters of a batch job: every file its manifest lists (read here, at build)."""
    from sluice.ingest.batch_store import read_manifest

    manifest = read_manifest(args.batch, settings)
    job_name = args.job_name or str(manifest["job_name"])
    job_dir = job_staging_dir(staging, args.dataset, job_name)
    files = []
    for member in manifest["members"]:
        source = SourceRef(gs_uri(member["bucket"], member["name"]), int(member["generation"]))
        files.append(
            FileParams(
                input=source.uri,
                source=source,
                # Each file its own directory: its load removes its staging, not the others'.
                staging_dir=f"{job_dir}/{job_name_for(args.dataset, source)}",
                started_at=datetime.fromisoformat(member["queued_at"]),
                event_key=member["event_key"],
                split_index=member.get("split_index"),
            )
        )
    if not files:
        raise ConfigError(f"--batch: expected a manifest listing files, found none in {args.batch}")
    return PipelineParams(
        input=args.batch,
        dataset=args.dataset,
        source=SourceRef(args.batch, 0),
        staging_location=staging,
        job_name=job_name,
        started_at=parse_started_at(args.started_at),
        settings=settings,
        batch=tuple(files),
    )
