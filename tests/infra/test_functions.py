"""The functions Terraform deploys are main.py's, with settings the code knows, from a
source archive that holds the runtime and nothing else."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from functions_framework import _function_registry
from packaging.utils import canonicalize_name

import main
from bench.function_bench import requirement_closure
from sluice.ingest.dataflow import require_dataflow_settings
from sluice.settings import PREFIX, REPO_ROOT, Settings, load_settings
from tests.infra.terraform_model import INFRA, Infra, interpolations, reference, references

SETTINGS_VARIABLES = {PREFIX + name.upper() for name in Settings.__dataclass_fields__}
ARCHIVE_TOP_LEVEL = {"main.py", "requirements.txt", "functions", "sluice", "contracts", "sql"}
FIRST_PARTY = {"main", "functions", "sluice", "beam", "local", "tests"}
LAPTOP_ONLY = {"sluice/warehouse/duckdb.py"}
"""Files of the archived packages that the archive leaves out (functions.tf's excludes)."""
# Run in a directory holding only the archive's files, with the editable install's finder
# removed, so that any module or data file missing from the archive fails here; every
# installed package outside requirements.txt's closure (duckdb, apache_beam, ...) is made
# unimportable, as it is on Cloud Functions.
ARCHIVE_PRELUDE = """
import json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path[:] = [p for p in sys.path if p not in ({repo!r}, {repo!r} + "/")]
for name in {forbidden!r}:
    sys.modules[name] = None  # import raises ModuleNotFoundError
"""
ARCHIVE_PYTHON = """
import importlib
import main, sluice.ingest.door, sluice.cook.summaries, sluice.ingest.dataflow
import sluice.warehouse.bigquery
from sluice.cook.summaries import summary_files
from sluice.contracts import load_contracts
from sluice.settings import load_settings
from sluice.warehouse import warehouse_class
for module in {modules!r}:
    importlib.import_module(module)
settings = load_settings()
print(json.dumps({{
    "files": [m.__file__ for m in (main, sluice.ingest.door, sluice.warehouse.bigquery)],
    "contracts": sorted(load_contracts(settings.contracts_dir)),
    "summaries": len(summary_files(settings.sql_dir)),
    "interval": settings.cook_interval_seconds,
    "beam": sys.modules.get("apache_beam") is not None,  # None: made unimportable above
    "warehouse": warehouse_class(load_settings({{"SLUICE_WAREHOUSE": "bigquery"}})).__name__,
}}))
"""
ARCHIVE_DUCKDB_PYTHON = """
from sluice.errors import ConfigError
from sluice.settings import load_settings
from sluice.warehouse import warehouse_class
try:
    warehouse_class(load_settings({"SLUICE_WAREHOUSE": "duckdb"}))
except ConfigError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def non_runtime_modules() -> list[str]:
    """Top-level modules installed here that no distribution of requirements.txt provides."""
    runtime = set(requirement_closure(REPO_ROOT / "requirements.txt"))
    return sorted(
        name
        for name, distributions in metadata.packages_distributions().items()
        if name not in FIRST_PARTY and not {canonicalize_name(d) for d in distributions} & runtime
    )


def run_in_archive(archived: list[str], workdir: Path, code: str) -> Any:
    """Copy the archive's files to ``workdir`` and run ``code`` there; its JSON answer."""
    for name in archived:
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, workdir / name)
    prelude = ARCHIVE_PRELUDE.format(repo=str(REPO_ROOT), forbidden=non_runtime_modules())
    result = subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def functions(infra: Infra) -> dict[str, dict[str, Any]]:
    """The google_cloudfunctions2_function resources, by name."""
    return infra.of_type("google_cloudfunctions2_function")


def archive_files(terraform: str, workdir: Path) -> list[str]:
    """The archive's file list, from functions.tf's locals evaluated by `terraform console`."""
    text = (INFRA / "functions.tf").read_text(encoding="utf-8")
    match = re.search(r"^locals \{\n.*?^\}\n", text, re.MULTILINE | re.DOTALL)
    assert match, "expected a locals block in functions.tf"
    (workdir / "source.tf").write_text(match[0].replace("${path.module}/..", str(REPO_ROOT)))
    result = subprocess.run(
        [terraform, "console"],
        input="jsonencode(sort(local.function_source_files))\n",
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=60,
        env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout))


