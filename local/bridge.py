"""The event bridge: fake-gcs-server's Pub/Sub publishes in, Eventarc's CloudEvents out.

No Eventarc emulator exists, so the local stack runs this instead. fake-gcs-server (started
with ``-event.pubsub-*`` flags and ``PUBSUB_EMULATOR_HOST`` pointing here) calls the one RPC
``google.pubsub.v1.Publisher/Publish`` for every object event. The bridge answers at once
with message ids and queues each finalize as the binary-mode CloudEvent Eventarc would send
(built with the cloudevents SDK by ``local.eventarc``), POSTed to the ``on_upload``
function by a few worker threads, so a slow pipeline launch never blocks a publish. Like
Eventarc it delivers at least once: a non-2xx answer or a connection error is retried with
exponential backoff, up to ``RetryPolicy.max_attempts``. Other event types have no trigger
and are dropped with a log line. Events still queued when the bridge stops go to a spool
file and are delivered on the next start.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.pubsub_v1.types import PublishRequest, PublishResponse

from local.eventarc import FINALIZED, StorageEvent, storage_event
from sluice.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Eventarc-like delivery retries, bounded for a laptop (see ``covering``)."""

    max_attempts: int = 10
    """Deliveries tried per event before it is given up (logged as an error)."""
    initial_backoff: float = 1.0
    """Seconds before the first retry; each later retry waits ``multiplier`` times longer."""
    max_backoff: float = 30.0
    """Longest wait between two attempts, in seconds."""
    multiplier: float = 2.0
    """Growth of the wait from one retry to the next."""
    attempt_timeout: float = 540.0
    """Seconds one delivery may take (an event-driven function's longest timeout)."""

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))

    def total_backoff(self) -> float:
        """Seconds of waiting between the first and the last attempt."""
        return sum(self.backoff(attempt) for attempt in range(1, self.max_attempts))

    @classmethod
    def covering(cls, seconds: float) -> RetryPolicy:
        """The default policy with enough attempts that retries go on for ``seconds``.

        on_upload answers 503 while another delivery holds the event's claim; if that
        holder crashed, only a redelivery after the claim's lease recovers the file, so
        the stack retries for longer than the lease.
        """
        policy = cls()
        while policy.total_backoff() < seconds:
            policy = dataclasses.replace(policy, max_attempts=policy.max_attempts + 1)
        return policy


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    event: StorageEvent = field(compare=False)
    attempt: int = field(compare=False, default=1)


