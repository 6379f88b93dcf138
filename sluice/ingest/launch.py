"""Start the pipeline for one accepted file: what to launch, and which launcher launches it.

``launch_parameters`` is the one place that builds the pipeline's parameters (the names of
``beam.options.PIPELINE_PARAMETERS``, which the flex template's metadata.json lists too).
Launchers are adapters behind the ``Launcher`` protocol: ``sluice.ingest.dataflow`` (flex
template, in the cloud) and ``local.launcher`` (Beam's local runner, on a laptop). Both are
idempotent per job name: Dataflow answers 409 for a second active job of the same name, and
the local launcher keeps a pid file per job; either way the result says ``already_running``
and the caller counts the file as launched. Each also answers
``is_running(job_name, runner_job_id)``, which the sweep of stuck claims
(``sluice.cook.sweep``) asks before it relaunches a job under the same name.

No Beam import here (functions stay light); google-api-python-client loads on first launch.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from sluice.errors import ConfigError, PermanentError, TransientError
from sluice.gcs import gs_uri
from sluice.schema import SourceRef, job_name_for
from sluice.settings import Settings
from sluice.testmark import is_test_object

LOG = logging.getLogger(__name__)

JOB_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class LaunchRequest:
    """One pipeline run to start: which file, as which dataset, under which job name."""

    dataset: str
    source: SourceRef
    input_uri: str
    """What the pipeline reads: ``gs://<landing>/<name>`` (a local path in tests)."""
    job_name: str
    """Dataflow job name and ingestion job id: lowercase ``[-a-z0-9]``, <= 63 characters."""
    event_key: str | None = None
    """The event's claim, which the pipeline marks ``loaded`` or ``rejected`` at the end."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    test: bool = False
    """A test-marked object (``sluice.testmark``): every table it writes is in the test dataset."""
    split_index: str | None = None
    """Where validation stored the file's split points (``sluice.records.splits``), if it did."""
    batch: str | None = None
    """A batch job (``sluice.ingest.batches``): the ``gs://`` URI of its manifest, which lists
    the files it loads; ``source`` and ``input_uri`` then name the manifest itself."""

    def __post_init__(self) -> None:
        if not JOB_NAME.fullmatch(self.job_name):
            raise ConfigError(
                "job_name: expected lowercase [-a-z0-9], starting with a letter, at most 63"
                f" characters, found {self.job_name!r}"
            )
        if self.started_at.tzinfo is None:
            raise ConfigError(
                f"started_at: expected a timezone-aware time, found {self.started_at}"
            )

    @classmethod
    def for_object(
        cls,
        dataset: str,
        source: SourceRef,
        *,
        event_key: str | None = None,
        replay: str | None = None,
        started_at: datetime | None = None,
        test: bool = False,
    ) -> LaunchRequest:
        """The request for a landing object; a replay gets its own job name (not a 409)."""
        named_by = (
            source if replay is None else SourceRef(f"{source.uri}#{replay}", source.generation)
        )
        return cls(
            dataset=dataset,
            source=source,
            input_uri=source.uri,
            job_name=job_name_for(dataset, named_by),
            event_key=event_key,
            started_at=started_at or datetime.now(UTC),
            test=test,
        )

    @classmethod
    def for_batch(
        cls, dataset: str, manifest_uri: str, *, job_name: str, test: bool, started_at: datetime
    ) -> LaunchRequest:
        """The request for one batch job: every file its manifest lists."""
        return cls(
            dataset=dataset,
            source=SourceRef(manifest_uri, 0),
            input_uri=manifest_uri,
            job_name=job_name,
            started_at=started_at,
            test=test,
            batch=manifest_uri,
        )

    def warehouse_dataset(self, settings: Settings) -> str:
        """The dataset this run writes: the test dataset for a test file, else production."""
        if not self.test:
            return settings.warehouse_dataset
        if settings.test_warehouse_dataset in (
            settings.warehouse_dataset,
            settings.cooked_warehouse_dataset,
        ):
            # Writing a test file into a production dataset is what the marker must prevent.
            raise ConfigError(
                "SLUICE_TEST_WAREHOUSE_DATASET: expected a dataset apart from"
                " SLUICE_WAREHOUSE_DATASET and"
                f" SLUICE_COOKED_WAREHOUSE_DATASET, found {settings.test_warehouse_dataset!r}"
            )
        return settings.test_warehouse_dataset


