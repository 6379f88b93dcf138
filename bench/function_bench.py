"""The functions' cold start and deploy size (``make bench``).

    .venv/bin/python bench/function_bench.py [--repeat 5]

1. ``import main`` in a fresh interpreter (what every cold instance pays before serving),
   median of ``--repeat`` runs; over 1 s, ``python -X importtime`` names main's heaviest
   imports;
2. the first ``on_upload`` request's lazy work, step by step, in a fresh interpreter after
   ``import main``: the modules ``on_upload`` imports, the contracts, the storage client
   (google-cloud-storage), the Dataflow client (google-api-python-client and its bundled
   discovery document); then what only a rejection adds (google-cloud-bigquery). Each step
   is timed after the previous ones, so a shared dependency counts where it loads first.
   No network: the storage client is built for an emulator endpoint, the Dataflow client
   with a plain HTTP object (on Google Cloud, finding credentials adds a metadata call);
3. the deploy package: the zip infra/functions.tf archives (its allow-list of patterns),
   built the same way here, and the installed size of requirements.txt's dependency closure
   in this interpreter's site-packages (what the function's build installs).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
IMPORT_BUDGET_SECONDS = 1.0
REJECTION_ONLY = "a rejection adds: google-cloud-bigquery"

IMPORT_MAIN_CODE = """
import time
start = time.perf_counter()
import main
print(time.perf_counter() - start)
"""

# Steps in the order the first on_upload request reaches them (sluice/ingest/door.py).
FIRST_REQUEST_CODE = """
import json, time
steps = {}
def step(name, work):
    start = time.perf_counter()
    work()
    steps[name] = time.perf_counter() - start
step("import main", lambda: __import__("main"))
def on_upload_imports():
    from sluice.logs import configure_logging
    configure_logging()
    from sluice.ingest.door import handle_storage_event
    from sluice.ingest.claims import ClaimInProgress
    from sluice.settings import load_settings
step("on_upload's imports (sluice.ingest.door and its tree)", on_upload_imports)
from sluice.settings import load_settings
settings = load_settings(gcs_endpoint="http://127.0.0.1:9", launcher="dataflow")
def contracts():
    from sluice.contracts import load_contracts
    load_contracts(settings.contracts_dir)
step("load the contracts (YAML)", contracts)
def storage():
    from sluice.gcs import storage_client
    storage_client(settings)
    from google.api_core.exceptions import NotFound
step("storage client (google-cloud-storage)", storage)
def dataflow():
    import google.auth, google_auth_httplib2, httplib2
    from googleapiclient.errors import HttpError
    from sluice.ingest.dataflow import build_dataflow_service
    build_dataflow_service(settings, http=httplib2.Http(timeout=60))
step("Dataflow client (google-api-python-client, discovery doc)", dataflow)
def bigquery():
    import sluice.warehouse.bigquery
    from google.cloud import bigquery
step("{rejection_only}", bigquery)
print(json.dumps(steps))
"""


def run_python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter at the repository root."""
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_GCE_CHECK": "True", "SLUICE_HOME": str(REPO / ".local")},
    )


def import_main_seconds(repeat: int) -> list[float]:
    """Seconds of ``import main``, one fresh interpreter per run."""
    return [float(run_python(IMPORT_MAIN_CODE).stdout) for _ in range(repeat)]


