"""The event bridge, driven by a real Pub/Sub gRPC client and a real HTTP receiver."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from cloudevents.http import from_http
from google.pubsub_v1 import PublisherClient
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.types import PubsubMessage

from local.bridge import EventBridge, RetryPolicy
from local.eventarc import FINALIZED, storage_event
from sluice.errors import ConfigError
from tests.local.storage_messages import finalize_message

FAST_RETRY = RetryPolicy(max_attempts=5, initial_backoff=0.05, max_backoff=0.2, attempt_timeout=5)
TOPIC = "projects/local/topics/gcs-events"


class Receiver:
    """A tiny CloudEvent endpoint answering the scripted statuses, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        self.stopped = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append((headers, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        """Stop serving and close the socket (later deliveries get connection errors)."""
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        """The requests once ``count`` have arrived (fails after ``timeout``)."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


@pytest.fixture
def serve() -> Iterator[Callable[[list[int]], Receiver]]:
    """Start receivers answering scripted statuses; all are stopped after the test."""
    started: list[Receiver] = []

    def start(statuses: list[int]) -> Receiver:
        receiver = Receiver(statuses)
        threading.Thread(target=receiver.server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(serve: Callable[[list[int]], Receiver]) -> Receiver:
    """A receiver answering 200 to everything."""
    return serve([])


def publisher(bridge: EventBridge) -> PublisherClient:
    """A real Pub/Sub publisher client talking plain gRPC to the bridge."""
    channel = grpc.insecure_channel(bridge.address)
    return PublisherClient(transport=PublisherGrpcTransport(channel=channel))


def test_bridge_delivers_publish_as_binary_cloud_event(receiver: Receiver) -> None:
    with EventBridge(receiver.url, retry=FAST_RETRY) as bridge:
        answer = publisher(bridge).publish(
            topic=TOPIC, messages=[PubsubMessage(**finalize_message())]
        )
        [(headers, body)] = receiver.wait_for(1)

    event = from_http(headers, body)
    assert headers["content-type"].startswith("application/json")
    assert event["specversion"] == "1.0"
    assert event["type"] == FINALIZED
    assert event["id"] == answer.message_ids[0]
    assert event["source"] == "//storage.googleapis.com/projects/_/buckets/sluice-landing"
    assert event["subject"] == "objects/incoming/kiva_loans/a.csv"
    assert event["time"] == "2026-11-24T11:56:01.777222Z"
    assert event.data["bucket"] == "sluice-landing"
    assert event.data["name"] == "incoming/kiva_loans/a.csv"
    assert event.data["generation"] == "17"
    assert event.data["metageneration"] == "1"
    assert event.data["size"] == "8"


def test_bridge_answers_one_id_per_message(receiver: Receiver) -> None:
    messages = [PubsubMessage(**finalize_message(generation=str(g))) for g in (1, 2, 3)]

    with EventBridge(receiver.url, retry=FAST_RETRY) as bridge:
        answer = publisher(bridge).publish(topic=TOPIC, messages=messages)
        delivered = receiver.wait_for(3)

    assert len(set(answer.message_ids)) == 3
    assert all(i.isdigit() for i in answer.message_ids)
    assert sorted(json.loads(body)["generation"] for _, body in delivered) == ["1", "2", "3"]


def test_bridge_retries_until_the_target_accepts(serve: Callable[[list[int]], Receiver]) -> None:
    receiver = serve([500, 503])

    with EventBridge(receiver.url, retry=FAST_RETRY) as bridge:
        publisher(bridge).publish(topic=TOPIC, messages=[PubsubMessage(**finalize_message())])
        assert bridge.wait_idle(10)
        delivered = receiver.wait_for(3)

    assert len(delivered) == 3
    assert len({headers["ce-id"] for headers, _ in delivered}) == 1
    assert bridge.delivered == 1


def test_bridge_gives_up_after_max_attempts(
    serve: Callable[[list[int]], Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = serve([500] * 10)
    retry = RetryPolicy(max_attempts=3, initial_backoff=0.02, max_backoff=0.05, attempt_timeout=5)

    with EventBridge(receiver.url, retry=retry) as bridge:
        publisher(bridge).publish(topic=TOPIC, messages=[PubsubMessage(**finalize_message())])
        assert bridge.wait_idle(10)

    assert len(receiver.requests) == 3
    assert bridge.abandoned == 1
    assert "gave up delivering sluice-landing/incoming/kiva_loans/a.csv#17" in caplog.text


def test_bridge_drops_unknown_event_types(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    deleted = finalize_message()
    deleted["attributes"]["eventType"] = "OBJECT_DELETE"
    caplog.set_level(logging.INFO, logger="local.eventarc")

    with EventBridge(receiver.url, retry=FAST_RETRY) as bridge:
        publisher(bridge).publish(topic=TOPIC, messages=[PubsubMessage(**deleted)])
        assert bridge.wait_idle(5)

    assert receiver.requests == []
    assert "dropped OBJECT_DELETE event for sluice-landing/incoming/kiva_loans/a.csv" in caplog.text


def test_bridge_retries_when_target_is_down(receiver: Receiver) -> None:
    receiver.stop()  # every delivery is now a connection error

    with EventBridge(receiver.url, retry=FAST_RETRY) as bridge:
        bridge.enqueue(storage_event("1", finalize_message()["attributes"], b"{}", _now()))
        assert bridge.wait_idle(10)

    assert bridge.abandoned == 1
    assert bridge.delivered == 0


def test_bridge_spools_undelivered_events_for_next_start(
    serve: Callable[[list[int]], Receiver], tmp_path: Path
) -> None:
    receiver = serve([500])
    spool = tmp_path / "bridge-spool.json"
    slow = RetryPolicy(max_attempts=5, initial_backoff=60, attempt_timeout=5)
    bridge = EventBridge(receiver.url, retry=slow, spool=spool).start()
    publisher(bridge).publish(topic=TOPIC, messages=[PubsubMessage(**finalize_message())])
    receiver.wait_for(1)

    bridge.stop()
    spooled = json.loads(spool.read_text())
    with EventBridge(receiver.url, retry=FAST_RETRY, spool=spool):
        delivered = receiver.wait_for(2)

    assert [event["event_key"] for event in spooled] == [
        "sluice-landing/incoming/kiva_loans/a.csv#17"
    ]
    assert delivered[0][1] == delivered[1][1]
    assert not spool.exists()


def _now() -> datetime:
    return datetime.now(UTC)


def test_bridge_refuses_a_port_another_bridge_holds(receiver: Receiver) -> None:
    with EventBridge(receiver.url) as first:
        second = EventBridge(receiver.url, port=first.port)

        with pytest.raises(ConfigError, match="found it taken"):
            second.start()


def test_retry_policy_covering_outlasts_the_claim_lease() -> None:
    lease = 900.0

    policy = RetryPolicy.covering(2 * lease)

    assert policy.total_backoff() >= 2 * lease
    assert policy.max_backoff == RetryPolicy().max_backoff  # same pacing, more attempts
    assert RetryPolicy.covering(0).max_attempts == RetryPolicy().max_attempts
