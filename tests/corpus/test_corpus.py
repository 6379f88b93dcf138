"""The corpus of bad inputs, each driven through ``main.on_upload`` and the pipeline.

For every case: ``on_upload`` answers 200 with no traceback, the landing object keeps its
generation and bytes, and everything written to the pipeline bucket stays under
``claims/`` or ``quarantine/<generation>/`` within Cloud Storage's name limit. Then, by the
case's expected outcome:

- loaded: one ``loaded`` log row with rows_in = rows_loaded + rows_dead, exactly the expected
  rows loaded and exactly the expected lines dead-lettered (reason substring, raw text), the
  listed values stored as given, the claim ``loaded``, staging removed. Then, with the claim
  forgotten, the same event again under a fast-lane limit above every case, into a warehouse
  of its own: loaded inside the function, nothing launched, and every row of every table the
  same as the pipeline lane's, except the columns that say when and by which job;
- rejected: nothing launched, the quarantine copy holds the same bytes beside a reason file
  naming the code, one ``rejected`` log row, the claim ``rejected``;
- ignored: no claim, no launch, no log row, one ``ignored`` log line with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.contracts import Contract
from sluice.gcs import gs_uri
from sluice.ingest.claims import event_key, read_claim
from sluice.settings import Settings, load_settings
from tests.corpus import cases_files, cases_names, cases_values, harness
from tests.corpus.expect import Case, Ignored, Loaded, Rejected
from tests.sluice.ingest.upload_doubles import RecordingLauncher, install_launcher, land

if TYPE_CHECKING:
    from google.cloud.storage import Blob

    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]
TRACEBACK_MARKS = ("Traceback", 'File "')
ALL_CASES: list[Case] = [*cases_files.CASES, *cases_values.CASES, *cases_names.CASES]


PARAMETERS = [pytest.param(case, id=case.id) for case in ALL_CASES]


@pytest.mark.parametrize("case", PARAMETERS)
def test_corpus_case_reaches_its_expected_outcome(
    case: Case,
    gcs: GcsBuckets,
    contracts: dict[str, Contract],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    for variable, value in case.env:
        monkeypatch.setenv(variable, value)
    launcher = install_launcher(monkeypatch)
    data = case.payload()
    blob = land(gcs, data, case.object_name)

    delivery = harness.deliver(blob, capsys)
    settings = load_settings()
    records = [harness.run_pipeline(request, settings) for request in launcher.requests]

    assert delivery.status == 200, delivery.body
    assert not [mark for mark in TRACEBACK_MARKS if mark in delivery.body]
    assert not [line for line in delivery.logs if line["severity"] in ("ERROR", "CRITICAL")]
    landed = gcs.landing.get_blob(blob.name)
    assert landed is not None and landed.generation == blob.generation
    assert landed.download_as_bytes() == data
    assert harness.misplaced_names(harness.pipeline_objects(gcs), blob.generation) == []
    contract = contracts[case.dataset]
    if isinstance(case.expect, Loaded):
        check_loaded(case.expect, blob, contract, settings, gcs, records)
        check_the_fast_lane_loads_the_same(blob, settings, gcs, monkeypatch, capsys, tmp_path)
    elif isinstance(case.expect, Rejected):
        check_rejected(case.expect, blob, data, settings, gcs, launcher)
    else:
        check_ignored(case.expect, delivery, settings, gcs, launcher)


def check_loaded(
    expect: Loaded,
    blob: Blob,
    contract: Contract,
    settings: Settings,
    gcs: GcsBuckets,
    records: list[object],
) -> None:
    """One loaded log row; exactly the expected rows, dead letters and values."""
    uri = gs_uri(gcs.landing.name, blob.name)
    assert len(records) == 1
    [row] = harness.log_rows(settings)
    assert (row["status"], row["source_uri"], row["source_generation"]) == (
        "loaded",
        uri,
        blob.generation,
    ), row["reason"]
    assert row["rows_in"] == row["rows_loaded"] + row["rows_dead"]
    assert (row["rows_loaded"], row["rows_dead"]) == (expect.rows, len(expect.dead))
    assert harness.loaded_count(settings, contract, uri) == expect.rows
    found = harness.dead_letters(settings, contract, uri)
    assert sorted(found) == sorted(expect.dead), {n: d["reason"] for n, d in found.items()}
    for line, why in expect.dead.items():
        assert why in found[line]["reason"], found[line]["reason"]
        assert found[line]["raw_text"] and found[line]["source_generation"] == blob.generation
    for line, expression, value in expect.values:
        assert harness.loaded_value(settings, contract, line, expression) == [value]
    key = event_key(gcs.landing.name, blob.name, blob.generation)
    assert read_claim(gcs.client, settings, key).state == "loaded"
    assert not [p for p in settings.staging_root.rglob("*") if p.is_file()]


def check_the_fast_lane_loads_the_same(
    blob: Blob,
    pipeline_settings: Settings,
    gcs: GcsBuckets,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """The same event through the fast lane gives the pipeline lane's warehouse."""
    launcher = install_launcher(monkeypatch)
    harness.forget_claims(gcs)
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "fast-lane"))
    monkeypatch.setenv("SLUICE_FAST_LANE_MAX_BYTES", str(1024**3))  # above every case
    in_function = harness.deliver(blob, capsys)
    fast_settings = load_settings()

    assert in_function.status == 200, in_function.body
    assert launcher.attempts == 0
    assert [line["outcome"] for line in in_function.outcomes("loaded")] == ["loaded"]
    pipeline_tables = harness.warehouse_contents(pipeline_settings)
    assert harness.warehouse_contents(fast_settings) == pipeline_tables
    key = event_key(gcs.landing.name, blob.name, blob.generation)
    assert read_claim(gcs.client, fast_settings, key).state == "loaded"
    assert not [p for p in fast_settings.staging_root.rglob("*") if p.is_file()]


