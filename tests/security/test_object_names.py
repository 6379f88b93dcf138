"""Names derived from a hostile landing object name stay under their prefixes.

Whoever uploads a file chooses its object name. From it Sluice derives a claim name
(``sluice.ingest.claims``), a quarantine name (``sluice.ingest.quarantine``), a job name
and a staging directory (``sluice.ingest.launch``, ``beam.options``) and the pipeline's command line
(``LocalLauncher``). These tests feed the real builders names with ``..``, encoded and
doubled slashes, unicode, CR/LF, quotes, shell syntax, flag lookalikes, ``claims/`` and
``quarantine/`` lookalikes and names of Cloud Storage's full 1,024 bytes.

Proven elsewhere and not repeated: a claim name is a hash of the key
(tests/sluice/ingest/test_claims.py::test_claim_object_name_is_a_hash_that_never_escapes_the_prefix),
an ordinary quarantine name is flat and reversible
(tests/sluice/ingest/test_quarantine.py::test_quarantine_name_is_flat_reversible_and_keyed_by_generation),
a job name outside ``[-a-z0-9]`` is refused
(tests/sluice/ingest/test_launch.py::test_launch_request_rejects_an_invalid_job_name).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from beam.options import add_pipeline_arguments, resolve_params
from local.launcher import LocalLauncher
from sluice.gcs import gs_uri
from sluice.ingest.claims import claim_object_name, event_key
from sluice.ingest.door import handle_object
from sluice.ingest.launch import JOB_NAME, LaunchRequest, launch_parameters
from sluice.ingest.quarantine import QUARANTINE_PREFIX, REASON_SUFFIX, quarantine_name
from sluice.schema import SourceRef
from sluice.settings import load_settings
from sluice.warehouse.duckdb import DuckDBWarehouse

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]

LANDING = "sluice-landing"
PREFIX = "incoming/kiva_loans/"
GENERATION = 1764000000000000
GCS_MAX_NAME_BYTES = 1024
"""Cloud Storage's limit on an object name, in UTF-8 bytes."""
CANARY = Path("/tmp/sluice-security-canary")
CLAIM = re.compile(r"claims/[0-9a-f]{40}\.json")
HOSTILE = {
    "dot-dot": "..",
    "climbing": "../../claims/0000000000000000000000000000000000000000.json",
    "inner-climb": "a/../../../quarantine/1/x.csv",
    "encoded-slashes": "%2F..%2F..%2Fclaims%2Fx.json",
    "slash": "/",
    "double-slash": "a//b.csv",
    "dot-slash": "./",
    "unicode": "prêts 2024/Ünïcødé 文件 🚀.csv",
    "newline": "line\nbreak.csv",
    "crlf": "cr\r\nlf.csv",
    "claims-lookalike": "claims/" + "a" * 40 + ".json",
    "quarantine-lookalike": f"quarantine/{GENERATION}/x.csv",
    "sql": "x'); DROP TABLE sluice.ingestion_log; --.csv",
    "quotes": "\"double\" 'single' `back`.csv",
    "shell": f"$(touch {CANARY}); `touch {CANARY}`; echo > {CANARY}.csv",
    "flags": "x.csv --dataset=server_logs --warehouse_target=/tmp/evil\n--job_name=evil",
    "long-ascii": "a" * (GCS_MAX_NAME_BYTES - len(PREFIX)),
    "long-unicode": "é" * ((GCS_MAX_NAME_BYTES - len(PREFIX)) // 2),
}


def flat_under(name: str, prefix: str) -> bool:
    """One path segment right below ``prefix``, which no path normalisation can lift out;
    no CR, LF or NUL (Cloud Storage forbids them); within Cloud Storage's length limit."""
    rest = name.removeprefix(prefix)
    return (
        name.startswith(prefix)
        and rest not in ("", ".", "..")
        and "/" not in rest
        and not set(rest) & set("\r\n\x00")
        and len(name.encode()) <= GCS_MAX_NAME_BYTES
    )


@pytest.mark.parametrize("suffix", HOSTILE.values(), ids=HOSTILE.keys())
def test_claim_and_quarantine_names_of_a_hostile_name_stay_under_their_prefixes(
    suffix: str,
) -> None:
    name = PREFIX + suffix
    quarantine = f"{QUARANTINE_PREFIX}{GENERATION}/"

    claims = [claim_object_name(event_key(LANDING, name, GENERATION, r)) for r in (None, "r1")]
    copy = quarantine_name(name, GENERATION)

    assert len(name.encode()) <= GCS_MAX_NAME_BYTES  # a name Cloud Storage accepts
    assert all(CLAIM.fullmatch(claim) for claim in claims)
    assert flat_under(copy, quarantine)
    assert flat_under(copy + REASON_SUFFIX, quarantine)
    assert copy != quarantine_name(name + "x", GENERATION)  # long names stay distinct


@pytest.mark.parametrize("suffix", HOSTILE.values(), ids=HOSTILE.keys())
def test_local_launch_passes_a_hostile_name_as_one_argument_and_stages_under_the_root(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interpreter the launcher starts is the process boundary: a stand-in records argv.
    argv_file = tmp_path / "argv"
    recorder = tmp_path / "python"
    recorder.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "{argv_file}"\n')
    recorder.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(recorder))
    CANARY.unlink(missing_ok=True)
    settings = load_settings()
    uri, key = gs_uri(LANDING, PREFIX + suffix), event_key(LANDING, PREFIX + suffix, GENERATION)
    request = LaunchRequest.for_object("kiva_loans", SourceRef(uri, GENERATION), event_key=key)
    launcher = LocalLauncher(settings)

    launcher.launch(request)
    assert launcher.wait(request.job_name, timeout=30) == 0
    argv = [arg.decode() for arg in argv_file.read_bytes().split(b"\0")[:-1]]
    params = resolve_params(add_pipeline_arguments(argparse.ArgumentParser()).parse_args(argv[2:]))

    assert argv[:2] == ["-m", "local.pipeline"]
    assert len(argv) == 2 + len(launch_parameters(request, settings, launcher="local"))
    assert (params.input, params.source.uri, params.event_key) == (uri, uri, key)
    assert (params.dataset, params.job_name) == ("kiva_loans", request.job_name)
    assert JOB_NAME.fullmatch(params.job_name)
    root = str(settings.staging_root.absolute())
    assert params.staging_dir == f"{root}/kiva_loans/{request.job_name}"
    assert os.path.normpath(params.staging_dir) == params.staging_dir
    assert not CANARY.exists()  # no shell ever saw the name


def test_on_upload_rejecting_hostile_names_writes_only_claims_and_flat_quarantine(
    gcs: GcsBuckets,
) -> None:
    settings = load_settings()
    names = [PREFIX + suffix for suffix in HOSTILE.values()]
    landed = {}
    for name in names:
        blob = gcs.landing.blob(name)
        blob.upload_from_string(b"not_a_column,loan_name\n1,x\n", content_type="text/csv")
        landed[name] = blob.generation

    outcomes = {
        n: handle_object(gcs.landing.name, n, g, settings=settings) for n, g in landed.items()
    }

    # A name ending in "/" is a folder placeholder: acknowledged, never claimed.
    assert {n: o.status for n, o in outcomes.items()} == {
        n: "ignored" if n.endswith("/") else "rejected" for n in names
    }
    landed = {n: g for n, g in landed.items() if not n.endswith("/")}
    written = [blob.name for blob in gcs.client.list_blobs(gcs.pipeline.name)]
    copies = {quarantine_name(n, g): n for n, g in landed.items()}
    assert sorted(n for n in written if n.startswith("claims/")) == sorted(
        claim_object_name(event_key(gcs.landing.name, n, g)) for n, g in landed.items()
    )
    assert sorted(n for n in written if not n.startswith("claims/")) == sorted(
        [*copies, *(copy + REASON_SUFFIX for copy in copies)]
    )
    for copy, name in copies.items():
        assert flat_under(copy + REASON_SUFFIX, f"{QUARANTINE_PREFIX}{landed[name]}/")
        reason = json.loads(gcs.pipeline.blob(copy + REASON_SUFFIX).download_as_bytes())
        assert reason["object"] == name
    logged = DuckDBWarehouse(settings).query("SELECT source_uri FROM {dataset}.ingestion_log")
    assert sorted(row["source_uri"] for row in logged) == sorted(
        gs_uri(gcs.landing.name, name) for name in landed
    )
