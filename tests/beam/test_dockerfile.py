"""beam/Dockerfile and the root .dockerignore, checked offline (no Docker engine needed)."""

from __future__ import annotations

import ast
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import apache_beam

from sluice.contracts import load_contracts
from sluice.settings import REPO_ROOT

DOCKERFILE = REPO_ROOT / "beam" / "Dockerfile"
FIRST_PARTY = {"sluice", "functions", "beam", "local", "main", "tests"}  # as pyproject lists
# Run inside a copy of the image's /template: import every module of the copied packages with
# the editable install's finder removed (so functions/ and local/ are really absent), then run
# FLEX_TEMPLATE_PYTHON_PY_FILE as the launcher does, as a script.
IMAGE_PYTHON = """
import importlib, pkgutil, runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
for name in ("beam", "sluice"):
    package = importlib.import_module(name)
    assert package.__file__.startswith(sys.argv[1]), package.__file__
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@dataclass
class Image:
    """What the Dockerfile's final stage puts where, read from its instructions."""

    bases: list[str] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)
    """(repo path, image path) of each COPY from the build context, in order."""
    env: dict[str, str] = field(default_factory=dict)
    pip_files: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    """(image path, copies made before the RUN) of each -r/-c file of a pip install."""

    def repo_path(self, image_path: str, copies: list[tuple[str, str]] | None = None) -> Path:
        """The repository file or directory that ends up at ``image_path``."""
        for source, dest in reversed(self.copies if copies is None else copies):
            dest = dest.rstrip("/")
            if image_path == dest or image_path.startswith(dest + "/"):
                return REPO_ROOT / source / image_path[len(dest) :].lstrip("/")
        raise AssertionError(f"{image_path}: expected a COPY that puts it in the image, found none")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    joined, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(op.upper(), rest) for op, _, rest in (line.partition(" ") for line in joined)]


def read_image(text: str) -> Image:
    """Follow the instructions of the last stage (ARGs before the first FROM are defaults)."""
    image, args, workdir = Image(), {}, "/"

    def expand(word: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), word)

    for op, rest in instructions(text):
        if op == "ARG" and not image.bases:
            name, _, default = rest.partition("=")
            args[name] = default
        elif op == "FROM":
            image.bases.append(expand(rest.split()[0]))
            image.copies, image.env, image.pip_files = [], {}, []
        elif op == "WORKDIR":
            workdir = posixpath.join(workdir, rest)
        elif op in ("COPY", "ADD"):
            words = shlex.split(rest)
            if any(w.startswith("--from=") for w in words):
                continue
            *sources, dest = [w for w in words if not w.startswith("--")]
            dest = posixpath.join(workdir, dest)
            for source in sources:
                is_dir = (REPO_ROOT / source).is_dir()
                target = dest if is_dir or not dest.endswith("/") else dest + Path(source).name
                image.copies.append((source.rstrip("/"), target))
        elif op == "ENV":
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                image.env[key] = value
        elif op == "RUN" and "pip install" in rest:
            words = shlex.split(rest)
            files = [words[i + 1] for i, w in enumerate(words) if w in ("-r", "-c")]
            image.pip_files += [(posixpath.join(workdir, f), list(image.copies)) for f in files]
    return image


