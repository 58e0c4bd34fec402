"""The demo's process plumbing: a stack for the real API, and signals that stop every child.

:class:`ApiStack` is the embedded stack without the simulator (``letzflow demo --real``). :func:`signals`
turns SIGTERM into :class:`Terminated` so that every ``finally`` runs; while stopping, a second Ctrl-C or
SIGTERM SIGKILLs the children at once (:func:`kill_now`) instead of leaving them half-stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

from workers.stack import EmbeddedStack, RedisServer, S3Server, child_env


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread so every ``finally`` runs)."""


class ApiStack(EmbeddedStack):
    """The embedded Redis, S3 endpoint and workers without the simulator: jobs go to ``api['base_url']``."""

    def __init__(self, api: Mapping[str, str], **options: Any) -> None:
        super().__init__(**options)
        self.api = dict(api)

    @property
    def env(self) -> dict[str, str]:
        assert self.redis and self.s3, "start the stack first"
        env = {
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": f"sqlite:///{self.database_path}",
            "S3_ENDPOINT_URL": self.s3.url,
            "S3_BUCKET": self.bucket,
            "S3_PREFIX": self.prefix,
            "LETZAI_BASE_URL": self.api["base_url"],
            "LETZAI_SIMULATOR": "0",
            "LETZAI_API_KEY": self.api["api_key"],
            "AWS_ACCESS_KEY_ID": S3Server.access_key,
            "AWS_SECRET_ACCESS_KEY": S3Server.secret_key,
            "AWS_DEFAULT_REGION": S3Server.region,
            "PYTHONPATH": child_env()["PYTHONPATH"],
        }
        if self.api.get("organization_id"):
            env["LETZAI_ORGANIZATION_ID"] = self.api["organization_id"]
        return env

    def start(self) -> ApiStack:
        """Start Redis and S3 (no simulator). Raises StackError (what started is stopped)."""
        try:
            self.redis = RedisServer(dir=self.dir / "redis")
            self.s3 = S3Server(dir=self.dir / "s3")
            for service in (self.redis, self.s3):
                service.start(wait=False)
            for service in (self.redis, self.s3):
                service.wait_ready()
            self.s3.create_bucket(self.bucket)
        except BaseException:
            self.stop()
            raise
        return self


Handler = Callable[[int, FrameType | None], Any]


@contextlib.contextmanager
def signals(handler: Handler, *signums: signal.Signals) -> Iterator[None]:
    """Handle ``signums`` with ``handler`` inside the block, then restore the previous handlers (a no-op
    outside the main thread, where Python cannot set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    """The SIGTERM handler: unwind like Ctrl-C does."""
    raise Terminated()


def kill_now(stack: EmbeddedStack) -> None:
    """A second signal while stopping: SIGKILL every child process group at once."""
    for process in stack.processes():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
