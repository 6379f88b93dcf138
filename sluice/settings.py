"""Typed settings, read from ``SLUICE_*`` environment variables at call time.

Precedence, everywhere: a command-line flag (where one exists) beats the environment
variable, which beats the default below. Every default works on a laptop with no other
configuration. Nothing here creates a client or touches the network.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

from sluice.errors import ConfigError

PREFIX = "SLUICE_"
REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEDULE_FILE = Path(__file__).with_name("schedule.json")
"""The cook and flush schedules, also read by infra/schedule.tf for Cloud Scheduler: one source
of truth."""


def scheduled_interval(name: str) -> int:
    """Seconds between scheduled runs of one function, ``name`` in ``SCHEDULE_FILE``."""
    return int(json.loads(SCHEDULE_FILE.read_text(encoding="utf-8"))[name])


@dataclass(frozen=True)
class Settings:
    """Every knob of Sluice; the env var is ``SLUICE_`` + the upper-cased field name."""

    home: Path = Path(".local")
    """Directory for all local state: the DuckDB file, staged files, logs."""
    warehouse: str = "duckdb"
    """Warehouse backend: ``duckdb`` (local file) or ``bigquery``."""
    duckdb_path: Path | None = None
    """DuckDB database file; default ``<home>/warehouse.duckdb``."""
    warehouse_dataset: str = "sluice"
    """Warehouse dataset (BigQuery) or schema (DuckDB) for processed tables and logs."""
    cooked_warehouse_dataset: str = "sluice_cooked"
    """Warehouse dataset (BigQuery) or schema (DuckDB) for the cooked summary tables."""
    test_warehouse_dataset: str = "sluice_test"
    """Warehouse dataset that test-marked files (a ``_test/`` path segment) are loaded into."""
    bq_project: str = ""
    """BigQuery project id (required when ``warehouse=bigquery``)."""
    bq_location: str = "US"
    """BigQuery location for datasets and jobs."""
    bq_endpoint: str = ""
    """BigQuery API endpoint override, for an emulator (empty: Google's endpoint)."""
    table_load_slots: int = 20
    """BigQuery: loads into one table at once, across every function instance and Dataflow
    job (a semaphore in the pipeline bucket, ``sluice/warehouse/table_slots.py``); BigQuery
    holds 22 mutating DML statements per table (2 running, 20 queued), so the default leaves
    2 for everyone else."""
    contracts_dir: Path = REPO_ROOT / "contracts"
    """Directory of dataset contracts (one YAML file per dataset)."""
    sql_dir: Path = REPO_ROOT / "sql"
    """Directory of summary SQL files (BigQuery dialect)."""
    staging_dir: Path | None = None
    """Where the pipeline stages Parquet files before loading; default ``<home>/staging``."""
    max_file_bytes: int = 5 * 1024**3
    """Largest (decompressed) file accepted by validation, in bytes."""
    max_record_bytes: int = 64 * 1024**2
    """Largest single CSV record (row) accepted, in bytes."""
    chunk_bytes: int = 8 * 1024**2
    """Bytes of CSV read and parsed per batch (validation and pipeline)."""
    split_bytes: int = 32 * 1024**2
    """Validation records a record boundary (split point) about every this many bytes of a
    plain CSV; the pipeline parses the ranges between them in parallel."""
    pipeline_workers: int = 0
    """Local runner and ``sluice ingest``: worker threads parsing one file at once (its
    ranges, or the chunks validation reads); 0: one per CPU core."""
    fast_lane_max_bytes: int = 64 * 1024**2
    """An accepted file of at most this many (decompressed) bytes is parsed and loaded inside
    ``on_upload`` (``sluice/ingest/fast_lane.py``); a bigger one goes to the pipeline; 0: the
    pipeline always."""
    batch_max_files: int = 50
    """A file too big for the fast lane is queued for a batch: one pipeline job loads up to
    this many files of one dataset (``sluice/ingest/batches.py``); 1: a job per file."""
    batch_max_bytes: int = 10 * 1024**3
    """...and up to this many decompressed bytes (a bigger file is a batch of its own)."""
    batch_max_age_seconds: int = 5
    """A batch that has not filled is launched once its first file has waited this long,
    by the next ``flush``: in the cloud every ``flush_interval_seconds`` (a minute), so the
    files of that minute share a job; on a laptop the stack's loop checks this often."""
    type_sample_rows: int = 1000
    """Rows whose values validation type-checks (a bounded sample at the file's start)."""
    max_bad_sample_fraction: float = 0.5
    """Validation rejects a file when more than this fraction of sampled rows fail typing."""
    landing_bucket: str = "sluice-landing"
    """Bucket users drop files into (``incoming/<dataset>/...``); never written by Sluice."""
    pipeline_bucket: str = "sluice-pipeline"
    """Bucket for everything Sluice writes: claims, quarantine, split indexes, temp."""
    gcs_endpoint: str = ""
    """Cloud Storage endpoint override (fake-gcs-server locally); empty: Google's endpoint."""
    launcher: str = "local"
    """How an accepted file's pipeline starts: ``local`` (Beam local runner) or ``dataflow``."""
    max_event_age_seconds: int = 86400
    """Storage events older than this are dropped (retries stop after a day)."""
    claim_lease_seconds: int = 900
    """A claim stuck in ``claimed`` this long (a crash before launch) may be taken over."""
    job_check_after_seconds: int = 600
    """A ``launched`` claim unchanged this long has its job checked by the sweep that runs
    with each cook: settled from its ingestion-log row, left alone while the job runs, else
    relaunched (``sluice/cook/sweep.py``)."""
    reconcile_grace_seconds: int = 900
    """A landing object this old without a settled claim is ingested by the cook's
    reconciliation (``sluice/cook/reconcile.py``): its event was lost or gave up."""
    reconcile_max_objects: int = 1000
    """Landing objects one reconciliation lists; the next run goes on from there."""
    unprocessed_alert_seconds: int = 7200
    """The ``unprocessed_files`` alert opens for a dataset when one of its landing files has
    waited this long without a settled claim and reconciliation could not settle it."""
    max_pipeline_attempts: int = 3
    """Pipeline runs a file gets (its launch plus the sweep's relaunches) before the sweep
    records it ``rejected`` ("pipeline failed N times"); the landing file stays untouched."""
    gcp_project: str = ""
    """Google Cloud project of the Dataflow jobs."""
    dataflow_region: str = "us-central1"
    """Dataflow regional endpoint for flex-template launches."""
    dataflow_template: str = ""
    """``gs://`` path of the flex template's container spec (from ``make template``)."""
    dataflow_service_account: str = ""
    """Service account email the Dataflow workers run as."""
    dataflow_max_workers: int = 10
    """Upper bound of Dataflow workers per job."""
    dataflow_max_jobs: int = 25
    """Sluice's budget of concurrent Dataflow jobs (the project's quota is 25 by default): past
    it, accepted files wait as ``waiting_for_quota`` and the cook launches them as jobs end."""
    dataflow_temp_location: str = ""
    """``gs://`` temp location of Dataflow jobs; default ``gs://<pipeline_bucket>/temp``."""
    dataflow_endpoint: str = ""
    """Dataflow API endpoint override (tests); empty: Google's endpoint."""
    cook_interval_seconds: int = scheduled_interval("cook_interval_seconds")
    """Seconds between scheduled ``cook`` runs (local stack loop, Cloud Scheduler); 0: off.

    The default comes from ``sluice/schedule.json``, which infra/ turns into the Cloud
    Scheduler cron; setting the variable changes only the local loop."""
    flush_interval_seconds: int = scheduled_interval("flush_interval_seconds")
    """Seconds between scheduled ``flush`` runs, which launch the batches due
    (``sluice/ingest/batches.py``); default from ``sluice/schedule.json`` like the cook's."""
    gcs_port: int = 0
    """Local stack: fake-gcs-server's port; 0 picks a free port at ``sluice up``."""
    bridge_port: int = 0
    """Local stack: the event bridge's Pub/Sub gRPC port; 0 picks a free port."""
    upload_function_port: int = 0
    """Local stack: the ``on_upload`` function's HTTP port; 0 picks a free port."""
    cook_function_port: int = 0
    """Local stack: the ``cook`` function's HTTP port; 0 picks a free port."""
    dashboard_function_port: int = 0
    """Local stack: the ``dashboard`` function's HTTP port; 0 picks a free port."""
    flush_function_port: int = 0
    """Local stack: the ``flush`` function's HTTP port; 0 picks a free port."""

    @property
    def duckdb_file(self) -> Path:
        """The DuckDB file to use."""
        return self.duckdb_path or self.home / "warehouse.duckdb"

    @property
    def staging_root(self) -> Path:
        """The local staging directory to use."""
        return self.staging_dir or self.home / "staging"


RENAMED = {
    "warehouse_dataset": "SLUICE_DATASET",
    "cooked_warehouse_dataset": "SLUICE_COOKED_DATASET",
    "test_warehouse_dataset": "SLUICE_TEST_DATASET",
}
"""Settings renamed so that "dataset" means one thing (a contract's data); the old variable
is still read when the new one is unset."""


BOUNDS: dict[str, tuple[float, float]] = {
    "max_file_bytes": (1, math.inf),
    "max_record_bytes": (1, math.inf),
    "chunk_bytes": (1, math.inf),
    "split_bytes": (1, math.inf),
    "pipeline_workers": (0, math.inf),
    "fast_lane_max_bytes": (0, math.inf),
    "batch_max_files": (1, math.inf),
    "batch_max_bytes": (1, math.inf),
    "batch_max_age_seconds": (0, math.inf),
    "flush_interval_seconds": (1, math.inf),
    "type_sample_rows": (0, math.inf),
    "max_bad_sample_fraction": (0, 1),
    "max_event_age_seconds": (0, math.inf),
    "reconcile_grace_seconds": (0, math.inf),
    "reconcile_max_objects": (1, math.inf),
    "unprocessed_alert_seconds": (0, math.inf),
    "claim_lease_seconds": (0, math.inf),
    "job_check_after_seconds": (0, math.inf),
    "max_pipeline_attempts": (1, math.inf),
    "dataflow_max_workers": (1, math.inf),
    "dataflow_max_jobs": (1, math.inf),
    "table_load_slots": (1, 22),
    "cook_interval_seconds": (0, math.inf),
    "gcs_port": (0, 65535),
    "bridge_port": (0, 65535),
    "upload_function_port": (0, 65535),
    "cook_function_port": (0, 65535),
    "dashboard_function_port": (0, 65535),
    "flush_function_port": (0, 65535),
}
"""The smallest and largest value of every numeric setting, both allowed."""
DIRECTORIES = ("home", "contracts_dir", "sql_dir")
"""Settings naming a directory (so does ``staging_root``): it may not exist yet, but it (or
a parent) may not be a file."""


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build Settings from the environment (``os.environ`` by default) plus explicit overrides;
    a value out of bounds, or a file where a directory belongs, is a ConfigError."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = env.get(PREFIX + field.name.upper())
        if (raw is None or raw == "") and field.name in RENAMED:
            raw = env.get(RENAMED[field.name])
        if raw is None or raw == "":
            continue
        values[field.name] = _parse(field.name, str(field.type), raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)
    if settings.warehouse not in ("duckdb", "bigquery"):
        raise ConfigError(
            f"SLUICE_WAREHOUSE: expected 'duckdb' or 'bigquery', found {settings.warehouse!r}"
        )
    if settings.launcher not in ("local", "dataflow"):
        raise ConfigError(
            f"SLUICE_LAUNCHER: expected 'local' or 'dataflow', found {settings.launcher!r}"
        )
    _check_bounds(settings)
    _check_paths(settings)
    return settings


def _env_name(name: str) -> str:
    return PREFIX + name.upper()


def _check_bounds(settings: Settings) -> None:
    for name, (low, high) in BOUNDS.items():
        value = getattr(settings, name)
        if not low <= value <= high:  # also False for NaN
            wanted = f">= {low:g}" if high == math.inf else f"from {low:g} to {high:g}"
            kind = "a number" if isinstance(value, float) else "an integer"
            raise ConfigError(f"{_env_name(name)}: expected {kind} {wanted}, found {value!r}")


def _check_paths(settings: Settings) -> None:
    for name in DIRECTORIES:
        _require_directory(_env_name(name), getattr(settings, name))
    # The staging directory and the DuckDB file are under SLUICE_HOME unless set themselves.
    origin = "staging_dir" if settings.staging_dir else "home"
    _require_directory(_env_name(origin), settings.staging_root)
    if settings.warehouse == "duckdb":
        origin = "duckdb_path" if settings.duckdb_path else "home"
        if settings.duckdb_file.is_dir():
            raise ConfigError(
                f"{_env_name(origin)}: expected a DuckDB file at {settings.duckdb_file},"
                " found a directory"
            )
        _require_directory(_env_name(origin), settings.duckdb_file.parent)


def _require_directory(env_name: str, path: Path) -> None:
    """``path`` is a directory or can become one: its first existing ancestor is a directory."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise ConfigError(
                    f"{env_name}: expected a directory at {path}, found a file at {candidate}"
                )
            return


def _parse(name: str, type_name: str, raw: str) -> object:
    env_name = _env_name(name)
    try:
        if type_name.startswith("Path"):
            return Path(raw)
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        kind = {"int": "an integer", "float": "a number"}[type_name]
        raise ConfigError(f"{env_name}: expected {kind}, found {raw!r}") from None
    return raw
