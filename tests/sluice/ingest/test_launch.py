"""Launch parameters, the Dataflow flex-template launcher (scripted HTTP) and the local one."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import duckdb
import httplib2
import pytest
from googleapiclient.http import HttpMockSequence

from beam.options import PARAMETER_NAMES, add_pipeline_arguments, resolve_params
from local.launcher import LocalLauncher
from sluice.errors import ConfigError, PermanentError, TransientError
from sluice.ingest.claims import claim_event, event_key, read_claim
from sluice.ingest.dataflow import DataflowLauncher
from sluice.ingest.launch import (
    JobBudgetSpent,
    LaunchRequest,
    launch_parameters,
    launcher_from_settings,
)
from sluice.schema import SourceRef, job_name_for
from sluice.settings import REPO_ROOT, Settings, load_settings
from tests.beam.conftest import SAMPLE_LOANS, TINY_LOANS_CONTRACT
from tests.http_fakes import JsonHandler

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

SOURCE = SourceRef("gs://sluice-landing/incoming/kiva_loans/2026/loans.csv.gz", 1732443303123456)
KEY = "sluice-landing/incoming/kiva_loans/2026/loans.csv.gz#1732443303123456"
STARTED = datetime(2026, 11, 24, 10, 15, 3, tzinfo=UTC)
LAUNCH_PATH = "/v1b3/projects/proj-1/locations/europe-west1/flexTemplates:launch"
JOB_OK = json.dumps({"job": {"id": "2026-11-24_02_15_03-123", "name": "x"}})


def api_error(status: int, message: str, code: str) -> tuple[dict[str, str], str]:
    body = {"error": {"code": status, "message": message, "status": code}}
    return {"status": str(status)}, json.dumps(body)


def dataflow_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "launcher": "dataflow",
        "warehouse": "bigquery",
        "bq_project": "warehouse-proj",
        "gcp_project": "proj-1",
        "dataflow_region": "europe-west1",
        "dataflow_template": "gs://sluice-pipeline/templates/pipeline.json",
        "dataflow_service_account": "pipeline@proj-1.iam.gserviceaccount.com",
        "dataflow_max_workers": 7,
    }
    return load_settings(**{**values, **overrides})


NO_ACTIVE_JOBS = {"status": "200"}, "{}"
"""The jobs.list answer the budget check gets first: no job runs."""


def scripted(*responses: tuple[dict[str, str], str], **options: object) -> tuple:
    """A launcher whose budget check finds no active job, then gets ``responses``."""
    http = HttpMockSequence([NO_ACTIVE_JOBS, *responses])
    sleeps: list[float] = []
    launcher = DataflowLauncher(
        dataflow_settings(), http, base_delay=0.01, sleep=sleeps.append, **options
    )
    return launcher, http, sleeps


def launch_calls(http: HttpMockSequence) -> list[tuple]:
    """The launch requests among those the mock answered (not the budget's jobs.list)."""
    return [call for call in http.request_sequence if call[1] == "POST"]


@pytest.fixture
def request_() -> LaunchRequest:
    request = LaunchRequest.for_object("kiva_loans", SOURCE, event_key=KEY, started_at=STARTED)
    return replace(request, split_index="gs://sluice-pipeline/claims/0123.splits.json")


def test_launchers_import_neither_beam_nor_the_api_client() -> None:
    code = (
        "import sys, sluice.ingest.launch;"
        " print(sorted({'apache_beam', 'googleapiclient'} & set(sys.modules)))"
    )

    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True)

    assert (done.returncode, done.stdout.strip()) == (0, b"[]"), done.stderr.decode()


def test_launch_parameters_are_the_pipeline_parameters(request_: LaunchRequest) -> None:
    local = launch_parameters(request_, load_settings(), launcher="local")
    cloud = launch_parameters(request_, dataflow_settings())

    assert set(local) == set(PARAMETER_NAMES) - {"batch"}
    assert set(cloud) == set(PARAMETER_NAMES) - {"contracts_dir", "batch"}
    assert all(isinstance(value, str) for value in [*local.values(), *cloud.values()])


def test_launch_parameters_omit_the_claim_when_there_is_none() -> None:
    request = LaunchRequest.for_object("kiva_loans", SOURCE, started_at=STARTED)

    sent = launch_parameters(request, load_settings())

    assert "event_key" not in sent and "split_index" not in sent