def render(value: Any, infra: Infra) -> str:
    """A plausible value for an expression: variables' defaults, locals followed, else 'x'."""
    if not isinstance(value, str):
        return str(value)
    parts = list(interpolations(value))
    if parts == [value[2:-1]]:  # the whole value is one expression
        refs = references(value)
        if len(refs) != 1:
            return "x"  # a function of several values: known only after apply
        [(root, name, attribute)] = refs
        shown = ".".join(part for part in (root, name, attribute) if part)
        if value != "${" + shown + "}":
            return "x"
        if root == "var" and "default" in infra.variables[name]:
            return render(infra.variables[name]["default"], infra)
        if root == "local":
            return render(infra.locals[name], infra)
        body = infra.resources.get(f"{root}.{name}", {})
        return render(body[attribute], infra) if attribute in body else "x"
    for expression in parts:
        value = value.replace("${" + expression + "}", render("${" + expression + "}", infra))
    return value


def globbed_files(infra: Infra) -> list[str]:
    """The archive's file list from its patterns, globbed here (no Terraform needed)."""

    def matching(patterns: list[str]) -> set[str]:
        return {p.relative_to(REPO_ROOT).as_posix() for g in patterns for p in REPO_ROOT.glob(g)}

    included = matching(infra.locals["function_source_patterns"])
    return sorted(included - matching(infra.locals["function_source_excludes"]))


@pytest.fixture(scope="module")
def archived(infra: Infra) -> list[str]:
    """The files of the functions' source archive."""
    return globbed_files(infra)


def test_function_source_patterns_glob_as_terraform_fileset_does(
    terraform: str, infra: Infra, tmp_path: Path
) -> None:
    assert archive_files(terraform, tmp_path) == globbed_files(infra)


def test_function_entry_points_are_main_functions_of_the_right_kind(infra: Infra) -> None:
    kinds = {
        name: (
            body["build_config"][0]["entry_point"],
            "cloudevent" if "event_trigger" in body else "http",
        )
        for name, body in functions(infra).items()
    }

    assert kinds == {
        "on_upload": ("on_upload", "cloudevent"),
        "cook": ("cook", "http"),
        "dashboard": ("dashboard", "http"),
        "flush": ("flush", "http"),
    }
    for entry_point, kind in kinds.values():
        assert callable(getattr(main, entry_point))
        assert _function_registry.REGISTRY_MAP[entry_point] == kind


def test_function_runtime_is_the_python_the_tests_run_on(infra: Infra) -> None:
    expected = f"python{sys.version_info.major}{sys.version_info.minor}"

    runtimes = {body["build_config"][0]["runtime"] for body in functions(infra).values()}

    assert runtimes == {expected}


def environment(body: dict[str, Any], infra: Infra) -> dict[str, Any]:
    """A function's environment map, following a ``local.<name>`` reference to its value."""
    variables = body["service_config"][0]["environment_variables"]
    target = reference(variables) if isinstance(variables, str) else None
    if target and target.startswith("local."):
        variables = infra.locals[target.removeprefix("local.")]
    assert isinstance(variables, dict), variables
    return variables


def test_function_environment_names_only_sluice_settings(infra: Infra) -> None:
    for body in functions(infra).values():
        names = set(environment(body, infra))
        assert names <= SETTINGS_VARIABLES, names - SETTINGS_VARIABLES


def test_function_environments_load_as_settings(infra: Infra) -> None:
    for body in functions(infra).values():
        env = {k: render(v, infra) for k, v in environment(body, infra).items()}
        settings = load_settings(env)
        assert settings.warehouse == "bigquery"
        assert settings.warehouse_dataset == Settings().warehouse_dataset


# cook's sweep relaunches, flush launches batches
@pytest.mark.parametrize("function", ["on_upload", "cook", "flush"])
def test_launching_function_environment_can_launch_the_flex_template(
    infra: Infra, function: str
) -> None:
    variables = environment(functions(infra)[function], infra)
    settings = load_settings({k: render(v, infra) for k, v in variables.items()})

    require_dataflow_settings(settings)  # raises ConfigError when anything is missing
    assert settings.launcher == "dataflow"
    assert reference(variables["SLUICE_LANDING_BUCKET"]) == "google_storage_bucket.landing"
    assert reference(variables["SLUICE_PIPELINE_BUCKET"]) == "google_storage_bucket.pipeline"
    assert (
        reference(variables["SLUICE_DATAFLOW_SERVICE_ACCOUNT"]) == "google_service_account.worker"
    )
    assert settings.dataflow_temp_location.startswith(f"gs://{settings.pipeline_bucket}/")


