"""Child processes of the local stack: started in their own session, logged to a file, stopped
for sure.

Each service runs in a new session (so a Ctrl-C in the terminal reaches only ``sluice up``,
which then stops the services in order) and its whole process group is signalled on stop:
SIGTERM, a grace period, then SIGKILL, so no grandchild (a gunicorn worker) outlives it.
When ``sluice up`` dies without stopping them (SIGKILL, a crash), Linux sends each service
SIGTERM itself (the parent-death signal), so nothing is left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sluice.errors import TransientError

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
"""Linux's prctl option: the signal a process gets when the thread that started it ends."""


class Service:
    """One long-running child process with its log file."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log_file: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.stopped = False

    @property
    def pid(self) -> int | None:
        """The process id once started."""
        return self.process.pid if self.process else None

    def start(self) -> Service:
        """Start the process, its output appended to ``log_file``."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log_handle:
            self.process = subprocess.Popen(
                dying_with(os.getpid(), self.argv),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("started %s (pid %d), log %s", self.name, self.process.pid, self.log_file)
        return self

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; reap the process."""
        if self.process is None or self.stopped:
            return
        self.stopped = True  # a second stop must not signal a group id the OS may reuse
        stop_process_group(self.process.pid, grace, self.process)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the log, for an error message."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until_answering(self, url: str, timeout: float) -> None:
        """Block until ``url`` answers HTTP at all (any status); raise if the process died."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise TransientError(
                    f"{self.name}: expected it to serve {url}, found it exited with code "
                    f"{self.process.returncode if self.process else '?'}; its log "
                    f"({self.log_file}) ends:\n{self.log_tail()}"
                )
            if http_answers(url):
                return
            if time.monotonic() > deadline:
                raise TransientError(
                    f"{self.name}: expected an answer from {url} within {timeout:g} s, found "
                    f"none; its log ({self.log_file}) ends:\n{self.log_tail()}"
                )
            time.sleep(0.1)


def dying_with(parent: int, argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when ``parent`` ends: on Linux, a short Python
    prelude asks for the parent-death signal (``prctl``), exits if the parent is already
    gone, then ``exec``s ``argv`` (the signal request survives ``exec``). Elsewhere ``argv``
    as it is: there a stop is the only way.

    A prelude rather than ``preexec_fn``: that makes ``subprocess`` fork the whole
    ``sluice up`` process, whose gRPC threads (the event bridge) abort a forked child. The
    signal comes when the *thread* that started the child ends, so services are started by
    the thread that lives as long as the stack (``sluice up``'s main thread).
    """
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(parent), *argv]


_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None).prctl({PR_SET_PDEATHSIG}, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def http_answers(url: str, timeout: float = 2.0) -> bool:
    """True when something answers HTTP at ``url`` (an error status counts as an answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def stop_process_group(
    pid: int, grace: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Stop the process group led by ``pid``: SIGTERM, then SIGKILL after ``grace`` seconds."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid, process) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid, process):
        log.warning("pid %d ignored SIGTERM for %g s: killing its process group", pid, grace)
    # The group may hold children that outlived the leader: kill whatever is left.
    _signal_group(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _alive(pid: int, process: subprocess.Popen[bytes] | None) -> bool:
    if process is not None:
        return process.poll() is None
    return pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a live process (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return True  # no procfs: the signal probe is all there is
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