def test_launch_parameters_resolve_in_the_pipeline_as_launched(
    request_: LaunchRequest, isolated_env: Path
) -> None:
    params = launch_parameters(request_, load_settings(pipeline_bucket="pipes"), launcher="local")
    parser = add_pipeline_arguments(argparse.ArgumentParser())

    resolved = resolve_params(parser.parse_args([f"--{k}={v}" for k, v in params.items()]))

    assert resolved.source == SOURCE and resolved.input == SOURCE.uri
    assert resolved.job_name == job_name_for("kiva_loans", SOURCE) == request_.job_name
    assert (resolved.event_key, resolved.started_at) == (KEY, STARTED)
    assert resolved.staging_location == str((isolated_env / "staging").absolute())
    assert resolved.settings.duckdb_file == (isolated_env / "warehouse.duckdb").absolute()
    assert resolved.settings.pipeline_bucket == "pipes"


def test_launch_parameters_stage_in_the_pipeline_bucket_on_dataflow(
    request_: LaunchRequest,
) -> None:
    params = launch_parameters(request_, dataflow_settings(pipeline_bucket="pipes"))

    assert params["staging_location"] == "gs://pipes/staging"
    assert (params["warehouse"], params["warehouse_target"]) == ("bigquery", "warehouse-proj")


def test_launch_request_rejects_an_invalid_job_name() -> None:
    with pytest.raises(ConfigError, match="job_name"):
        LaunchRequest("kiva_loans", SOURCE, SOURCE.uri, "Kiva_Loans-1")


def test_launch_request_gives_a_replay_its_own_job_name(request_: LaunchRequest) -> None:
    replay = LaunchRequest.for_object("kiva_loans", SOURCE, event_key=f"{KEY}/replay-7", replay="7")

    assert replay.job_name != request_.job_name
    assert replay.job_name.startswith("sluice-kiva-loans-") and len(replay.job_name) <= 63


def test_dataflow_launch_sends_the_flex_template_request(request_: LaunchRequest) -> None:
    launcher, http, _ = scripted(({"status": "200"}, JOB_OK))

    result = launcher.launch(request_)

    [(uri, method, body, _)] = launch_calls(http)
    assert (method, urlsplit(uri).path) == ("POST", LAUNCH_PATH)
    assert json.loads(body) == {
        "launchParameter": {
            "jobName": request_.job_name,
            "containerSpecGcsPath": "gs://sluice-pipeline/templates/pipeline.json",
            "parameters": {
                "input": SOURCE.uri,
                "dataset": "kiva_loans",
                "source_uri": SOURCE.uri,
                "source_generation": "1732443303123456",
                "staging_location": "gs://sluice-pipeline/staging",
                "warehouse": "bigquery",
                "warehouse_target": "warehouse-proj",
                "warehouse_dataset": "sluice",
                "job_name": request_.job_name,
                "started_at": "2026-11-24T10:15:03+00:00",
                "pipeline_bucket": "sluice-pipeline",
                "event_key": KEY,
                "split_index": "gs://sluice-pipeline/claims/0123.splits.json",
            },
            "environment": {
                "tempLocation": "gs://sluice-pipeline/temp",
                "stagingLocation": "gs://sluice-pipeline/staging",
                "serviceAccountEmail": "pipeline@proj-1.iam.gserviceaccount.com",
                "maxWorkers": 7,
                "additionalUserLabels": {"dataset": "kiva_loans", "sluice-job": request_.job_name},
            },
        }
    }
    assert (result.runner_job_id, result.already_running) == ("2026-11-24_02_15_03-123", False)


def test_dataflow_launch_retries_a_503_then_succeeds(request_: LaunchRequest) -> None:
    launcher, http, sleeps = scripted(
        api_error(503, "backend unavailable", "UNAVAILABLE"), ({"status": "200"}, JOB_OK)
    )

    result = launcher.launch(request_)

    assert result.runner_job_id == "2026-11-24_02_15_03-123"
    first, second = launch_calls(http)
    assert first[2] == second[2]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.01


def test_dataflow_launch_waits_the_retry_after_of_a_429(request_: LaunchRequest) -> None:
    throttled = api_error(429, "quota exceeded", "RESOURCE_EXHAUSTED")
    throttled[0]["retry-after"] = "3"
    launcher, http, sleeps = scripted(throttled, ({"status": "200"}, JOB_OK), max_delay=2.5)

    result = launcher.launch(request_)

    assert not result.already_running and len(launch_calls(http)) == 2
    assert sleeps == [2.5]


def test_dataflow_launch_counts_a_409_as_already_running(request_: LaunchRequest) -> None:
    launcher, http, sleeps = scripted(api_error(409, "job already exists", "ALREADY_EXISTS"))

    result = launcher.launch(request_)

    assert (result.already_running, result.runner_job_id, result.job_name) == (
        True,
        None,
        request_.job_name,
    )
    assert len(launch_calls(http)) == 1 and sleeps == []


