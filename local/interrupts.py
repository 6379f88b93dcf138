"""How a ``sluice`` command stops on Ctrl-C or SIGTERM: one line, exit 128 + the signal.

Both signals take one path: ``Interrupted`` (a ``KeyboardInterrupt``) is raised in the main
thread, so every ``finally`` on the way out runs (an ingest removes its staged Parquet
there), and the exit code is what a shell reports for the signal:
130 for SIGINT, 143 for SIGTERM. The signal is also remembered, so a library that swallows
the exception cannot turn a stopped command into a finished one.

From the first signal on, what the stopped work says on its way down is dropped: the
command's one line is the news. The process then ends with ``os._exit``: an ingest parses on
worker threads of this process that may be inside Arrow, where no exception reaches them,
and Python's own shutdown would end those threads in native code, which aborts the process
(SIGABRT, exit 134). An ingest first lets its workers finish the chunk in hand (under a
second) and removes its staging; a load under way is in the main thread's transaction,
which the signal rolls back unless it has committed. Either way the warehouse holds all of
the file's rows or none."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import NoReturn

from local import output

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a command."""

_received: list[int] = []
"""The signals received so far (the first one decides the exit code)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM reached the command."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum

    @property
    def message(self) -> str:
        """The one line the command prints."""
        return "interrupted" if self.signum == signal.SIGINT else "terminated (SIGTERM)"


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM raise ``Interrupted`` in the main thread; the
    handlers before it come back after it (a test runs commands in its own process)."""
    _received.clear()
    if not _in_main_thread():  # only the main thread receives signals and sets handlers
        yield
        return
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_interrupted(signum: int, _frame: FrameType | None) -> NoReturn:
    if not _received:
        logging.disable(logging.CRITICAL)
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (open until the process ends)
    _received.append(signum)
    raise Interrupted(signum)


def exit_at_once_on_signals() -> None:
    """From now on (the command is done, Python shuts down) SIGINT and SIGTERM end the process
    at once, with their one line and exit code: there is nothing left to clean up."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _exit_stopped_by)


def _exit_stopped_by(signum: int, _frame: FrameType | None) -> NoReturn:
    exit_stopped(Interrupted(signum))


def received() -> Interrupted | None:
    """The first stop signal received, even when its exception was swallowed; else None."""
    return Interrupted(_received[0]) if _received else None


@contextmanager
def held() -> Iterator[None]:
    """Ignore stop signals inside the block: a second Ctrl-C must not cut a cleanup short."""
    if not _in_main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def exit_stopped(stop: Interrupted) -> NoReturn:
    """Print the stop's one line and end the process with its exit code (``exit_now``)."""
    sys.stderr = sys.__stderr__
    output.print_error(stop.message)
    exit_now(stop.exit_code)


def exit_now(code: int) -> NoReturn:
    """Flush stdout and stderr and end the process without Python's shutdown.

    Stopped, the shutdown would abort inside a worker thread's native code (see above);
    finished, it is half a second after an ingest in which a signal kills the process
    without its one line (Python has put back the default handlers by then). Nothing of
    ours waits for it: every command closes what it opened before it returns."""
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe or stream: nothing more to say
            stream.flush()
    os._exit(code)
