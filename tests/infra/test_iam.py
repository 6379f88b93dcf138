"""Least privilege, checked on the Terraform itself: who may write which bucket, who may
invoke which function, who may act as whom; nothing public."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sluice.settings import Settings
from tests.infra.terraform_model import Infra, reference, references, strings

ACCOUNT = "google_service_account."
RUNTIME_ACCOUNTS = {
    ACCOUNT + name for name in ("upload", "worker", "cook", "dashboard", "scheduler")
}
BUCKET_WRITE_ROLES = {
    f"roles/storage.{name}"
    for name in (
        "admin", "objectAdmin", "objectCreator", "objectUser", "legacyBucketWriter",
        "legacyBucketOwner",
    )
}  # fmt: skip
# Project-level roles that would let an account write any bucket of the project.
PROJECT_STORAGE_WRITERS = BUCKET_WRITE_ROLES | {
    "roles/editor",
    "roles/owner",
    "roles/dataflow.admin",
}
ACT_AS_ROLES = {"roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator"}
PUBLIC = ("allUsers", "allAuthenticatedUsers")
TARGET_KEYS = ("bucket", "dataset_id", "repository", "service_account_id", "service", "project")


@dataclass(frozen=True)
class Grant:
    """One IAM member resource: on what, which role, to whom."""

    address: str
    kind: str
    target: str | None
    role: str
    member: str


def grants(infra: Infra) -> list[Grant]:
    """Every *_iam_member resource, its target and member reduced to the resources they name."""
    found = []
    for address, body in infra.resources.items():
        kind = address.split(".")[0]
        if not kind.endswith("_iam_member"):
            continue
        target_key = next(key for key in TARGET_KEYS if key in body)
        member_refs = {f"{r}.{n}" for r, n, _ in references(body["member"])}
        member = next(iter(member_refs)) if len(member_refs) == 1 else body["member"]
        found.append(Grant(address, kind, reference(body[target_key]), body["role"], member))
    return found


def test_iam_is_only_additive_members(infra: Infra) -> None:
    kinds = {address.split(".")[0] for address in infra.resources if "_iam_" in address}

    assert kinds, "expected IAM grants"
    assert all(k.endswith("_iam_member") or k == "google_project_iam_custom_role" for k in kinds)


def test_no_public_principal_anywhere(infra: Infra) -> None:
    blocks = {**infra.resources, **{f"data.{k}": v for k, v in infra.data.items()}}
    public = [
        a for a, body in blocks.items() for text in strings(body) if any(p in text for p in PUBLIC)
    ]
    condition = infra.variables["landing_writers"]["validation"][0]["condition"]

    assert public == []
    assert all(principal in condition for principal in PUBLIC)


def test_only_the_pipeline_bucket_is_writable_by_service_accounts(infra: Infra) -> None:
    account_grants = [g for g in grants(infra) if g.member.startswith("google_service_account.")]
    bucket_writes = {
        (g.target, g.member)
        for g in account_grants
        if g.kind == "google_storage_bucket_iam_member" and g.role in BUCKET_WRITE_ROLES
    }
    project_writes = [
        g.address
        for g in account_grants
        if g.kind == "google_project_iam_member" and g.role in PROJECT_STORAGE_WRITERS
    ]

    assert bucket_writes == {
        ("google_storage_bucket.pipeline", "google_service_account.upload"),
        ("google_storage_bucket.pipeline", "google_service_account.worker"),
        ("google_storage_bucket.pipeline", "google_service_account.cook"),  # the sweep's claims
    }
    assert project_writes == []


def test_readers_of_the_landing_bucket_are_the_door_the_pipeline_and_the_cook(
    infra: Infra,
) -> None:
    readers = {
        (g.member, g.role)
        for g in grants(infra)
        if g.target == "google_storage_bucket.landing" and g.member.startswith("google_")
    }

    assert readers == {
        ("google_service_account.upload", "roles/storage.objectViewer"),
        ("google_service_account.worker", "roles/storage.objectViewer"),
        ("google_service_account.cook", "roles/storage.objectViewer"),  # reconciliation
    }


def test_function_build_account_holds_only_the_builder_role(infra: Infra) -> None:
    roles = {(g.kind, g.role) for g in grants(infra) if g.member == "google_service_account.build"}

    assert roles == {
        ("google_project_iam_member", "roles/run.builder"),
        ("google_storage_bucket_iam_member", "roles/storage.objectViewer"),
    }


@pytest.mark.parametrize("function", ["cook", "flush"])
def test_scheduler_account_may_invoke_cook_and_flush_and_nothing_else(
    infra: Infra, function: str
) -> None:
    scheduler_grants = [g for g in grants(infra) if g.member == "google_service_account.scheduler"]
    job = infra.resources[f"google_cloud_scheduler_job.{function}"]
    [oidc] = job["http_target"][0]["oidc_token"]

    assert sorted((g.kind, g.target, g.role) for g in scheduler_grants) == [
        (
            "google_cloud_run_service_iam_member",
            f"google_cloudfunctions2_function.{name}",
            "roles/run.invoker",
        )
        for name in ("cook", "flush")
    ]
    assert reference(oidc["service_account_email"]) == "google_service_account.scheduler"
    assert reference(oidc["audience"]) == f"google_cloudfunctions2_function.{function}"


def test_each_function_is_invoked_only_by_its_caller(infra: Infra) -> None:
    invoker_roles = ("roles/run.invoker", "roles/cloudfunctions.invoker")

    invokers = {(g.target, g.member) for g in grants(infra) if g.role in invoker_roles}

    assert invokers == {
        ("google_cloudfunctions2_function.on_upload", "google_service_account.upload"),
        ("google_cloudfunctions2_function.cook", "google_service_account.scheduler"),
        ("google_cloudfunctions2_function.flush", "google_service_account.scheduler"),
        ("google_cloudfunctions2_function.dashboard", "each.value"),  # var.dashboard_viewers
    }


def test_functions_run_as_their_own_accounts(infra: Infra) -> None:
    functions = infra.of_type("google_cloudfunctions2_function")
    run_as = {
        name: reference(f["service_config"][0]["service_account_email"])
        for name, f in functions.items()
    }
    built_by = {reference(f["build_config"][0]["service_account"]) for f in functions.values()}

    assert run_as == {
        "on_upload": "google_service_account.upload",
        "cook": "google_service_account.cook",
        "dashboard": "google_service_account.dashboard",
        # It launches what on_upload queued, with on_upload's rights.
        "flush": "google_service_account.upload",
    }
    trigger = functions["on_upload"]["event_trigger"][0]
    assert reference(trigger["service_account_email"]) == "google_service_account.upload"
    assert built_by == {"google_service_account.build"}


def test_dashboard_account_only_reads_the_cooked_tables_and_the_alerts(infra: Infra) -> None:
    dashboard = [g for g in grants(infra) if g.member == ACCOUNT + "dashboard"]

    assert sorted((g.kind, g.target, g.role) for g in dashboard) == [
        ("google_bigquery_dataset_iam_member", "google_bigquery_dataset.cooked",
         "roles/bigquery.dataViewer"),
        ("google_bigquery_dataset_iam_member", "google_bigquery_dataset.processed",
         "roles/bigquery.dataViewer"),  # its alerts table
        ("google_project_iam_member", "var.project_id", "roles/bigquery.jobUser"),
    ]  # fmt: skip


def test_only_the_launching_accounts_may_act_and_only_as_the_worker_account(
    infra: Infra,
) -> None:
    act_as = [(g.kind, g.target, g.member) for g in grants(infra) if g.role in ACT_AS_ROLES]

    runtime_act_as = [grant for grant in act_as if grant[2] in RUNTIME_ACCOUNTS]
    # on_upload launches the flex template; cook's sweep relaunches a job that died.
    assert sorted(runtime_act_as) == [
        ("google_service_account_iam_member", ACCOUNT + "worker", ACCOUNT + "cook"),
        ("google_service_account_iam_member", ACCOUNT + "worker", ACCOUNT + "upload"),
    ]


@pytest.mark.parametrize(
    ("dataset", "editors"),
    [
        ("processed", {"upload", "worker", "cook"}),
        ("staging", {"upload", "worker"}),  # on_upload loads small files itself
        ("cooked", {"cook"}),
        ("test", {"upload", "worker", "cook"}),  # test files, never production
        ("test_staging", {"upload", "worker"}),
    ],
)
def test_datasets_are_writable_by_the_accounts_that_load_them(
    infra: Infra, dataset: str, editors: set[str]
) -> None:
    found = {
        g.member.split(".")[1]
        for g in grants(infra)
        if g.target == f"google_bigquery_dataset.{dataset}"
        and g.role == "roles/bigquery.dataEditor"
    }

    assert found == editors


def test_buckets_are_private_uniform_and_landing_keeps_versions(infra: Infra) -> None:
    buckets = infra.of_type("google_storage_bucket")

    assert set(buckets) == {"landing", "pipeline", "artifacts"}
    assert all(b["uniform_bucket_level_access"] is True for b in buckets.values())
    assert all(b["public_access_prevention"] == "enforced" for b in buckets.values())
    assert buckets["landing"]["versioning"][0]["enabled"] is True


def test_pipeline_bucket_sweeps_scratch_and_keeps_claims_past_redelivery(infra: Infra) -> None:
    rules = infra.resources["google_storage_bucket.pipeline"]["lifecycle_rule"]
    swept = {
        prefix: rule["condition"][0]["age"]
        for rule in rules
        for prefix in rule["condition"][0].get("matches_prefix", [])
        if rule["action"][0]["type"] == "Delete"
    }
    claim_days = infra.variables["claim_retention_days"]["default"]

    assert set(swept) == {"staging/", "temp/", "claims/", "quarantine/"}
    assert swept["claims/"] == "${var.claim_retention_days}"
    assert claim_days * 86400 > Settings().max_event_age_seconds