def test_on_upload_triggers_on_landing_bucket_finalize_with_retries(infra: Infra) -> None:
    [trigger] = functions(infra)["on_upload"]["event_trigger"]

    assert trigger["event_type"] == "google.cloud.storage.object.v1.finalized"
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert trigger["trigger_region"] == "${var.region}"
    [bucket_filter] = trigger["event_filters"]
    assert bucket_filter["attribute"] == "bucket"
    assert reference(bucket_filter["value"]) == "google_storage_bucket.landing"


def test_functions_accept_internal_traffic_only_but_the_dashboard(infra: Infra) -> None:
    ingress = {
        name: f["service_config"][0]["ingress_settings"] for name, f in functions(infra).items()
    }

    # The dashboard is reached by people (gcloud run services proxy), always with IAM.
    assert ingress == {
        "on_upload": "ALLOW_INTERNAL_ONLY",
        "cook": "ALLOW_INTERNAL_ONLY",
        "flush": "ALLOW_INTERNAL_ONLY",
        "dashboard": "ALLOW_ALL",
    }


def test_function_source_archive_holds_the_runtime_and_nothing_else(archived: list[str]) -> None:
    # Every file of the two packages, Python or data (the dashboard's template, the schedule),
    # so a data file added to sluice/ cannot be left out of the deployed functions.
    package_files = {
        path.relative_to(REPO_ROOT).as_posix()
        for package in ("functions", "sluice")
        for path in (REPO_ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    } - LAPTOP_ONLY
    data_files = {
        path.relative_to(REPO_ROOT).as_posix()
        for pattern in ("contracts/*.yaml", "sql/*.sql")
        for path in REPO_ROOT.glob(pattern)
    }

    assert {name.split("/")[0] for name in archived} == ARCHIVE_TOP_LEVEL
    assert package_files | data_files <= set(archived)


def test_function_source_archive_leaves_out_laptop_only_code(archived: list[str]) -> None:
    assert not LAPTOP_ONLY & set(archived)
    assert not [name for name in archived if name.split("/")[0] in {"local", "beam", "tests"}]


def test_function_source_archive_alone_imports_main_and_finds_its_data(
    archived: list[str], tmp_path: Path, contracts: dict
) -> None:
    modules = [
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in archived
        if name.endswith(".py")
    ]

    found = run_in_archive(archived, tmp_path, ARCHIVE_PYTHON.format(modules=modules))

    assert all(path.startswith(str(tmp_path)) for path in found["files"]), found["files"]
    assert found["contracts"] == sorted(contracts)
    assert found["summaries"] == len(list((REPO_ROOT / "sql").glob("*.sql")))
    assert found["interval"] == Settings().cook_interval_seconds
    assert found["beam"] is False
    assert found["warehouse"] == "BigQueryWarehouse"


def test_function_source_archive_refuses_the_duckdb_warehouse_as_config(
    archived: list[str], tmp_path: Path
) -> None:
    found = run_in_archive(archived, tmp_path, ARCHIVE_DUCKDB_PYTHON)

    assert found["error"].startswith("SLUICE_WAREHOUSE=duckdb: expected the DuckDB adapter")
    assert "SLUICE_WAREHOUSE=bigquery" in found["error"]


def test_functions_runtime_requirements_hold_no_apache_beam() -> None:
    lines = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    packages = {re.split(r"[=<>\[ ]", line.strip())[0].lower() for line in lines if line.strip()}

    assert "apache-beam" not in packages
    assert "functions-framework" in packages


def test_functions_runtime_closure_holds_no_duckdb_nor_beam() -> None:
    closure = set(requirement_closure(REPO_ROOT / "requirements.txt"))

    assert not {"duckdb", "apache-beam"} & closure
    assert {"functions-framework", "google-cloud-bigquery"} <= closure
