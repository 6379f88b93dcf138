"""The ``sluice`` command line (also ``python -m local.cli``).

    sluice generate DATASET --rows N --out PATH [--seed S] [--gzip] [--dirty F]
    sluice ingest PATH... --dataset NAME [--json]
    sluice cook [--json]
    sluice check
    sluice query "SQL" [--json]
    sluice status [--json] [--limit N]
    sluice up
    sluice upload PATH... --dataset NAME [--wait] [--timeout S] [--json]
    sluice replay gs://BUCKET/OBJECT [--wait] [--timeout S] [--json]
    sluice replay --prefix gs://BUCKET/PREFIX [--force] [--wait] [--timeout S] [--json]
    sluice demo [--direct]

Settings come from ``SLUICE_*`` environment variables (see ``sluice.settings``). ``upload``
and ``replay`` talk to the local stack that ``sluice up`` runs for the same SLUICE_HOME
unless SLUICE_GCS_ENDPOINT is set (no stack and no endpoint: Google Cloud Storage). Errors
are one line on stderr and exit code 2 (also a ``--wait`` that timed out); ``ingest``,
``upload`` and ``replay`` exit 1 when any file was rejected or its pipeline failed, ``cook``
when a summary failed. Ctrl-C exits 130 and SIGTERM 143, with one line (``local.interrupts``;
``up`` stops its stack and exits 0). A broken contract file puts only its own dataset out of
service: ``status`` and ``cook`` list it; ``check`` prints every broken contract and SQL file
and exits 2 when there is one.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from local import interrupts, output, stack_commands
from local.arguments import OneLineArgumentParser, count, seconds
from sluice.contracts import load_contract_set
from sluice.errors import SluiceError
from sluice.settings import load_settings
from sluice.warehouse import connected_warehouse, ensure_usable_tables

STATUS_COLUMNS = (
    "dataset", "source_uri", "source_generation", "status", "rows_in", "rows_loaded",
    "rows_dead", "reason", "finished_at",
)  # fmt: skip
"""The ingestion-log columns ``sluice status`` shows."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = OneLineArgumentParser(prog="sluice", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = commands.add_parser("generate", help="write a realistic, nasty sample file")
    gen.add_argument("dataset")
    gen.add_argument("--rows", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--gzip", action="store_true", help="gzip the output (also if .gz)")
    gen.add_argument("--dirty", type=float, default=0.0, help="share of contract-breaking rows")

    ingest = commands.add_parser("ingest", help="validate, run the pipeline, load")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--dataset", required=True)
    ingest.add_argument("--json", action="store_true")

    cook = commands.add_parser("cook", help="rebuild every cooked summary table")
    cook.add_argument("--json", action="store_true")

    commands.add_parser(
        "check", help="check every contract and SQL file; one line per problem, exit 2 if any"
    )

    query = commands.add_parser("query", help="run BigQuery-dialect SQL on the warehouse")
    query.add_argument("sql")
    query.add_argument("--json", action="store_true")

    status = commands.add_parser(
        "status", help="show the ingestion log, newest first, and the open data alerts"
    )
    status.add_argument("--json", action="store_true")
    status.add_argument("--limit", type=count, default=50, help="rows shown (50)")

    commands.add_parser("up", help="run the local stack (storage, events, functions) until Ctrl-C")

    upload = commands.add_parser("upload", help="upload files to the landing bucket")
    upload.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    upload.add_argument("--dataset", required=True)
    _add_wait_arguments(upload)

    replay = commands.add_parser(
        "replay", help="re-ingest a landing object (rows replaced), or backfill a prefix"
    )
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("uri", nargs="?", metavar="gs://BUCKET/OBJECT")
    target.add_argument("--prefix", metavar="gs://BUCKET/PREFIX", help="every object under it")
    replay.add_argument(
        "--force", action="store_true", help="with --prefix: re-ingest objects already ingested"
    )
    _add_wait_arguments(replay)

    demo = commands.add_parser("demo", help="samples through the local stack, cook, summaries")
    demo.add_argument("--direct", action="store_true", help="in this process, without the stack")
    return parser


def _add_wait_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--wait", action="store_true", help="wait until loaded or rejected")
    command.add_argument("--timeout", type=seconds, default=600.0, help="seconds --wait waits")
    command.add_argument("--json", action="store_true")


def main(argv: Sequence[str] | None = None) -> None:
    """Run one sub-command and exit with its code: 2 for an error (one line on stderr), 130
    for Ctrl-C, 143 for SIGTERM.

    ``argv`` None is this process's own command line: then a signal outside the command ends
    the process at once the same way, and the process ends without Python's shutdown
    (``local.interrupts.exit_now``). ``sluice up`` stops its stack on either signal itself.
    """
    args = build_parser().parse_args(argv)
    own_process = argv is None and args.command != "up"
    if own_process:
        interrupts.exit_at_once_on_signals()
    code = run_command(args)
    if own_process:
        interrupts.exit_now(code)
    sys.exit(code)


def run_command(args: argparse.Namespace) -> int:
    """The sub-command's exit code, or 2 after printing its error; a stop signal ends the
    process here (``local.interrupts``)."""
    guard = nullcontext() if args.command == "up" else interrupts.stopping_on_signals()
    try:
        with guard:
            return COMMANDS[args.command](args)
    except SluiceError as exc:
        output.print_error(one_line(str(exc)))
        return 2
    except KeyboardInterrupt:  # ours, or a Ctrl-C that came before our handler
        interrupts.exit_stopped(interrupts.received() or interrupts.Interrupted(signal.SIGINT))
    finally:
        # A stop signal decides how the command ends, whatever the code it interrupted
        # made of its exception: Beam's runner may wrap it in its own, or drop it.
        if (stop := interrupts.received()) is not None:
            interrupts.exit_stopped(stop)


def one_line(message: str) -> str:
    """``message`` on one line: a database's multi-line error (a caret under the SQL) too."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def cmd_generate(args: argparse.Namespace) -> int:
    """sluice generate."""
    from local.generate import generate

    with output.progress(f"generating {args.dataset}", total=args.rows) as advance:
        result = generate(
            args.dataset,
            args.rows,
            args.out,
            seed=args.seed,
            gzip=args.gzip,
            dirty=args.dirty,
            progress=advance,
        )
    output.console.print(
        f"wrote {result.rows:,} rows ({result.bytes / 1e6:,.1f} MB) to {result.path}"
    )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """sluice ingest."""
    from local.ingest import check_warehouse_opens, ingest_file

    settings = load_settings()
    contract = load_contract_set(settings.contracts_dir).contract(args.dataset)
    check_warehouse_opens(settings)
    outcomes = []
    for path in args.paths:
        with output.console.status(f"ingesting {path} as {contract.name}"):
            outcomes.append(ingest_file(path, contract, settings))
    rows = [
        {
            "file": str(o.path),
            "status": o.record.status,
            "rows_in": o.record.rows_in,
            "rows_loaded": o.record.rows_loaded,
            "rows_dead": o.record.rows_dead,
            "reason": o.record.reason,
        }
        for o in outcomes
    ]
    if args.json:
        output.print_json(rows)
    else:
        output.print_table(rows, title=f"ingest {contract.name}")
    return 1 if any(o.record.status == "rejected" for o in outcomes) else 0


def cmd_cook(args: argparse.Namespace) -> int:
    """sluice cook."""
    from sluice.cook.summaries import cook_and_check_alerts

    settings = load_settings()
    with connected_warehouse(settings) as warehouse, output.console.status("cooking summaries"):
        report = cook_and_check_alerts(warehouse, settings)
    answer = report.as_dict()
    if args.json:
        output.print_json(answer)
    else:
        rows = [
            {"table": t.table, "rows": t.rows, "seconds": round(t.seconds, 3)}
            for t in report.tables
        ]
        output.print_table(rows, title="cooked tables")
        if report.failed:
            output.print_table(answer["failed"], title="failed summaries")
        if report.skipped:
            output.print_table(answer["skipped"], title="skipped summaries")
        _print_broken_contracts(answer["broken_contracts"])
        output.print_table(_alert_rows(answer["alerts"]), title="open alerts")
    return 1 if report.failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    """sluice check: every contract and SQL file, one line per problem; exit 2 if any."""
    from sluice.cook.summaries import plan_summaries
    from sluice.errors import ContractError

    settings = load_settings()
    problems: list[str] = []
    try:
        problems += [str(broken) for broken in load_contract_set(settings.contracts_dir).broken]
    except ContractError as exc:  # no contract file at all
        problems.append(str(exc))
    try:
        problems += [str(failure) for failure in plan_summaries(settings.sql_dir)[1]]
    except OSError as exc:
        problems.append(f"{settings.sql_dir}: cannot read the SQL files: {exc}")
    for problem in problems:
        output.console.print(problem, markup=False, highlight=False, soft_wrap=True)
    if not problems:
        output.console.print(
            f"ok: {settings.contracts_dir} and {settings.sql_dir}", markup=False, soft_wrap=True
        )
    return 2 if problems else 0


def cmd_query(args: argparse.Namespace) -> int:
    """sluice query."""
    settings = load_settings()
    with connected_warehouse(settings) as warehouse:
        rows = warehouse.query(args.sql)
    if args.json:
        output.print_json(rows)
    else:
        output.print_table(rows)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """sluice status."""
    settings = load_settings()
    with connected_warehouse(settings) as warehouse:
        # A contract its table cannot take is listed as broken, like a bad file.
        contract_set = ensure_usable_tables(warehouse, load_contract_set(settings.contracts_dir))
        records = warehouse.ingestion_log(args.limit)
        alerts = warehouse.open_alerts()
    rows = [{key: record.as_dict()[key] for key in STATUS_COLUMNS} for record in records]
    broken = [b.as_dict() for b in contract_set.broken]
    files, reconciled = stack_commands.landing_status(contract_set, args.limit)
    if args.json:
        output.print_json(
            {"ingestion_log": rows, "alerts": alerts, "broken_contracts": broken}
            | {"files": files, "reconcile": reconciled}
        )
    else:
        output.print_table(rows, title="ingestion log")
        _print_broken_contracts(broken)
        output.print_table(_alert_rows(alerts), title="open alerts (as of the last cook)")
        if files is None:
            output.console.print("landing files: no local stack and no Google credentials")
        else:
            output.print_table(files, title="landing files, newest first")
            output.console.print(f"last reconciliation: {reconciled or 'none yet'}")
    return 0


def _print_broken_contracts(broken: list[dict[str, str]]) -> None:
    """The broken contract files, when there are any (their datasets are out of service)."""
    if broken:
        output.print_table(broken, title="broken contracts (their datasets are skipped)")


def _alert_rows(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The columns of an alert a person reads first (the message holds the numbers)."""
    return [
        {key: alert[key] for key in ("dataset", "alert", "rule", "message", "opened_at")}
        for alert in alerts
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    """sluice demo."""
    from local.demo import run_demo

    return run_demo(load_settings(), direct=args.direct)


COMMANDS = {
    "generate": cmd_generate,
    "ingest": cmd_ingest,
    "cook": cmd_cook,
    "check": cmd_check,
    "query": cmd_query,
    "status": cmd_status,
    "up": stack_commands.cmd_up,
    "upload": stack_commands.cmd_upload,
    "replay": stack_commands.cmd_replay,
    "demo": cmd_demo,
}

if __name__ == "__main__":
    main()
