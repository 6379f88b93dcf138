"""``sluice up``, ``sluice upload`` and ``sluice replay``: the local stack from the shell.

``up`` runs ``local.stack.LocalStack`` in the foreground until Ctrl-C (or SIGTERM) and stops
it cleanly. ``upload`` and ``replay`` put files through the landing bucket (``local.landing``)
and, with ``--wait``, report each file's outcome; exit codes as ``ingest``, plus 2 when the
wait timed out.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from local import output
from sluice.contracts import ContractSet, load_contract_set
from sluice.errors import ConfigError
from sluice.settings import Settings, load_settings

if TYPE_CHECKING:
    from local.landing import LandingResult
    from local.stack import LocalStack


def cmd_up(args: argparse.Namespace) -> int:
    """sluice up."""
    from local.stack import LocalStack

    settings = load_settings()
    log_to_stderr(settings.home / "logs" / "stack.log")
    # `kill` of `sluice up` must stop the stack as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        stack = LocalStack(settings).start()
        try:
            output.print_table(stack_rows(stack), title="local stack (Ctrl-C stops it)")
            output.console.print(
                "Try: sluice upload data/samples/kiva_loans.csv --dataset kiva_loans --wait"
            )
            while not (dead := stack.dead_services()):
                time.sleep(1.0)
            output.print_error(f"{dead[0].name} exited; its log ends:\n{dead[0].log_tail()}")
            return 1
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave processes behind.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                stack.stop()
            finally:
                signal.signal(signal.SIGINT, previous)
    except KeyboardInterrupt:
        output.console.print("local stack stopped")
        return 0


def stack_rows(stack: LocalStack) -> list[dict[str, str]]:
    """What ``sluice up`` shows: each part of the stack and where to find it."""
    info = stack.endpoints()
    pids = info["services"]
    interval = info["cook_interval_seconds"]
    return [
        {"part": "storage (fake-gcs-server)", "where": info["gcs_endpoint"]},
        {"part": "buckets", "where": f"{info['landing_bucket']}, {info['pipeline_bucket']}"},
        {"part": "Pub/Sub endpoint (event bridge)", "where": info["pubsub_emulator_host"]},
        {"part": "function on_upload", "where": info["on_upload_url"]},
        {"part": "function cook", "where": info["cook_url"]},
        {"part": "dashboard (function dashboard)", "where": info["dashboard_url"]},
        {"part": "cook schedule", "where": f"every {interval} s" if interval > 0 else "off"},
        {"part": "processes", "where": ", ".join(f"{k} {v}" for k, v in pids.items())},
        {"part": "logs", "where": info["logs"]},
    ]


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_upload(args: argparse.Namespace) -> int:
    """sluice upload."""
    from local.landing import UPLOAD_CHUNK_BYTES, LandingResult, upload_file
    from sluice.warehouse import warehouse_class

    settings = _stack_settings()
    contract = load_contract_set(settings.contracts_dir).contract(args.dataset)
    client = _storage_client(settings)
    if args.wait:
        # The outcome's row counts come from the warehouse: import its adapter (DuckDB's
        # takes 0.25 s) before the upload, not once the file has loaded.
        warehouse_class(settings)
    landed = []
    for path in args.paths:
        size = path.stat().st_size if path.is_file() else 0
        if size > UPLOAD_CHUNK_BYTES:
            with transfer_progress(f"uploading {path.name}", total=size) as advance:
                landed.append(upload_file(client, settings, path, contract, advance))
        else:
            landed.append(upload_file(client, settings, path, contract))
    results = [LandingResult(one, "uploaded") for one in landed]
    return _report_landing(client, settings, results, args, title=f"upload {contract.name}")


def cmd_replay(args: argparse.Namespace) -> int:
    """sluice replay."""
    from local.landing import LandingResult, replay_object

    if args.force and not args.prefix:
        raise ConfigError("--force: expected --prefix (one object's replay always re-ingests)")
    if args.prefix:
        return _replay_prefix(args)
    settings = _stack_settings()
    client = _storage_client(settings)
    with output.console.status(f"replaying {args.uri}"):
        landed, outcome = replay_object(settings, args.uri)
    if outcome.status == "ignored":
        raise ConfigError(f"{args.uri} cannot be replayed: {outcome.reason}")
    result = LandingResult(landed, outcome.status, reason=outcome.reason)
    return _report_landing(client, settings, [result], args, title=f"replay {args.uri}")


def _replay_prefix(args: argparse.Namespace) -> int:
    """sluice replay --prefix: every object under it with a progress bar; objects outside
    every contract's prefix are named on stderr and left out."""
    from local.landing import LandingResult, replay_prefix

    settings = _stack_settings()
    client = _storage_client(settings)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=output.errors, transient=True) as bar:
        task = bar.add_task(f"replaying {args.prefix}", total=None)
        done = replay_prefix(
            settings,
            args.prefix,
            force=args.force,
            progress=lambda count, total: bar.update(task, completed=count, total=total),
        )
    results = []
    for landed, outcome in done:
        if outcome.status == "ignored":
            output.print_error(f"{landed.uri} left out: {outcome.reason}")
        else:
            if outcome.status == "duplicate":
                reason = "already ingested (--force ingests it again)"
                results.append(LandingResult(landed, "skipped", reason=reason))
            else:
                results.append(LandingResult(landed, outcome.status, reason=outcome.reason))
    return _report_landing(client, settings, results, args, title=f"replay {args.prefix}")