IMAGE = read_image(DOCKERFILE.read_text(encoding="utf-8"))


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per .dockerignore line, as Docker (moby/patternmatcher) reads it."""
    patterns = []
    for raw in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        path = posixpath.normpath(line.removeprefix("!")).lstrip("/")
        regex = re.escape(path).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        patterns.append((exception, re.compile(f"^{regex}$")))
    return patterns


def in_build_context(path: str) -> bool:
    """Whether Docker sends ``path`` (relative to the repo root) with the build context."""
    excluded, parts = False, path.split("/")
    for exception, regex in dockerignore_patterns():
        if exception != excluded:
            continue  # Docker skips patterns that cannot change the outcome so far
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not exception
    return not excluded


def test_dockerfile_copy_sources_exist_and_are_in_the_build_context() -> None:
    assert IMAGE.copies
    for source, _ in IMAGE.copies:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"
        files = (
            [source]
            if (REPO_ROOT / source).is_file()
            else [
                p.relative_to(REPO_ROOT).as_posix()
                for p in (REPO_ROOT / source).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            ]
        )
        assert files and all(in_build_context(f) for f in files), source


def test_dockerignore_keeps_everything_else_out_of_the_context() -> None:
    outside = [
        "functions/on_upload.py",
        "local/cli.py",
        "tests/conftest.py",
        "main.py",
        "requirements.txt",
        "README.md",
        ".venv/bin/python",
        ".git/HEAD",
        ".local/x.duckdb",
        "data/samples/kiva_loans.csv",
        "bench/out/run.json",
        "sluice/__pycache__/a.pyc",
    ]

    assert [path for path in outside if in_build_context(path)] == []


def test_dockerfile_env_paths_name_files_the_image_has() -> None:
    py_file = IMAGE.repo_path(IMAGE.env["FLEX_TEMPLATE_PYTHON_PY_FILE"])
    contracts_dir = IMAGE.repo_path(IMAGE.env["SLUICE_CONTRACTS_DIR"])

    assert py_file == REPO_ROOT / "beam" / "pipeline.py"
    assert 'if __name__ == "__main__":' in py_file.read_text(encoding="utf-8")
    assert set(load_contracts(contracts_dir)) == set(load_contracts(REPO_ROOT / "contracts"))


def test_dockerfile_tells_the_pipeline_its_own_image_for_the_workers() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")

    assert "ARG WORKER_IMAGE" in text
    assert IMAGE.env["SLUICE_WORKER_IMAGE"] == "${WORKER_IMAGE}"


def test_dockerfile_pythonpath_holds_the_copied_packages() -> None:
    roots = IMAGE.env["PYTHONPATH"].split(":")

    for package in ("beam", "sluice"):
        found = [r for r in roots if IMAGE.repo_path(f"{r}/{package}/__init__.py").is_file()]
        assert found, f"{package}: expected under one of {roots}"


def test_dockerfile_installs_dependencies_at_build_not_at_launch() -> None:
    assert [f for f, _ in IMAGE.pip_files] == [
        "/template/beam/requirements.txt",
        "/template/constraints.txt",
    ]
    for image_path, copied_before in IMAGE.pip_files:
        assert IMAGE.repo_path(image_path, copied_before).is_file(), image_path
    # Either variable makes the launcher stage packages for the workers at every launch.
    assert "FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE" not in IMAGE.env
    assert "FLEX_TEMPLATE_PYTHON_SETUP_FILE" not in IMAGE.env


def test_dockerfile_pins_bases_that_match_the_pipelines_beam_and_python() -> None:
    launcher, sdk = IMAGE.bases
    launcher_python = re.fullmatch(
        r"gcr\.io/dataflow-templates-base/python3(\d+)-template-"
        r"launcher-base:\d{8}[_-][A-Za-z]{2}\d{2}",
        launcher,
    )
    sdk_match = re.fullmatch(r"apache/beam_python3\.(\d+)_sdk:(\d+\.\d+\.\d+)", sdk)
    pins = dict(
        line.split("==")
        for line in (REPO_ROOT / "constraints.txt").read_text().split()
        if "==" in line
    )

    assert launcher_python and sdk_match, IMAGE.bases
    assert launcher_python[1] == sdk_match[1]
    assert sdk_match[2] == pins["apache-beam"] == apache_beam.__version__


def python_files(package: str) -> list[Path]:
    return [p for p in (REPO_ROOT / package).rglob("*.py") if "__pycache__" not in p.parts]


def test_image_code_imports_only_packages_the_image_has() -> None:
    copied = {source for source, _ in IMAGE.copies if (REPO_ROOT / source / "__init__.py").exists()}
    missing = []

    for package in sorted(copied):
        for path in python_files(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                missing += [
                    f"{path.relative_to(REPO_ROOT)}: {name}"
                    for name in names
                    if name.split(".")[0] in FIRST_PARTY - copied
                ]

    assert copied == {"beam", "sluice"}
    assert missing == [], "the image lacks what these import (functions/, local/ stay out)"


def test_image_tree_imports_and_starts_the_pipeline(tmp_path: Path) -> None:
    for source, dest in IMAGE.copies:
        target = tmp_path / dest.lstrip("/")
        if (REPO_ROOT / source).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO_ROOT / source, target, ignore=ignore, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / source, target)
    image_env = {
        key: ":".join(
            str(tmp_path / p.lstrip("/")) if p.startswith("/") else p for p in value.split(":")
        )
        for key, value in IMAGE.env.items()
    }
    script = image_env["FLEX_TEMPLATE_PYTHON_PY_FILE"]

    result = subprocess.run(
        [sys.executable, "-c", IMAGE_PYTHON, str(tmp_path), script, "--help"],
        env=os.environ | image_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "--input" in result.stdout and "--warehouse_target" in result.stdout