def test_dataflow_launch_retries_an_aborted_409(request_: LaunchRequest) -> None:
    launcher, http, _ = scripted(
        api_error(409, "concurrent change", "ABORTED"), ({"status": "200"}, JOB_OK)
    )

    result = launcher.launch(request_)

    assert not result.already_running and len(launch_calls(http)) == 2


def test_dataflow_launch_raises_permanent_on_a_400(request_: LaunchRequest) -> None:
    launcher, http, _ = scripted(api_error(400, "unrecognized parameter 'foo'", "INVALID_ARGUMENT"))

    with pytest.raises(PermanentError, match="HTTP 400: unrecognized parameter 'foo'"):
        launcher.launch(request_)
    assert len(launch_calls(http)) == 1


def test_dataflow_launch_gives_up_transient_after_bounded_attempts(
    request_: LaunchRequest,
) -> None:
    failures = [api_error(503, "backend unavailable", "UNAVAILABLE") for _ in range(4)]
    launcher, http, sleeps = scripted(*failures, max_attempts=4)

    with pytest.raises(TransientError, match=r"4 attempts.*HTTP 503: backend unavailable"):
        launcher.launch(request_)
    assert len(launch_calls(http)) == 4
    assert len(sleeps) == 3 and all(0 <= s <= 0.01 * 2**i for i, s in enumerate(sleeps))


QUOTA_ERROR = api_error(
    429,
    "(0a1b): The workflow could not be created. Causes: (2c3d): Dataflow quota error for"
    " jobs-per-project quota. Project proj-1 is running 25 jobs. Please check the quota usage"
    " via GCP Console.",
    "RESOURCE_EXHAUSTED",
)


def test_dataflow_launch_quota_error_raises_job_budget_spent_without_retrying(
    request_: LaunchRequest,
) -> None:
    launcher, http, sleeps = scripted(QUOTA_ERROR, ({"status": "200"}, JOB_OK))

    with pytest.raises(JobBudgetSpent, match=r"jobs-per-project quota\. Project proj-1 is running"):
        launcher.launch(request_)
    assert len(launch_calls(http)) == 1 and sleeps == []


def jobs_page(*jobs: tuple[str, str], next_page: str | None = None) -> tuple[dict[str, str], str]:
    """A jobs.list answer: (name, state) per job."""
    page: dict[str, object] = {"jobs": [{"name": n, "currentState": s} for n, s in jobs]}
    if next_page:
        page["nextPageToken"] = next_page
    return {"status": "200"}, json.dumps(page)


def test_dataflow_launch_counts_sluices_active_jobs_on_every_page_against_the_budget(
    request_: LaunchRequest,
) -> None:
    http = HttpMockSequence(
        [
            jobs_page(("sluice-a-1", "JOB_STATE_RUNNING"), ("other-team", "JOB_STATE_RUNNING"),
                      next_page="2"),
            jobs_page(("sluice-b-2", "JOB_STATE_QUEUED"), ("sluice-c-3", "JOB_STATE_DONE")),
        ]
    )  # fmt: skip
    launcher = DataflowLauncher(dataflow_settings(dataflow_max_jobs=2), http)

    with pytest.raises(JobBudgetSpent, match=r"fewer than 2 active Sluice jobs.*found 2"):
        launcher.launch(request_)
    assert [method for _, method, _, _ in http.request_sequence] == ["GET", "GET"]
    assert "pageToken=2" in http.request_sequence[1][0]