def landing_status(
    contract_set: ContractSet, limit: int
) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    """``sluice status``'s view of the bucket: the newest landing files with their state,
    and the last reconciliation's counts; (None, None) with neither a local stack nor Google
    credentials to reach a bucket."""
    from google.auth.exceptions import DefaultCredentialsError

    from sluice.cook.reconcile import landing_files, last_run

    settings = _stack_settings()
    try:
        client = _storage_client(settings)
    except ConfigError:
        return None, None
    try:
        files = landing_files(client, settings, contract_set, limit)
    except DefaultCredentialsError:
        return None, None
    return [f.as_dict() for f in files], last_run(client, settings)


def _stack_settings() -> Settings:
    from local.stack import settings_for_stack

    return settings_for_stack(load_settings())


def _storage_client(settings: Settings) -> Any:
    from google.auth.exceptions import DefaultCredentialsError

    from sluice.gcs import storage_client

    try:
        return storage_client(settings)
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"expected a local stack for {settings.home} (start one with `sluice up`) or "
            f"Google credentials, found neither: {exc}"
        ) from exc


def _report_landing(
    client: Any,
    settings: Settings,
    results: list[LandingResult],
    args: argparse.Namespace,
    title: str,
) -> int:
    """Wait for the outcomes if asked, print them; the exit code."""
    from local.landing import FAILED, wait_for_outcomes

    if args.wait:
        with output.console.status(f"waiting for {len(results)} file(s) to load"):
            results = wait_for_outcomes(
                client, settings, [r.landed for r in results], timeout=args.timeout
            )
    rows = [result.as_row() for result in results]
    if args.json:
        output.print_json(rows)
    else:
        output.print_table(rows, title=title)
    unsettled = [r for r in results if args.wait and not r.final]
    if unsettled:
        states = ", ".join(f"{r.landed.uri} is {r.state!r}" for r in unsettled)
        output.print_error(
            f"expected every file loaded or rejected within {args.timeout:g} s, found {states}"
            f" (is `sluice up` running? its logs are in {settings.home / 'logs'})"
        )
        return 2
    return 1 if any(r.state in ("rejected", FAILED) for r in results) else 0


@contextmanager
def transfer_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr; the yielded callable takes the bytes done so far."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, TransferSpeedColumn(), console=output.errors, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


def log_to_stderr(log_file: Path) -> None:
    """Show the stack's own log lines (bridge deliveries, services) on stderr and in a file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in (logging.StreamHandler(), logging.FileHandler(log_file, encoding="utf-8")):
        handler.setFormatter(formatter)
        logging.getLogger("local").addHandler(handler)
    logging.getLogger("local").setLevel(logging.INFO)
