"""infra/*.tf parses, every reference resolves, the files are fmt-clean and match the code.

`terraform validate` needs the provider plugins, which `terraform init` downloads; these
checks run offline instead (python-hcl2, and `terraform fmt`, which needs no provider).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sluice.settings import REPO_ROOT, Settings
from sluice.warehouse.bigquery import STAGING_EXPIRATION_MS
from tests.infra.terraform_model import (
    INFRA,
    Infra,
    load_infra,
    parse_file,
    reference,
    unresolved_references,
)

ROLE_FILES = {
    "versions.tf", "variables.tf", "apis.tf", "storage.tf", "bigquery.tf", "registry.tf",
    "iam.tf", "iam_grants.tf", "functions.tf", "flush.tf", "schedule.tf", "scheduler.tf",
    "monitoring.tf", "outputs.tf",
}  # fmt: skip


def test_infra_every_tf_file_parses() -> None:
    parsed = {path.name: parse_file(path) for path in sorted(INFRA.glob("*.tf"))}

    assert set(parsed) == ROLE_FILES
    empty = [name for name, blocks in parsed.items() if not blocks]
    assert not empty, f"files that parse to nothing: {empty}"


def test_infra_every_reference_resolves(infra: Infra) -> None:
    assert unresolved_references(infra) == []


def test_reference_check_reports_undeclared_names(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'variable "region" {\n  type = string\n}\n'
        'locals {\n  bucket = "b-${var.regin}"\n}\n'
        'resource "google_storage_bucket" "landing" {\n'
        "  name     = local.buckt\n"
        "  location = upper(var.region)\n"
        '  labels   = { for k, v in var.labels : k => "${v.id}-${path.module}" }\n'
        "}\n"
        'output "pipeline" {\n  value = google_storage_bucket.pipeline.name\n}\n'
        'output "landing" {\n  value = "gs://${google_storage_bucket.landing.name}"\n}\n'
        'output "agent" {\n  value = data.google_project.this.number\n}\n',
        encoding="utf-8",
    )

    problems = unresolved_references(load_infra(tmp_path))

    assert problems == [
        "google_storage_bucket.landing: local.buckt",
        "google_storage_bucket.landing: var.labels",
        "local.bucket: var.regin",
        "output.agent: data.google_project.this",
        "output.pipeline: google_storage_bucket.pipeline",
    ]


def test_infra_files_are_terraform_fmt_clean(terraform: str) -> None:
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


def test_infra_files_hold_one_role_each_under_300_lines() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in INFRA.glob("*.tf")}

    assert all(lines < 300 for lines in sizes.values()), sizes


def test_infra_every_variable_has_a_type_and_a_description(infra: Infra) -> None:
    lacking = [
        name
        for name, body in infra.variables.items()
        if not body.get("description") or "type" not in body
    ]

    assert not lacking


def test_infra_only_project_and_region_are_required(infra: Infra) -> None:
    required = {name for name, body in infra.variables.items() if "default" not in body}

    assert required == {"project_id", "region"}


def test_tfvars_example_sets_declared_variables_and_the_required_ones(infra: Infra) -> None:
    example = parse_file(INFRA / "terraform.tfvars.example")

    assert set(example) <= set(infra.variables)
    assert {"project_id", "region"} <= set(example)


def test_dataset_defaults_are_the_settings_defaults(infra: Infra) -> None:
    defaults = Settings()

    assert infra.variables["warehouse_dataset"]["default"] == defaults.warehouse_dataset
    assert (
        infra.variables["cooked_warehouse_dataset"]["default"] == defaults.cooked_warehouse_dataset
    )


def test_staging_dataset_is_the_one_the_bigquery_adapter_loads_into(infra: Infra) -> None:
    staging = infra.resources["google_bigquery_dataset.staging"]

    # BigQueryWarehouse.staging_dataset is f"{dataset}_staging".
    assert infra.locals["staging_dataset"] == "${var.warehouse_dataset}_staging"
    assert reference(staging["dataset_id"]) == "local.staging_dataset"
    assert staging["default_table_expiration_ms"] == STAGING_EXPIRATION_MS


def test_datasets_are_the_processed_cooked_staging_and_test_ones(infra: Infra) -> None:
    ids = {
        name: body["dataset_id"] for name, body in infra.of_type("google_bigquery_dataset").items()
    }

    assert ids == {
        "processed": "${var.warehouse_dataset}",
        "staging": "${local.staging_dataset}",
        "cooked": "${var.cooked_warehouse_dataset}",
        "test": "${var.test_warehouse_dataset}",
        "test_staging": "${var.test_warehouse_dataset}_staging",
    }
    # Tables are the code's (ensure_tables from the contracts), never Terraform's.
    assert not infra.of_type("google_bigquery_table")


def test_every_resource_of_a_google_api_waits_for_the_api(infra: Infra) -> None:
    # Top-level resources (not bindings, which follow their targets) need their API enabled.
    first_level = (
        "google_storage_bucket", "google_bigquery_dataset", "google_service_account",
        "google_artifact_registry_repository", "google_logging_metric",
        "google_project_iam_custom_role", "google_monitoring_notification_channel",
    )  # fmt: skip
    missing = [
        address
        for address, body in infra.resources.items()
        if address.split(".")[0] in first_level
        and "${google_project_service.apis}" not in body.get("depends_on", [])
    ]

    assert not missing


@pytest.mark.parametrize("name", ["landing_bucket", "pipeline_bucket", "drop_first_file"])
def test_outputs_a_user_needs_exist(infra: Infra, name: str) -> None:
    assert name in infra.outputs


def test_drop_first_file_output_uploads_a_sample_under_a_contract_prefix(
    infra: Infra, contracts: dict
) -> None:
    command = infra.outputs["drop_first_file"]["value"].split()
    source, target = command[-2], command[-1]

    assert (REPO_ROOT / source).is_file()
    assert target.startswith("gs://${google_storage_bucket.landing.name}/")
    name = target.split("}/", 1)[1]
    assert any(name.startswith(contract.landing_prefix) for contract in contracts.values())
