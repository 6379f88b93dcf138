"""beam/build_template.sh (`make template`) against a stand-in gcloud, and the real one offline."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from sluice.settings import REPO_ROOT
from tests.conftest import require_tool

SCRIPT = REPO_ROOT / "beam" / "build_template.sh"
SETTINGS = {
    "PROJECT": "sluice-prod",
    "REGION": "europe-west1",
    "REPOSITORY": "sluice",
    "TEMPLATE_PATH": "gs://sluice-pipeline-prod/templates/sluice.json",
    "TAG": "t1",
}
IMAGE = "europe-west1-docker.pkg.dev/sluice-prod/sluice/sluice-pipeline:t1"
# Records each call's arguments, one line per call, and keeps a copy of any --config file.
FAKE_GCLOUD = """#!/usr/bin/env bash
printf '%s\\n' "$*" >>"$GCLOUD_LOG"
for arg in "$@"; do
    case "$arg" in --config=*) cp "${arg#--config=}" "$GCLOUD_LOG.config" ;; esac
done
"""


def run_script(
    *args: str, env: dict[str, str], path_first: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the script with exactly ``env`` (plus PATH and HOME) from outside the repository."""
    path = os.environ["PATH"] if path_first is None else f"{path_first}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def fake_gcloud(tmp_path: Path) -> Path:
    """A directory whose ``gcloud`` logs its calls to ``tmp_path/gcloud.log``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(0o755)
    return bin_dir


def test_build_template_script_is_strict_bash() -> None:
    text = SCRIPT.read_text(encoding="utf-8")

    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize("missing", ["PROJECT", "REGION", "REPOSITORY", "TEMPLATE_PATH"])
def test_build_template_names_a_missing_setting(missing: str, fake_gcloud: Path) -> None:
    env = {k: v for k, v in SETTINGS.items() if k != missing} | {"GCLOUD_LOG": "/dev/null"}

    result = run_script(env=env, path_first=fake_gcloud)

    assert result.returncode == 2
    assert f"expected {missing}" in result.stderr
    flag = "--" + missing.lower().replace("_", "-")
    assert flag in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template-path", "/tmp/sluice.json"], "TEMPLATE_PATH: expected gs://"),
        (["--tag", "not a tag"], "TAG: expected a Docker tag"),
        (["--project"], "--project: expected a value"),
        (["--projcet", "x"], "found '--projcet'"),
    ],
)
def test_build_template_rejects_bad_arguments(
    args: list[str], message: str, fake_gcloud: Path, tmp_path: Path
) -> None:
    log = tmp_path / "gcloud.log"

    result = run_script(*args, env=SETTINGS | {"GCLOUD_LOG": str(log)}, path_first=fake_gcloud)

    assert result.returncode == 2
    assert message in result.stderr
    assert not log.exists(), "nothing may be built after a bad argument"


def test_build_template_builds_the_image_then_writes_the_spec(
    fake_gcloud: Path, tmp_path: Path
) -> None:
    log = tmp_path / "gcloud.log"
    flags = ["--project", "other-proj"]  # a flag beats the environment

    result = run_script(*flags, env=SETTINGS | {"GCLOUD_LOG": str(log)}, path_first=fake_gcloud)

    assert result.returncode == 0, result.stderr
    submit, spec = log.read_text().splitlines()
    image = IMAGE.replace("sluice-prod", "other-proj")
    assert submit.startswith("builds submit . --project=other-proj --config=")
    assert "--ignore-file=.dockerignore" in submit
    assert submit.endswith(f"--substitutions=_IMAGE={image}")
    assert spec == (
        f"dataflow flex-template build {SETTINGS['TEMPLATE_PATH']} --project=other-proj"
        f" --image={image} --sdk-language=PYTHON --metadata-file=beam/metadata.json"
    )
    config = yaml.safe_load(Path(f"{log}.config").read_text())
    assert config["steps"][0]["args"] == [
        "build",
        "--file=beam/Dockerfile",
        "--build-arg=WORKER_IMAGE=${_IMAGE}",
        "--tag=${_IMAGE}",
        ".",
    ]
    assert config["images"] == ["${_IMAGE}"]
    assert image in result.stdout and SETTINGS["TEMPLATE_PATH"] in result.stdout


def test_build_template_print_only_builds_nothing(fake_gcloud: Path, tmp_path: Path) -> None:
    log = tmp_path / "gcloud.log"

    result = run_script(
        "--print-only", env=SETTINGS | {"GCLOUD_LOG": str(log)}, path_first=fake_gcloud
    )

    assert result.returncode == 0, result.stderr
    assert [line.split()[:3] for line in log.read_text().splitlines()] == [
        ["dataflow", "flex-template", "build"]
    ]
    assert log.read_text().rstrip().endswith("--print-only --format=value(.)")


def test_build_template_spec_from_real_gcloud_carries_the_metadata(tmp_path: Path) -> None:
    require_tool("gcloud", "gcloud not installed (the Google Cloud CLI; not in Debian or PyPI)")
    gcloud_env = {
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # never the developer's own config
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
    }

    result = run_script("--print-only", env=SETTINGS | gcloud_env)

    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    metadata = json.loads((REPO_ROOT / "beam" / "metadata.json").read_text(encoding="utf-8"))
    assert spec["image"] == IMAGE
    assert spec["sdkInfo"] == {"language": "PYTHON"}
    assert spec["metadata"] == metadata