class EventBridge:
    """A Pub/Sub ``Publish`` endpoint that delivers storage events to one CloudEvent URL."""

    def __init__(
        self,
        target_url: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 4,
        retry: RetryPolicy | None = None,
        spool: Path | None = None,
    ) -> None:
        self.target_url = target_url
        self.host = host
        self.port = port
        self.retry = retry or RetryPolicy()
        self.spool = spool
        self.delivered = 0
        """Events the target acknowledged with a 2xx."""
        self.abandoned = 0
        """Events given up after ``retry.max_attempts`` failed deliveries."""
        self._workers = workers
        self._queue: list[_Delivery] = []
        self._in_flight = 0
        self._seq = itertools.count()
        self._changed = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC endpoint, the value of ``PUBSUB_EMULATOR_HOST``."""
        return f"{self.host}:{self.port}"

    def start(self) -> EventBridge:
        """Serve Publish, start the delivery workers and re-queue any spooled events."""
        handler = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Publisher",
            {
                "Publish": grpc.unary_unary_rpc_method_handler(
                    self._publish,
                    request_deserializer=PublishRequest.deserialize,
                    response_serializer=PublishResponse.serialize,
                )
            },
        )
        # Without this, gRPC sets SO_REUSEPORT: a second bridge would share the port silently.
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
        )
        self._server.add_generic_rpc_handlers((handler,))
        try:
            self.port = self._server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as exc:
            raise ConfigError(
                f"event bridge: expected to listen on {self.address}, found it taken: {exc}"
            ) from exc
        self._server.start()
        for number in range(self._workers):
            thread = threading.Thread(
                target=self._deliver_forever, name=f"event-bridge-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        for event in self._read_spool():
            self.enqueue(event)
        log.info("event bridge on %s delivering to %s", self.address, self.target_url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, let deliveries in flight end (up to ``timeout``), spool the rest."""
        if self._server is not None:
            self._server.stop(grace=1.0).wait(timeout)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._write_spool()

    def __enter__(self) -> EventBridge:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def enqueue(self, event: StorageEvent) -> None:
        """Queue one event for delivery now."""
        with self._changed:
            heapq.heappush(self._queue, _Delivery(time.monotonic(), next(self._seq), event))
            self._changed.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or in flight; False when ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def _publish(self, request: PublishRequest, context: grpc.ServicerContext) -> PublishResponse:
        received_at = datetime.now(UTC)
        ids = []
        for message in request.messages:
            # Pub/Sub ids are decimal strings; the publisher leaves message_id empty.
            message_id = str(uuid.uuid4().int >> 64)
            ids.append(message_id)
            event = storage_event(message_id, dict(message.attributes), message.data, received_at)
            if event is not None:
                log.info("queued %s for %s (message %s)", FINALIZED, event.event_key, message_id)
                self.enqueue(event)
        return PublishResponse(message_ids=ids)

    def _deliver_forever(self) -> None:
        while True:
            with self._changed:
                delivery = self._next_due()
                if delivery is None:
                    return
                self._in_flight += 1
            ok = self._post(delivery)
            with self._changed:
                self._in_flight -= 1
                if ok:
                    self.delivered += 1
                elif self._stopping:
                    heapq.heappush(self._queue, delivery)  # spooled for the next start
                elif delivery.attempt >= self.retry.max_attempts:
                    self.abandoned += 1
                    log.error(
                        "gave up delivering %s after %d attempts; re-ingest it with "
                        "`sluice replay gs://%s`",
                        delivery.event.event_key,
                        delivery.attempt,
                        delivery.event.event_key.split("#")[0],
                    )
                else:
                    delivery.due = time.monotonic() + self.retry.backoff(delivery.attempt)
                    delivery.attempt += 1
                    heapq.heappush(self._queue, delivery)
                self._changed.notify_all()

    def _next_due(self) -> _Delivery | None:
        """The next delivery whose time has come (holding the lock); None when stopping."""
        while not self._stopping:
            now = time.monotonic()
            if self._queue and self._queue[0].due <= now:
                return heapq.heappop(self._queue)
            self._changed.wait(self._queue[0].due - now if self._queue else None)
        return None

    def _post(self, delivery: _Delivery) -> bool:
        event = delivery.event
        request = urllib.request.Request(
            self.target_url, data=event.body, headers=event.headers, method="POST"
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.retry.attempt_timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            log.warning(
                "delivery %d of %s failed: %s",
                delivery.attempt,
                event.event_key,
                exc,
                exc_info=False,
            )
            return False
        seconds = time.monotonic() - started
        if 200 <= status < 300:
            log.info(
                "delivered %s (attempt %d, %.2f s)", event.event_key, delivery.attempt, seconds
            )
            return True
        log.warning(
            "delivery %d of %s: expected a 2xx answer, found %d",
            delivery.attempt,
            event.event_key,
            status,
        )
        return False

    def _read_spool(self) -> list[StorageEvent]:
        if self.spool is None or not self.spool.is_file():
            return []
        events = [StorageEvent.from_json(raw) for raw in json.loads(self.spool.read_text())]
        self.spool.unlink()
        if events:
            log.info("re-queued %d undelivered event(s) from %s", len(events), self.spool)
        return events

    def _write_spool(self) -> None:
        with self._changed:
            pending = [delivery.event.to_json() for delivery in sorted(self._queue)]
            self._queue.clear()
        if self.spool is None or not pending:
            return
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        self.spool.write_text(json.dumps(pending, ensure_ascii=False))
        log.info("spooled %d undelivered event(s) to %s", len(pending), self.spool)
