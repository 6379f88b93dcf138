"""The flex template's metadata.json: one parameter list with the launcher and the pipeline."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from beam.options import PIPELINE_PARAMETERS, parse_started_at
from sluice.contracts import load_contracts
from sluice.ingest.claims import event_key, split_index_name
from sluice.ingest.dataflow import DataflowLauncher
from sluice.ingest.launch import JOB_NAME, LaunchRequest
from sluice.schema import SourceRef
from sluice.settings import REPO_ROOT, Settings, load_settings

METADATA: dict[str, Any] = json.loads((REPO_ROOT / "beam" / "metadata.json").read_text("utf-8"))
PARAMETERS: dict[str, dict[str, Any]] = {p["name"]: p for p in METADATA["parameters"]}
LOCAL_ONLY = {"contracts_dir"}  # the image carries its own contracts; a laptop path means nothing
# Dataflow checks values with POSIX egrep-style regexes: keep to what that and Python share.
NON_POSIX = re.compile(r"\\[dDwWsSbB]|\(\?|[*+?}]\?")

LANDING = "sluice-landing-prod"
OBJECT = "incoming/kiva_loans/2026/11/24/loans export (1) #2.csv.gz"
GENERATION = 1764000000123456


def dataflow_settings(**overrides: object) -> Settings:
    """Settings a deployed on_upload function launches Dataflow with."""
    values: dict[str, object] = {
        "launcher": "dataflow",
        "warehouse": "bigquery",
        "gcp_project": "sluice-prod",
        "bq_project": "sluice-prod",
        "dataflow_template": "gs://sluice-pipeline-prod/templates/sluice.json",
        "pipeline_bucket": "sluice-pipeline-prod",
        "landing_bucket": LANDING,
    }
    return load_settings(environ={}, **(values | overrides))


def sent_parameters(request: LaunchRequest, settings: Settings | None = None) -> dict[str, str]:
    """The parameters DataflowLauncher puts in its flexTemplates.launch body."""
    launcher = DataflowLauncher(settings or dataflow_settings())
    return launcher.launch_body(request)["launchParameter"]["parameters"]


def upload_request(replay: str | None = None, **kwargs: Any) -> LaunchRequest:
    """The request on_upload builds for a big landed object: its claim and split index."""
    source = SourceRef(f"gs://{LANDING}/{OBJECT}", GENERATION)
    claim = event_key(LANDING, OBJECT, GENERATION, replay)
    request = LaunchRequest.for_object(
        "kiva_loans", source, event_key=claim, replay=replay, **kwargs
    )
    split_index = f"gs://{dataflow_settings().pipeline_bucket}/{split_index_name(claim)}"
    return replace(request, split_index=split_index)


FILE_ONLY = {"input", "source_uri", "source_generation", "event_key", "split_index"}
"""What a single-file job is sent and a batch job is not: its manifest lists them per file."""


def batch_request() -> LaunchRequest:
    """The request a flush builds for a batch job: its manifest in the pipeline bucket."""
    manifest = f"gs://{dataflow_settings().pipeline_bucket}/batches/kiva_loans/0123abcd.json"
    return LaunchRequest.for_batch(
        "kiva_loans", manifest, job_name="sluice-kiva-loans-0123456789abcdef", test=False,
        started_at=datetime(2026, 12, 3, tzinfo=UTC),
    )  # fmt: skip


def matches(name: str, value: str) -> bool:
    """Whether ``value`` passes every regex metadata.json gives parameter ``name``."""
    return all(re.search(regex, value) for regex in PARAMETERS[name]["regexes"])


def test_metadata_has_the_fields_dataflow_requires() -> None:
    assert METADATA["name"] and METADATA["description"]
    for param in METADATA["parameters"]:
        assert set(param) == {"name", "label", "helpText", "isOptional", "regexes"}, param
        assert param["label"] and param["helpText"]
        assert isinstance(param["isOptional"], bool)
        assert param["regexes"], f"{param['name']}: expected a validation regex"


def test_metadata_names_are_what_the_launcher_sends_and_the_pipeline_parses() -> None:
    options_names = [p.name for p in PIPELINE_PARAMETERS]

    sent = sent_parameters(upload_request())
    sent_for_batch = sent_parameters(batch_request())

    assert list(PARAMETERS) == [n for n in options_names if n not in LOCAL_ONLY]
    assert set(sent) == set(PARAMETERS) - {"batch"}
    assert set(sent_for_batch) == set(PARAMETERS) - FILE_ONLY
    assert set(options_names) - set(PARAMETERS) == LOCAL_ONLY


def test_metadata_marks_optional_exactly_what_the_pipeline_defaults() -> None:
    unclaimed = LaunchRequest.for_object("kiva_loans", SourceRef(f"gs://{LANDING}/a.csv", 1))

    sent = sent_parameters(unclaimed)

    required = {name for name, p in PARAMETERS.items() if not p["isOptional"]}
    assert required == {p.name for p in PIPELINE_PARAMETERS if not p.is_optional}
    assert required <= set(sent)
    assert "event_key" not in sent and PARAMETERS["event_key"]["isOptional"]
    assert "split_index" not in sent and PARAMETERS["split_index"]["isOptional"]


def test_metadata_labels_and_help_extend_the_options_list() -> None:
    for param in PIPELINE_PARAMETERS:
        if param.name in LOCAL_ONLY:
            continue
        entry = PARAMETERS[param.name]
        assert entry["label"] == param.label
        assert entry["helpText"].startswith(param.help_text), param.name


def test_metadata_regexes_are_anchored_and_posix_compatible() -> None:
    for name, param in PARAMETERS.items():
        for regex in param["regexes"]:
            re.compile(regex)
            assert regex.startswith("^") and regex.endswith("$"), name
            assert not NON_POSIX.search(regex), f"{name}: {regex} is not POSIX egrep"


def test_metadata_job_id_regex_is_the_launchers_job_name_rule() -> None:
    assert PARAMETERS["job_name"]["regexes"] == [f"^{JOB_NAME.pattern}$"]


@pytest.mark.parametrize(
    ("request_for", "settings"),
    [
        (upload_request, dataflow_settings()),
        (lambda: upload_request(replay="3f2a9c0d1b7e"), dataflow_settings()),
        (
            lambda: upload_request(started_at=datetime(2026, 11, 24, 10, 15, tzinfo=UTC)),
            dataflow_settings(
                bq_project="example.com:analytics-prod", warehouse_dataset="sluice_v2"
            ),
        ),
        (batch_request, dataflow_settings()),
    ],
    ids=["upload", "replay", "whole-second-start-domain-project", "batch"],
)
def test_metadata_regexes_accept_what_the_launcher_sends(
    request_for: Any, settings: Settings
) -> None:
    sent = sent_parameters(request_for(), settings)

    rejected = {name: value for name, value in sent.items() if not matches(name, value)}

    assert not rejected


BAD_VALUES: dict[str, list[str]] = {
    "input": [
        "data/samples/kiva_loans.csv",
        "gs://Bad_Bucket/a.csv",
        "gs://landing/",
        "gs://b/a\n",
    ],
    "dataset": ["kiva-loans", "1loans", ""],
    "source_uri": ["/abs/path/loans.csv", "s3://bucket/a.csv"],
    "source_generation": ["-1", "12a", "1" * 20],
    "staging_location": ["/tmp/staging", "gs://"],
    "warehouse": ["duckdb", "BigQuery"],
    "warehouse_target": ["/home/me/.local/warehouse.duckdb", "My_Project", "abc"],
    "warehouse_dataset": ["sluice-prod", "sluice.tables", ""],
    "job_name": ["Sluice_Job", "1job", "job-", "j" * 64],
    "started_at": ["2026-11-24 10:15:03", "yesterday", "2026-11-24T10:15:03+0100"],
    "event_key": ["bucket/object", "gs://bucket/object#1", "bucket/object#gen"],
    "pipeline_bucket": ["gs://sluice-pipeline", "Sluice", "ab"],
    "batch": [
        "/tmp/batch.json",
        "gs://sluice-pipeline/claims/0123.json",
        "gs://sluice-pipeline/batches/kiva_loans/0123.json\nx",
    ],
    "split_index": [
        "/tmp/split-index.json",
        "gs://sluice-pipeline/claims/../landing/x.splits.json",
        "gs://sluice-pipeline/quarantine/abc.splits.json",
    ],
}


def test_metadata_bad_value_table_covers_every_parameter() -> None:
    assert set(BAD_VALUES) == set(PARAMETERS)


@pytest.mark.parametrize(
    ("name", "value"), [(n, v) for n, values in BAD_VALUES.items() for v in values]
)
def test_metadata_regexes_reject_a_bad_value(name: str, value: str) -> None:
    assert not matches(name, value)


@pytest.mark.parametrize(
    "value", ["2026-11-24T10:15:03", "2026-11-24T10:15:03.5Z", "2026-11-24T10:15:03.123456-05:30"]
)
def test_metadata_started_at_accepts_only_what_the_pipeline_parses(value: str) -> None:
    assert matches("started_at", value)
    assert parse_started_at(value).tzinfo is UTC


def test_metadata_dataset_regex_accepts_every_shipped_contract() -> None:
    names = load_contracts(REPO_ROOT / "contracts")

    assert [name for name in names if not matches("dataset", name)] == []
