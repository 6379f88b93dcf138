"""A small recording fake of BigQuery's REST API, for driving the real client in tests.

It answers the calls the adapter makes (datasets and tables insert/get/patch/delete,
jobs.insert, resumable load uploads, jobs.get, getQueryResults), keeps jobs by id (a second
insert of an id answers 409 like BigQuery) and records every request so tests can assert
exactly what the client sent. ``fail_next`` scripts error answers.

Mutating DML is limited per table as BigQuery limits it: a query job whose SQL runs DELETE,
UPDATE or MERGE on a table (a whole transaction script counts against every table it
mutates) runs when fewer than 2 such jobs run on each of its tables, waits ``PENDING`` in
FIFO order otherwise, and fails with BigQuery's ``resourcesExceeded`` "Too many DML
statements outstanding" when a table already has 22 outstanding (2 running + 20 queued).
A running DML job takes ``dml_seconds`` (one matching ``held_dml`` runs until
``release_held``, as a long job of someone else's would); ``peak_running``,
``peak_pending`` and ``peak_outstanding`` (running and pending at one moment) record the
most seen per table, ``dml_refused`` the jobs refused. getQueryResults waits (up to its
``timeoutMs``) for the job, as BigQuery does.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyarrow.parquet as pq


@dataclass
class Request:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class FakeBigQuery:
    """State of the fake: jobs, tables, uploads, scripted failures and the request log."""

    requests: list[Request] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    query_rows: list[list[Any]] = field(default_factory=list)
    query_schema: list[dict[str, str]] = field(default_factory=list)
    failures: list[tuple[str, int, dict[str, Any] | None]] = field(default_factory=list)
    job_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    dml_seconds: float = 0.0
    held_dml: list[str] = field(default_factory=list)
    """SQL patterns of DML jobs that run until ``release_held``."""
    dml_tables: dict[str, list[str]] = field(default_factory=dict)
    """Job id -> the tables its DML mutates."""
    dml_running: dict[str, float] = field(default_factory=dict)
    """Job id -> when it finishes."""
    dml_pending: list[str] = field(default_factory=list)
    final_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_running: dict[str, int] = field(default_factory=dict)
    peak_pending: dict[str, int] = field(default_factory=dict)
    peak_outstanding: dict[str, int] = field(default_factory=dict)
    dml_refused: int = 0

    @property
    def endpoint(self) -> str:
        """The base URL to give the client."""
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, pattern: str, status: int, error: dict[str, Any] | None = None) -> None:
        """Answer the next request whose 'METHOD path' matches ``pattern`` with ``status``."""
        self.failures.append((pattern, status, error))

    def fail_job(self, job_id_pattern: str, reason: str, message: str) -> None:
        """Make jobs whose id matches ``job_id_pattern`` finish with an error."""
        self.job_errors[job_id_pattern] = {"reason": reason, "message": message}

    def sent(self, method: str, path_pattern: str) -> list[Request]:
        """Requests with ``method`` whose path matches ``path_pattern``."""
        return [r for r in self.requests if r.method == method and re.search(path_pattern, r.path)]

    def job_inserts(self) -> list[dict[str, Any]]:
        """Job resources the client tried to create (jobs.insert and upload starts)."""
        posts = self.sent("POST", r"/jobs$")
        return [r.json() for r in posts if r.body]

    def answer(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one request."""
        results = re.fullmatch(r".*/queries/([^/]+)", request.path)
        if request.method == "GET" and results:
            self._wait_for_job(results.group(1), request.query)
        with self.lock:
            self.requests.append(request)
            for index, (pattern, status, error) in enumerate(self.failures):
                if re.search(pattern, f"{request.method} {request.path}"):
                    del self.failures[index]
                    body = error or {"code": status, "message": "scripted", "errors": []}
                    return _json(status, {"error": body})
            return self._route(request)

    def release_held(self) -> None:
        """Let the held DML jobs finish now."""
        with self.lock:
            self.held_dml.clear()
            for job_id, end in self.dml_running.items():
                if end == float("inf"):
                    self.dml_running[job_id] = time.monotonic()

    def _wait_for_job(self, job_id: str, query: dict[str, list[str]]) -> None:
        """Hold a getQueryResults call until the job is done or its timeoutMs (max 1 s)."""
        wait = min(float(query.get("timeoutMs", ["0"])[0]) / 1000, 1.0)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self.lock:
                self._advance()
                if job_id not in self.dml_running and job_id not in self.dml_pending:
                    return
            time.sleep(0.005)

    def _outstanding(self, table: str) -> tuple[int, int]:
        running = sum(table in self.dml_tables[job] for job in self.dml_running)
        pending = sum(table in self.dml_tables[job] for job in self.dml_pending)
        return running, pending

    def _advance(self) -> None:
        """Finish the DML jobs whose time is up, then start pending ones, oldest first."""
        now = time.monotonic()
        for job_id, end in list(self.dml_running.items()):
            if end <= now:
                del self.dml_running[job_id]
                self.jobs[job_id]["status"] = self.final_status.pop(job_id)
        for job_id in list(self.dml_pending):
            if all(self._outstanding(table)[0] < 2 for table in self.dml_tables[job_id]):
                self.dml_pending.remove(job_id)
                sql = self.jobs[job_id]["configuration"]["query"]["query"]
                held = any(re.search(pattern, sql) for pattern in self.held_dml)
                self.dml_running[job_id] = float("inf") if held else now + self.dml_seconds
                self.jobs[job_id]["status"] = {"state": "RUNNING"}
        for table in {
            t for job in [*self.dml_running, *self.dml_pending] for t in self.dml_tables[job]
        }:
            running, pending = self._outstanding(table)
            self.peak_running[table] = max(self.peak_running.get(table, 0), running)
            self.peak_pending[table] = max(self.peak_pending.get(table, 0), pending)
            outstanding = running + pending
            self.peak_outstanding[table] = max(self.peak_outstanding.get(table, 0), outstanding)

    def _admit_dml(self, job_id: str, done: dict[str, Any]) -> dict[str, Any]:
        """Queue a mutating DML job; its status now (failed when a table's queue is full)."""
        tables = list(dict.fromkeys(MUTATED.findall(done["configuration"]["query"]["query"])))
        for table in tables:
            if sum(self._outstanding(table)) >= 22:
                self.dml_refused += 1
                project, dataset, name = table.split(".")
                message = (
                    "Resources exceeded during query execution: Too many DML statements"
                    f" outstanding against table {project}:{dataset}.{name}, limit is 20"
                )
                error = {"reason": "resourcesExceeded", "message": message}
                return {"state": "DONE", "errorResult": error, "errors": [error]}
        self.dml_tables[job_id] = tables
        self.final_status[job_id] = done["status"]
        self.dml_pending.append(job_id)
        return {"state": "PENDING"}

    def _route(self, r: Request) -> tuple[int, dict[str, str], bytes]:
        self._advance()
        m = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/(.*)", r.path)
        upload = re.fullmatch(r"/upload/bigquery/v2/projects/([^/]+)/jobs", r.path)
        if upload and r.method == "POST":
            return self._start_upload(r)
        if upload and r.method == "PUT":
            return self._finish_upload(r)
        if not m:
            return _json(404, {"error": {"code": 404, "message": f"no route {r.path}"}})
        project, rest = m.groups()
        if rest == "datasets" and r.method == "POST":
            return _json(200, r.json())
        table = re.fullmatch(r"datasets/([^/]+)/tables(?:/([^/]+))?", rest)
        if table:
            return self._table(r, project, *table.groups())
        job = re.fullmatch(r"(jobs|queries)(?:/([^/]+))?", rest)
        if job and r.method == "POST" and job.group(2) is None:
            return self._insert_job(r.json())
        if job and r.method == "GET" and job.group(2) in self.jobs:
            resource = self.jobs[job.group(2)]
            return _json(200, resource if job.group(1) == "jobs" else self._results(resource))
        return _json(404, {"error": {"code": 404, "message": f"Not found: {rest}"}})

    def _table(
        self, r: Request, project: str, dataset: str, name: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        if name is None and r.method == "POST":
            resource = r.json()
            key = f"{dataset}.{resource['tableReference']['tableId']}"
            if key in self.tables:
                return _json(409, {"error": {"code": 409, "message": f"Already Exists: {key}"}})
            self.tables[key] = resource
            return _json(200, resource)
        key = f"{dataset}.{name}"
        if key not in self.tables:
            return _json(404, {"error": {"code": 404, "message": f"Not found: Table {key}"}})
        if r.method in ("PATCH", "PUT"):
            self.tables[key].update(r.json())
        if r.method == "DELETE":
            del self.tables[key]
            return 204, {}, b""
        return _json(200, self.tables[key])

    def _insert_job(self, resource: dict[str, Any], rows: int = 0) -> tuple[int, dict, bytes]:
        job_id = resource["jobReference"]["jobId"]
        if job_id in self.jobs:
            message = f"Already Exists: Job {resource['jobReference']['projectId']}:{job_id}"
            error = {"code": 409, "message": message, "errors": [{"reason": "duplicate"}]}
            return _json(409, {"error": error})
        done = {**resource, "id": job_id, "status": {"state": "DONE"}}
        for pattern, error in self.job_errors.items():
            if re.search(pattern, job_id):
                done["status"] = {"state": "DONE", "errorResult": error, "errors": [error]}
        if "load" in resource.get("configuration", {}):
            done["statistics"] = {"load": {"outputRows": str(rows)}}
            destination = resource["configuration"]["load"]["destinationTable"]
            key = f"{destination['datasetId']}.{destination['tableId']}"
            if "errorResult" not in done["status"]:
                self.tables[key] = {"tableReference": destination, "numRows": str(rows)}
        if MUTATED.search(resource.get("configuration", {}).get("query", {}).get("query", "")):
            done["status"] = self._admit_dml(job_id, done)
        self.jobs[job_id] = done
        self._advance()
        return _json(200, done)

    def _start_upload(self, r: Request) -> tuple[int, dict[str, str], bytes]:
        upload_id = str(len(self.uploads))
        self.uploads[upload_id] = r.body
        location = f"{self.endpoint}/upload/bigquery/v2/projects/p/jobs?upload_id={upload_id}"
        return 200, {"Location": location}, b""

    def _finish_upload(self, r: Request) -> tuple[int, dict[str, str], bytes]:
        upload_id = r.query["upload_id"][0]
        resource = json.loads(self.uploads[upload_id])
        self.uploads[upload_id] = r.body
        rows = pq.read_metadata(io.BytesIO(r.body)).num_rows
        return self._insert_job(resource, rows)

    def _results(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["status"]["state"] != "DONE":
            return {"jobReference": job["jobReference"], "jobComplete": False}
        rows = [{"f": [{"v": value} for value in row]} for row in self.query_rows]
        return {
            "jobReference": job["jobReference"],
            "jobComplete": True,
            "schema": {"fields": self.query_schema},
            "rows": rows,
            "totalRows": str(len(rows)),
        }


MUTATED = re.compile(
    r"\b(?:DELETE\s+FROM|UPDATE|MERGE(?:\s+INTO)?)\s+`?([\w-]+\.[\w-]+\.[\w-]+)`?", re.I
)
"""A table that a DELETE, UPDATE or MERGE in the SQL mutates (fully qualified names)."""


def _json(status: int, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def serve(fake: FakeBigQuery) -> ThreadingHTTPServer:
    """Start serving ``fake`` on a free loopback port in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(self.command, url.path, parse_qs(url.query), self.rfile.read(length))
            status, headers, body = fake.answer(request)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server