def import_offenders(limit: int = 8) -> list[dict[str, Any]]:
    """main's direct imports by cumulative import time (``python -X importtime``)."""
    lines = run_python("import main", "-X", "importtime").stderr.splitlines()
    entries = []
    for line in lines:
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if match:
            self_us, total_us, indent, name = match.groups()
            entries.append((len(indent) // 2, name, int(self_us), int(total_us)))
    at = max(i for i, (depth, name, *_) in enumerate(entries) if depth == 0 and name == "main")
    children = []
    for depth, name, _, total_us in reversed(entries[:at]):
        if depth == 0:
            break  # an import before main's own
        if depth == 1:
            children.append({"module": name, "cumulative_ms": total_us / 1000})
    return sorted(children, key=lambda c: -c["cumulative_ms"])[:limit]


def first_request_seconds(repeat: int) -> dict[str, float]:
    """Median seconds of each step of the first on_upload request's lazy work."""
    code = FIRST_REQUEST_CODE.replace("{rejection_only}", REJECTION_ONLY)
    runs = [json.loads(run_python(code).stdout) for _ in range(repeat)]
    return {step: statistics.median(run[step] for run in runs) for step in runs[0]}


def archive_patterns(name: str = "function_source_patterns") -> list[str]:
    """A list of patterns in infra/functions.tf's locals: ``function_source_patterns`` (what
    the archive takes) or ``function_source_excludes`` (what it then leaves out)."""
    text = (REPO / "infra" / "functions.tf").read_text(encoding="utf-8")
    match = re.search(name + r"\s*=\s*\[(.*?)\]", text, re.DOTALL)
    if match is None:
        raise RuntimeError(f"expected {name} in infra/functions.tf, found none")
    return re.findall(r'"([^"]+)"', match[1])


def archive_files() -> list[Path]:
    """The archive's files: the patterns' matches less the excludes' (Terraform's fileset
    globs as pathlib does, tests/infra proves it)."""

    def matching(patterns: list[str]) -> set[Path]:
        return {p for pattern in patterns for p in REPO.glob(pattern) if p.is_file()}

    excluded = matching(archive_patterns("function_source_excludes"))
    return sorted(matching(archive_patterns()) - excluded)


def deploy_archive() -> dict[str, Any]:
    """The functions' source zip, built from infra's patterns as Terraform's archive_file
    does (deflate)."""
    files = archive_files()
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "functions-source.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as packed:
            for path in files:
                packed.write(path, path.relative_to(REPO).as_posix())
        zip_bytes = archive.stat().st_size
    return {
        "files": len(files),
        "source_bytes": sum(p.stat().st_size for p in files),
        "zip_bytes": zip_bytes,
    }


def requirement_closure(requirements: Path) -> dict[str, int]:
    """Installed bytes of every distribution requirements.txt pulls in, by normalised name
    (tests/infra/test_functions.py uses the names: the function's runtime)."""
    pending = [
        Requirement(line.split("#")[0].strip())
        for line in requirements.read_text(encoding="utf-8").splitlines()
        if line.split("#")[0].strip()
    ]
    sizes: dict[str, int] = {}
    while pending:
        requirement = pending.pop()
        key = canonicalize_name(requirement.name)
        if key in sizes:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # a platform-only dependency not installed here
        files = distribution.files or []
        located = (Path(str(distribution.locate_file(f))) for f in files)
        sizes[key] = sum(p.stat().st_size for p in located if p.is_file())
        for text in distribution.requires or []:
            needed = Requirement(text)
            if needed.marker is None or needed.marker.evaluate({"extra": ""}):
                pending.append(needed)
    return sizes


def run(repeat: int = 5) -> dict[str, Any]:
    """Every figure: import time, first-request steps, deploy archive, installed closure."""
    imports = import_main_seconds(repeat)
    median = statistics.median(imports)
    closure = requirement_closure(REPO / "requirements.txt")
    return {
        "import_main_seconds": imports,
        "import_main_median": median,
        "import_offenders": import_offenders() if median > IMPORT_BUDGET_SECONDS else [],
        "first_request": first_request_seconds(repeat),
        "archive": deploy_archive(),
        "installed_bytes": sum(closure.values()),
        "installed_distributions": len(closure),
        "largest_distributions": sorted(closure.items(), key=lambda kv: -kv[1])[:6],
    }


def print_table(result: dict[str, Any]) -> None:
    """The figures as markdown tables."""
    runs = ", ".join(f"{s:.2f}" for s in result["import_main_seconds"])
    print("\nCloud Function cold start (fresh interpreter; medians)\n")
    print("| what | seconds |")
    print("|---|---:|")
    print(f"| `import main` (runs: {runs}) | {result['import_main_median']:.2f} |")
    steps = dict(result["first_request"])
    del steps["import main"]  # timed above, over more runs
    rejection = steps.pop(REJECTION_ONLY)
    for name, seconds in steps.items():
        print(f"| first on_upload request: {name} | {seconds:.2f} |")
    print(f"| first on_upload request of an accepted file, in all | {sum(steps.values()):.2f} |")
    print(f"| first on_upload request: {REJECTION_ONLY} | {rejection:.2f} |")
    if result["import_offenders"]:
        print(f"\n`import main` is over {IMPORT_BUDGET_SECONDS:g} s; its heaviest imports:\n")
        print("| module | cumulative ms |")
        print("|---|---:|")
        for offender in result["import_offenders"]:
            print(f"| {offender['module']} | {offender['cumulative_ms']:.0f} |")
    archive = result["archive"]
    print("\nDeploy package (infra/functions.tf's archive, rebuilt here)\n")
    print("| what | size |")
    print("|---|---:|")
    print(f"| source zip ({archive['files']} files) | {archive['zip_bytes'] / 1e3:,.0f} kB |")
    print(f"| source files unpacked | {archive['source_bytes'] / 1e3:,.0f} kB |")
    print(
        f"| installed requirements.txt closure ({result['installed_distributions']}"
        f" distributions) | {result['installed_bytes'] / 1e6:,.0f} MB |"
    )
    for name, size in result["largest_distributions"]:
        print(f"| of which {name} | {size / 1e6:,.0f} MB |")


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    print_table(run(parser.parse_args(argv).repeat))


if __name__ == "__main__":
    main()
