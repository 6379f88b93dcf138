"""Detached pipeline processes on this machine, one per job name, with pid files and logs.

The local stand-in for Dataflow's job registry: ``<SLUICE_HOME>/jobs/<job>.pid`` says which
process runs a job (a live one makes a second start a no-op, the analogue of Dataflow's
409) and ``<SLUICE_HOME>/logs/<job>.log`` holds its output. Processes start in their own
session so a function request that ends (or a Ctrl-C in its terminal) does not kill them.
At most ``MAX_RUNNING_JOBS`` run at once per home (each takes a core and ~300 MB): a start
beyond that waits for a slot, as a Dataflow launch past its quota is held back, so a burst
of uploads queues instead of exhausting the machine's memory.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from sluice.errors import TransientError
from sluice.settings import PREFIX, Settings

LOG = logging.getLogger(__name__)

# Every child this process started, by pid: shared by all LocalJobs instances (a launcher
# is built per event) so a finished child is told from a live one without guessing.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_CHILDREN_LOCK = threading.Lock()
MAX_RUNNING_JOBS = max(2, os.cpu_count() or 1)
"""Pipelines one home runs at once; more would swap or be killed for memory, not go faster."""
SLOT_WAIT_SECONDS = 300.0
"""How long a start waits for a free slot before giving up with a TransientError (retried)."""


class LocalJobs:
    """Start, find and wait for local pipeline processes under ``settings.home``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        home = settings.home.absolute()
        self.jobs_dir = home / "jobs"
        self.logs_dir = home / "logs"

    def pid_file(self, job_name: str) -> Path:
        """Where the pid of ``job_name``'s process is kept."""
        return self.jobs_dir / f"{job_name}.pid"

    def log_file(self, job_name: str) -> Path:
        """Where ``job_name``'s process writes its stdout and stderr."""
        return self.logs_dir / f"{job_name}.log"

    def start(self, job_name: str, argv: list[str], *, cwd: Path) -> int | None:
        """Start ``argv`` as ``job_name``; None when that job already runs here."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with (self.jobs_dir / f"{job_name}.lock").open("w") as lock:
            # Check-then-start must be atomic: two deliveries may race for the same job.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.running_pid(job_name) is not None:
                return None
            with self._free_slot(job_name), self.log_file(job_name).open("ab") as log:
                try:
                    process = subprocess.Popen(
                        argv,
                        cwd=cwd,
                        env=self.environment(),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                except OSError as exc:
                    raise TransientError(f"local job {job_name}: could not start: {exc}") from exc
                with _CHILDREN_LOCK:
                    _CHILDREN[process.pid] = process
                temporary = self.pid_file(job_name).with_suffix(".pid.tmp")
                temporary.write_text(f"{process.pid}\n", encoding="ascii")
                temporary.replace(self.pid_file(job_name))
        # Reap the child as soon as it exits, so a finished job never looks alive (zombie).
        threading.Thread(
            target=_reap, args=(job_name, process), name=f"reap-{job_name}", daemon=True
        ).start()
        return process.pid

    @contextmanager
    def _free_slot(self, job_name: str) -> Iterator[None]:
        """Hold the home's slot lock while fewer than MAX_RUNNING_JOBS jobs run; wait for it."""
        deadline = time.monotonic() + SLOT_WAIT_SECONDS
        while True:
            with (self.jobs_dir / "slots.lock").open("w") as slots:
                # Count-then-start is atomic across threads and processes; the new pid file
                # is written before the lock is released, so the next count includes it.
                fcntl.flock(slots, fcntl.LOCK_EX)
                running = len(self.running_jobs())
                if running < MAX_RUNNING_JOBS:
                    yield
                    return
            if time.monotonic() > deadline:
                raise TransientError(
                    f"local job {job_name}: expected fewer than {MAX_RUNNING_JOBS} pipelines"
                    f" running, found {running} for {SLOT_WAIT_SECONDS:g} s; retry later"
                )
            time.sleep(0.25)

    def running_pid(self, job_name: str) -> int | None:
        """The pid of ``job_name``'s live process, or None."""
        try:
            pid = int(self.pid_file(job_name).read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if is_job_alive(pid, job_name) else None

    def running_jobs(self) -> dict[str, int]:
        """Every live job under this home, name -> pid (the stack stops them at shutdown)."""
        names = sorted(path.stem for path in self.jobs_dir.glob("*.pid"))
        live = {name: self.running_pid(name) for name in names}
        return {name: pid for name, pid in live.items() if pid is not None}

    def wait(self, job_name: str, timeout: float | None = None) -> int:
        """Wait for ``job_name``'s process (started by this process); its exit code."""
        pid = int(self.pid_file(job_name).read_text(encoding="ascii").strip())
        with _CHILDREN_LOCK:
            process = _CHILDREN.get(pid)
        if process is None:
            raise LookupError(
                f"local job {job_name}: expected a child of this process, found pid {pid}"
            )
        return process.wait(timeout)

    def environment(self) -> dict[str, str]:
        """This process's environment with the settings as ``SLUICE_*`` (so the child sees
        exactly these settings, overrides included) and the GCS emulator for Beam."""
        env = dict(os.environ)
        env.update(settings_environ(self._settings))
        if self._settings.gcs_endpoint:
            env["STORAGE_EMULATOR_HOST"] = self._settings.gcs_endpoint
        env["PYTHONUNBUFFERED"] = "1"  # the log file shows progress as it happens
        return env


def settings_environ(settings: Settings) -> dict[str, str]:
    """Every set field as its ``SLUICE_*`` variable; paths absolute (the child's cwd differs)."""
    env = {}
    for field in fields(settings):
        value = getattr(settings, field.name)
        if value is None:
            continue
        env[PREFIX + field.name.upper()] = str(
            value.absolute() if isinstance(value, Path) else value
        )
    return env


def is_job_alive(pid: int, job_name: str) -> bool:
    """True when ``pid`` is a live process running ``job_name`` (not a zombie, not a reuse)."""
    with _CHILDREN_LOCK:
        child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else: assume it is the job
    proc = Path("/proc") / str(pid)
    if not proc.is_dir():
        return True  # no procfs (macOS): the signal probe is all there is
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and job_name.encode() in cmdline


def _reap(job_name: str, process: subprocess.Popen[bytes]) -> None:
    code = process.wait()
    level = logging.INFO if code == 0 else logging.ERROR
    LOG.log(level, "local job %s (pid %d) exited with code %d", job_name, process.pid, code)
