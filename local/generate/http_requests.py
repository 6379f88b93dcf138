"""http_requests lines: the shared traffic model's requests as a Cloud Logging sink exports
them to Cloud Storage, one LogEntry a line (JSON, keys sorted, no spaces).

The shop's hosts sit behind an external HTTP(S) load balancer (``http_load_balancer``
entries, ``logName`` ``.../logs/requests``), except the API, a Cloud Run service
(``cloud_run_revision``, ``.../logs/run.googleapis.com%2Frequests``). The request is under
``httpRequest``: sizes are strings of digits, the latency is ``"0.012345s"``. Like Cloud
Logging, an entry leaves out keys without a value: no ``responseSize`` for an empty body, no
``referer`` or ``userAgent`` when the client sent none, no ``latency`` when the balancer
lost it, no ``trace`` for an untraced request. ``--dirty`` replaces entries with lines the
pipeline must dead-letter (see ``CASES``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from local.generate.lines import LineCase, LineDataset
from local.generate.timefmt import rfc3339_utc
from local.generate.traffic import Requests, iter_request_blocks

DATASET = "http_requests"
STREAM_ENTRIES = 11
PROJECT = "shop-prod"
_ALPHABET = np.array(list("0123456789abcdefghijklmnopqrstuvwxyz"))
_HEX = _ALPHABET[:16]
_LOAD_BALANCER = {
    "type": "http_load_balancer",
    "labels": {"backend_service_name": "shop-web", "forwarding_rule_name": "shop-https",
               "project_id": PROJECT, "target_proxy_name": "shop-https-proxy",
               "url_map_name": "shop-lb", "zone": "global"},
}  # fmt: skip
_CLOUD_RUN = {
    "type": "cloud_run_revision",
    "labels": {"configuration_name": "shop-api", "location": "europe-west1",
               "project_id": PROJECT, "revision_name": "shop-api-00042-xiv",
               "service_name": "shop-api"},
}  # fmt: skip
_LB_ENTRY_TYPE = "type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry"
_STATUS_DETAILS = {502: "failed_to_connect_to_backend", 504: "backend_timeout"}

Entry = dict[str, Any]


def iter_row_blocks(rows: int, seed: int) -> Iterator[tuple[int, list[Entry]]]:
    """(entries done so far, LogEntry objects) per block of the traffic model's requests."""
    for index, (done, requests) in enumerate(iter_request_blocks(rows, seed)):
        rng = np.random.default_rng([seed, STREAM_ENTRIES, index])
        yield done, _entries(requests, rng)


def render(entry: Entry) -> str:
    """One line of a sink's export."""
    return _json_text(entry)


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _entries(requests: Requests, rng: np.random.Generator) -> list[Entry]:
    size = len(requests)
    utc_us = requests.utc_ms * 1000 + rng.integers(0, 1000, size)
    received_us = utc_us + rng.integers(5_000, 900_000, size)
    protocols = np.where(rng.random(size) < 0.45, "HTTP/2.0", "HTTP/1.1")
    protocols[requests.crawled] = "HTTP/1.1"
    traced = rng.random(size) < 0.85
    traces = _random_text(rng, _HEX, size, 32)
    spans = _random_text(rng, _HEX, size, 16)
    insert_ids = _random_text(rng, _ALPHABET, size, 14)
    request_sizes = rng.integers(180, 1400, size)
    columns = zip(
        rfc3339_utc(utc_us), rfc3339_utc(received_us), requests.hosts.tolist(),
        requests.methods.tolist(), requests.paths.tolist(), requests.statuses.tolist(),
        requests.bytes_sent.tolist(), requests.latency_ms.tolist(), requests.timed.tolist(),
        requests.client_ips.tolist(), requests.user_agents.tolist(),
        requests.referrers.tolist(), protocols.tolist(), traced.tolist(), traces, spans,
        insert_ids, request_sizes.tolist(), strict=True,
    )  # fmt: skip
    entries = []
    for (time, received, host, method, path, status, sent, latency, timed, ip, agent, referrer,
         protocol, is_traced, trace, span, insert_id, request_size) in columns:  # fmt: skip
        http: Entry = {"requestMethod": method, "requestUrl": f"https://{host}{path}",
                       "requestSize": str(request_size), "status": status, "remoteIp": ip,
                       "protocol": protocol}  # fmt: skip
        if sent:
            http["responseSize"] = str(sent)
        if agent:
            http["userAgent"] = agent
        if referrer:
            http["referer"] = referrer
        if timed:
            http["latency"] = f"{latency / 1000:.6f}s"
        api = host.startswith("api.")
        entry: Entry = {
            "httpRequest": http,
            "insertId": insert_id,
            "logName": f"projects/{PROJECT}/logs/"
            + ("run.googleapis.com%2Frequests" if api else "requests"),
            "receiveTimestamp": received,
            "resource": copy.deepcopy(_CLOUD_RUN if api else _LOAD_BALANCER),
            "severity": "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO",
            "timestamp": time,
        }
        if not api:
            details = _STATUS_DETAILS.get(status, "response_sent_by_backend")
            entry["jsonPayload"] = {"@type": _LB_ENTRY_TYPE, "statusDetails": details}
        if is_traced:
            entry["trace"] = f"projects/{PROJECT}/traces/{trace}"
            entry["spanId"] = span
        entries.append(entry)
    return entries


def _random_text(
    rng: np.random.Generator, alphabet: np.ndarray, count: int, width: int
) -> list[str]:
    """``count`` random strings of ``width`` characters of ``alphabet``."""
    picks = alphabet[rng.integers(0, len(alphabet), (count, width))]
    return ["".join(chars) for chars in picks.tolist()]


def _batch(entry: Entry, rng: np.random.Generator) -> str:
    return _json_text([entry])


def _client_disconnected(entry: Entry, rng: np.random.Generator) -> str:
    # Status 0 is left out of the export, as every default value is.
    broken = copy.deepcopy(entry)
    for key in ("status", "responseSize", "latency"):
        broken["httpRequest"].pop(key, None)
    broken["severity"] = "WARNING"
    if "jsonPayload" in broken:
        broken["jsonPayload"]["statusDetails"] = "client_disconnected_before_any_response"
    return render(broken)


def _status_as_text(entry: Entry, rng: np.random.Generator) -> str:
    broken = copy.deepcopy(entry)
    broken["httpRequest"]["status"] = "OK"
    return render(broken)


CASES: tuple[LineCase[Entry], ...] = (
    LineCase("not a JSON object (an array of one entry)", True, _batch),
    LineCase(
        "required key missing (httpRequest.status: client disconnected)", True, _client_disconnected
    ),
    LineCase("bad value type (httpRequest.status as text)", True, _status_as_text),
)
LINES = LineDataset(iter_row_blocks, render, CASES)
