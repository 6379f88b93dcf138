"""Whether a Dataflow job still runs, asked of scripted Dataflow v1b3 answers (HttpMockSequence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import googleapiclient
import pytest
from googleapiclient.http import HttpMockSequence

from sluice.errors import PermanentError, TransientError
from sluice.ingest.dataflow import TERMINAL_STATES, build_dataflow_service, dataflow_job_running
from sluice.settings import load_settings

JOB = "sluice-kiva-lenders-0123456789abcdef"
JOBS_PATH = "/v1b3/projects/proj-1/locations/europe-west1/jobs"
DISCOVERY = Path(googleapiclient.__file__).parent / "discovery_cache/documents/dataflow.v1b3.json"
STATES: list[str] = json.loads(DISCOVERY.read_text())["schemas"]["Job"]["properties"][
    "currentState"
]["enum"]
"""Every JobState in the discovery document the client is built from."""
ENDED = {"JOB_STATE_DONE", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_DRAINED",
         "JOB_STATE_UPDATED"}  # fmt: skip
"""The states after which a job does nothing more (Dataflow's JobState reference)."""


class RecordingHttp(HttpMockSequence):
    """Scripted answers, with the (method, path, query) of every request kept."""

    def __init__(self, *responses: tuple[int, Any]) -> None:
        super().__init__([({"status": str(code)}, json.dumps(body)) for code, body in responses])
        self.calls: list[tuple[str, str, dict[str, list[str]]]] = []

    def request(self, uri: str, method: str = "GET", body: Any = None, **kwargs: Any) -> Any:
        """Keep the request, answer the next scripted response."""
        parts = urlsplit(uri)
        self.calls.append((method, parts.path, parse_qs(parts.query)))
        return super().request(uri, method, body, **kwargs)


def running(http: RecordingHttp, job_id: str | None) -> bool:
    settings = load_settings(gcp_project="proj-1", dataflow_region="europe-west1")
    jobs = build_dataflow_service(settings, http).projects().locations().jobs()
    return dataflow_job_running(jobs, settings, JOB, job_id)


def test_dataflow_terminal_states_are_states_of_the_discovery_document() -> None:
    assert set(STATES) > TERMINAL_STATES


@pytest.mark.parametrize("state", STATES)
def test_dataflow_job_running_by_id_until_its_state_is_terminal(state: str) -> None:
    http = RecordingHttp((200, {"id": "df-7", "name": JOB, "currentState": state}))

    answer = running(http, "df-7")

    assert answer is (state not in ENDED)
    [(method, path, query)] = http.calls
    assert (method, path, query["view"]) == ("GET", f"{JOBS_PATH}/df-7", ["JOB_VIEW_SUMMARY"])


@pytest.mark.parametrize("job_id", [None, JOB])
def test_dataflow_job_without_an_id_is_looked_up_by_name_among_active_jobs(
    job_id: str | None,
) -> None:
    other = {"id": "df-1", "name": "another-job", "currentState": "JOB_STATE_RUNNING"}
    ours = {"id": "df-2", "name": JOB, "currentState": "JOB_STATE_RUNNING"}
    http = RecordingHttp((200, {"jobs": [other], "nextPageToken": "p2"}), (200, {"jobs": [ours]}))

    answer = running(http, job_id)

    assert answer is True
    assert [(m, p) for m, p, _ in http.calls] == [("GET", JOBS_PATH)] * 2
    first, second = (query for _, _, query in http.calls)
    assert (first["filter"], first["name"], "pageToken" in first) == (["ACTIVE"], [JOB], False)
    assert second["pageToken"] == ["p2"]


def test_dataflow_job_absent_from_active_jobs_is_not_running() -> None:
    assert running(RecordingHttp((200, {})), None) is False


def test_dataflow_job_id_dataflow_does_not_know_is_not_running() -> None:
    error = {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}

    assert running(RecordingHttp((404, error)), "df-gone") is False


@pytest.mark.parametrize(
    ("status", "raised"), [(503, TransientError), (429, TransientError), (403, PermanentError)]
)
def test_dataflow_job_status_faults_say_whether_a_retry_may_help(
    status: int, raised: type[Exception]
) -> None:
    error = {"error": {"code": status, "message": "scripted", "status": "X"}}

    with pytest.raises(raised, match=f"dataflow status of job {JOB}: .*HTTP {status}"):
        running(RecordingHttp((status, error)), "df-7")