def check_rejected(
    expect: Rejected,
    blob: Blob,
    data: bytes,
    settings: Settings,
    gcs: GcsBuckets,
    launcher: RecordingLauncher,
) -> None:
    """Nothing launched; quarantined with a machine-readable reason; logged; claim rejected."""
    assert launcher.attempts == 0
    prefix = f"quarantine/{blob.generation}/"
    names = sorted(b.name for b in gcs.client.list_blobs(gcs.pipeline.name, prefix=prefix))
    assert len(names) == 2 and names[1] == names[0] + ".reason.json", names
    assert gcs.pipeline.blob(names[0]).download_as_bytes() == data
    reason = json.loads(gcs.pipeline.blob(names[1]).download_as_bytes())
    assert expect.code in [problem["code"] for problem in reason["problems"]], reason["reason"]
    assert expect.message in reason["reason"]
    assert (reason["accepted"], reason["object"], reason["generation"]) == (
        False,
        blob.name,
        blob.generation,
    )
    if expect.max_bytes_read is not None:
        assert reason["bytes_read"] <= expect.max_bytes_read
    [row] = harness.log_rows(settings)
    assert (row["status"], row["rows_in"], row["reason"]) == ("rejected", 0, reason["reason"])
    key = event_key(gcs.landing.name, blob.name, blob.generation)
    assert read_claim(gcs.client, settings, key).state == "rejected"


def check_ignored(
    expect: Ignored,
    delivery: harness.Delivery,
    settings: Settings,
    gcs: GcsBuckets,
    launcher: RecordingLauncher,
) -> None:
    """No claim, no launch, no log row; one ``ignored`` log line giving the reason."""
    assert launcher.attempts == 0
    assert harness.pipeline_objects(gcs) == []
    assert harness.log_rows(settings) == []
    [ignored] = delivery.outcomes("ignored")
    assert expect.why in ignored["reason"]