def test_dataflow_launch_of_a_job_already_active_is_not_held_by_the_budget(
    request_: LaunchRequest,
) -> None:
    http = HttpMockSequence(
        [
            jobs_page((request_.job_name, "JOB_STATE_RUNNING")),
            api_error(409, "job already exists", "ALREADY_EXISTS"),
        ]
    )
    launcher = DataflowLauncher(dataflow_settings(dataflow_max_jobs=1), http)

    result = launcher.launch(request_)

    assert result.already_running


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gcp_project": ""}, "SLUICE_GCP_PROJECT"),
        ({"dataflow_template": ""}, "SLUICE_DATAFLOW_TEMPLATE"),
        ({"dataflow_template": "templates/pipeline.json"}, "gs://"),
        ({"warehouse": "duckdb"}, "SLUICE_WAREHOUSE=bigquery"),
    ],
)
def test_dataflow_launcher_requires_its_settings(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DataflowLauncher(dataflow_settings(**overrides))


def test_dataflow_launch_without_credentials_is_a_config_error(
    request_: LaunchRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    launcher = DataflowLauncher(dataflow_settings())

    with pytest.raises(ConfigError, match="expected Google credentials"):
        launcher.launch(request_)


class FakeDataflow(JsonHandler):
    """Answers flexTemplates.launch: first 503, then the job; records every request. Lists
    no active job."""

    received: ClassVar[list[tuple[str, dict]]] = []

    def do_GET(self) -> None:
        self.send_json(200, {})

    def do_POST(self) -> None:
        body = json.loads(self.read_body())
        self.received.append((self.path, body))
        status, payload = (503, {"error": {"code": 503, "message": "try again"}})
        if len(self.received) > 1:
            status, payload = (
                200,
                {"job": {"id": "fake-job-1", "name": body["launchParameter"]["jobName"]}},
            )
        self.send_json(status, payload)


@pytest.fixture
def fake_dataflow() -> Iterator[str]:
    FakeDataflow.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDataflow)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_dataflow_launch_reaches_the_endpoint_override(
    request_: LaunchRequest, fake_dataflow: str
) -> None:
    settings = dataflow_settings(dataflow_endpoint=fake_dataflow)
    launcher = DataflowLauncher(settings, httplib2.Http(timeout=5), base_delay=0.01)

    result = launcher.launch(request_)

    assert (result.runner_job_id, result.already_running) == ("fake-job-1", False)
    [first, second] = FakeDataflow.received
    assert first == second
    assert first[0] == f"{LAUNCH_PATH}?alt=json"
    assert first[1]["launchParameter"]["parameters"]["event_key"] == KEY


def test_launcher_from_settings_follows_the_launcher_setting() -> None:
    assert isinstance(launcher_from_settings(load_settings()), LocalLauncher)
    assert isinstance(launcher_from_settings(dataflow_settings()), DataflowLauncher)


@pytest.fixture
def tiny_contracts(tmp_path: Path) -> Path:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "tiny_loans.yaml").write_text(TINY_LOANS_CONTRACT, encoding="utf-8")
    return contracts


def ingestion_log(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as con:
        return con.execute(
            "SELECT status, rows_loaded, rows_dead, job_id, source_uri, source_generation"
            " FROM sluice.ingestion_log"
        ).fetchall()


def test_local_launcher_runs_the_pipeline_in_a_subprocess(
    tmp_path: Path, tiny_contracts: Path
) -> None:
    path = tmp_path / "loans.csv"
    path.write_text(SAMPLE_LOANS, encoding="utf-8")
    settings = load_settings(contracts_dir=tiny_contracts)
    request = LaunchRequest.for_object("tiny_loans", SourceRef(str(path), 17), started_at=STARTED)
    launcher = LocalLauncher(settings)

    started = launcher.launch(request)
    again = launcher.launch(request)
    code = launcher.wait(request.job_name, timeout=120)

    log = (settings.home / "logs" / f"{request.job_name}.log").read_text()
    assert code == 0, log
    assert started.pid and not started.already_running
    assert again.already_running and again.pid is None
    assert ingestion_log(settings) == [("loaded", 4, 2, request.job_name, str(path), 17)]


def test_local_launcher_settles_the_claim_of_a_gcs_object(
    tiny_contracts: Path, gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "incoming/tiny_loans/loans.csv"
    blob = gcs.landing.blob(name)
    blob.upload_from_string(SAMPLE_LOANS.encode())
    # Only the settings carry the emulator: the launcher must hand it to the subprocess.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    settings = load_settings(contracts_dir=tiny_contracts)
    key = event_key(gcs.landing.name, name, blob.generation)
    source = SourceRef(f"gs://{gcs.landing.name}/{name}", blob.generation)
    claim_event(gcs.client, settings, key, bucket=gcs.landing.name, name=name,
                generation=blob.generation, dataset="tiny_loans")  # fmt: skip
    request = LaunchRequest.for_object("tiny_loans", source, event_key=key)
    launcher = LocalLauncher(settings)

    launcher.launch(request)
    code = launcher.wait(request.job_name, timeout=120)

    assert code == 0, (settings.home / "logs" / f"{request.job_name}.log").read_text()
    assert read_claim(gcs.client, settings, key).state == "loaded"
    [(status, loaded, _, job, uri, generation)] = ingestion_log(settings)
    assert (status, loaded, job, uri, generation) == (
        "loaded", 4, request.job_name, source.uri, blob.generation,
    )  # fmt: skip