def request_for_event(
    dataset: str,
    bucket: str,
    name: str,
    generation: int,
    key: str,
    *,
    started_at: datetime,
    split_index: str | None = None,
) -> LaunchRequest:
    """The single-file request for an event key (``bucket/name#generation``, perhaps with
    ``/replay-<id>``): the one on_upload's claim was taken for, under the same job name."""
    base = f"{bucket}/{name}#{generation}"
    replay_prefix = f"{base}/replay-"
    if key == base:
        replay = None
    elif key.startswith(replay_prefix):
        replay = key.removeprefix(replay_prefix)
    else:
        raise PermanentError(
            f"event key {key}: expected {base} or {replay_prefix}<id>, found another"
        )
    request = LaunchRequest.for_object(
        dataset, SourceRef(gs_uri(bucket, name), generation), event_key=key, replay=replay,
        started_at=started_at, test=is_test_object(name),
    )  # fmt: skip
    return replace(request, split_index=split_index)


@dataclass(frozen=True)
class LaunchResult:
    """What a launcher did: started ``job_name`` or found it already running."""

    job_name: str
    runner_job_id: str | None
    """Dataflow's job id, or ``local-<pid>``; None when the job was already running."""
    already_running: bool = False
    pid: int | None = None
    """Local runs only: the pipeline process."""


class JobBudgetSpent(TransientError):
    """No job may start now: the concurrent-job budget is spent, or the runner's own quota is.

    Not a failure of the file: a batch (``sluice.ingest.batches``) stays open and the next
    flush launches it; a sweep's relaunch records its claim ``waiting_for_quota`` and the cook
    (``sluice.cook.waiting``) launches it as jobs end. A caller that cannot wait sees a
    ``TransientError``: try again later."""


class Launcher(Protocol):
    """Starts the pipeline for one request and returns at once; tells whether a job runs."""

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Start the job (or find it running); raise JobBudgetSpent when no job may start now,
        TransientError when a retry may help."""
        ...

    def is_running(self, job_name: str, runner_job_id: str | None) -> bool:
        """Whether the job (``runner_job_id`` as the launch returned it, if known) still runs."""
        ...


def launch_parameters(
    request: LaunchRequest, settings: Settings, *, launcher: str | None = None
) -> dict[str, str]:
    """The pipeline's parameters for ``request`` on ``launcher`` (default settings.launcher)."""
    on_dataflow = (launcher or settings.launcher) == "dataflow"
    if settings.warehouse == "bigquery":
        target = settings.bq_project or settings.gcp_project
    else:
        target = str(settings.duckdb_file.absolute())
    params = {"batch": request.batch} if request.batch else {
        "input": request.input_uri,
        "source_uri": request.source.uri,
        "source_generation": str(request.source.generation),
    }  # fmt: skip
    params |= {
        "dataset": request.dataset,
        "staging_location": staging_location(settings, on_dataflow=on_dataflow),
        "warehouse": settings.warehouse,
        "warehouse_target": target,
        "warehouse_dataset": request.warehouse_dataset(settings),
        "job_name": request.job_name,
        "started_at": request.started_at.isoformat(),
        "pipeline_bucket": settings.pipeline_bucket,
    }
    if request.event_key:
        params["event_key"] = request.event_key
    if request.split_index:
        params["split_index"] = request.split_index
    if not on_dataflow:
        # The template image carries its own contracts; a laptop path means nothing there.
        params["contracts_dir"] = str(settings.contracts_dir.absolute())
    return params


def staging_location(settings: Settings, *, on_dataflow: bool) -> str:
    """Where a job stages Parquet before loading: the pipeline bucket in the cloud (BigQuery
    loads from it), the local staging directory on a laptop."""
    if on_dataflow:
        return f"gs://{settings.pipeline_bucket}/staging"
    return str(settings.staging_root.absolute())


def job_staging_dir(location: str, dataset: str, job_name: str) -> str:
    """One job's own staging directory: ``<location>/<dataset>/<job_name>``."""
    return "/".join((location.rstrip("/"), dataset, job_name))


LAUNCHERS = {
    "dataflow": "sluice.ingest.dataflow:DataflowLauncher",
    "local": "local.launcher:LocalLauncher",
}
"""``SLUICE_LAUNCHER`` values and the class each names. Named, not imported: the local
launcher is laptop-only code (``local/``) that the deployed function's archive leaves out, and
the Dataflow adapter imports this module."""


def launcher_from_settings(settings: Settings) -> Launcher:
    """The launcher ``settings.launcher`` names."""
    target = LAUNCHERS.get(settings.launcher)
    if target is None:
        raise ConfigError(
            f"SLUICE_LAUNCHER: expected one of {', '.join(sorted(LAUNCHERS))},"
            f" found {settings.launcher!r}"
        )
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"SLUICE_LAUNCHER={settings.launcher}: expected module {module_name} to be"
            f" installed, found it missing ({exc}); the deployed function launches on Dataflow"
        ) from exc
    launcher: Launcher = getattr(module, class_name)(settings)
    return launcher
