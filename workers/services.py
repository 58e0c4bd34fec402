"""The embedded services, one class each: redis-server, moto's S3 server, the LetzAI simulator, a Celery
worker and beat. :class:`workers.stack.EmbeddedStack` starts them side by side."""

from __future__ import annotations

import shutil
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import redis
import requests

from workers.stack_processes import (
    HOST,
    Service,
    StackError,
    child_env,
    find_redis_server,
)


class RedisServer(Service):
    """A real redis-server on 127.0.0.1; no persistence unless ``persist`` (append-only file in ``dir``)."""

    name = "redis"

    def __init__(
        self,
        port: int | None = None,
        dir: str | Path | None = None,
        *,
        persist: bool = False,
        executable: str | None = None,
    ) -> None:
        super().__init__(port, dir)
        if self.port == 6379:
            raise StackError("refusing to run a test redis-server on 6379, the default of real installations")
        self.persist = persist
        self.executable = executable or find_redis_server()

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def command(self) -> list[str]:
        options = (
            f"--port {self.port} --bind {HOST} --dbfilename dump.rdb --daemonize no --protected-mode yes"
        )
        persist = ["--appendonly", "yes" if self.persist else "no"]
        return [
            self.executable,
            *options.split(),
            *persist,
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--logfile",
            "",
        ]

    def client(self) -> redis.Redis:
        """A client for this server (2 s timeouts)."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def is_ready(self) -> bool:
        with self.client() as client:
            return bool(client.ping())

    def restart(self, keep_data: bool = True) -> None:
        """Stop and start on the same port; ``keep_data`` saves a snapshot first, else the data is wiped."""
        if keep_data and self.alive:
            with self.client() as client:
                client.save()
        self.stop()
        if not keep_data:
            for name in ("dump.rdb", "appendonly.aof"):
                (self.dir / name).unlink(missing_ok=True)
            shutil.rmtree(self.dir / "appendonlydir", ignore_errors=True)
        self.start()


class S3Server(Service):
    """moto's S3 server (``python -m moto.server``); state lives in memory (see the module docstring)."""

    name = "s3"
    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    def __init__(self, port: int | None = None, dir: str | Path | None = None) -> None:
        super().__init__(port, dir)
        self.buckets: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)]

    def is_ready(self) -> bool:
        requests.get(f"{self.url}/moto-api/", timeout=1)
        return True

    def after_ready(self) -> None:
        for bucket in self.buckets:
            self.client().create_bucket(Bucket=bucket)

    def client(self, **timeouts: Any) -> Any:
        """A boto3 S3 client for this endpoint with the test credentials (``timeouts`` to make_s3_client)."""
        import boto3

        from storage.media import make_s3_client

        session = boto3.session.Session(
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key, region_name=self.region
        )
        return make_s3_client(self.url, session=session, **timeouts)

    def create_bucket(self, name: str) -> None:
        """Create ``name`` now, and again after every restart."""
        self.client().create_bucket(Bucket=name)
        if name not in self.buckets:
            self.buckets.append(name)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang and clients time out; objects are kept."""
        if self.process is not None:
            self.process.send(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused server (SIGCONT)."""
        if self.process is not None:
            self.process.send(signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> None:
        self.resume()
        super().stop(timeout)


class SimulatorServer(Service):
    """The LetzAI simulator (``python -m letzai.sim``) with the given knobs as command-line flags."""

    name = "sim"

    def __init__(self, port: int | None = None, dir: str | Path | None = None, **knobs: Any) -> None:
        super().__init__(port, dir)
        self.knobs = knobs

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        flags: list[str] = []
        for knob, value in self.knobs.items():
            flag = "--" + knob.replace("_", "-")
            if isinstance(value, bool):
                flags += [flag] if value else []
            elif isinstance(value, list | tuple):
                flags += [flag, ",".join(str(v) for v in value)]
            else:
                flags += [flag, "none" if value is None else str(value)]
        return [sys.executable, "-m", "letzai.sim", "--host", HOST, "--port", str(self.port), *flags]

    def is_ready(self) -> bool:
        return requests.get(f"{self.url}/_sim/counters", params={"by_job": 0}, timeout=1).ok

    def counters(self, by_job: bool = False) -> dict[str, Any]:
        """The simulator's counters (``GET /_sim/counters``)."""
        response = requests.get(f"{self.url}/_sim/counters", params={"by_job": int(by_job)}, timeout=5)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs live (``POST /_sim/config``); returns the new config. Raises StackError."""
        response = requests.post(f"{self.url}/_sim/config", json=knobs, timeout=5)
        if response.status_code != 200:
            raise StackError(f"simulator rejected {knobs}: HTTP {response.status_code} {response.text[:300]}")
        self.knobs.update(knobs)
        return response.json()  # type: ignore[no-any-return]


class CeleryWorker(Service):
    """``celery -A workers.app worker`` with ``env``; ready once its log says ``ready.`` or it answers a ping.

    :meth:`stop` is a warm shutdown (SIGTERM: running tasks finish), :meth:`kill` a crash (SIGKILL to the
    whole group, pool children included).
    """

    ready_timeout = 60.0

    def __init__(
        self,
        env: Mapping[str, str],
        name: str = "worker",
        queues: str = "submit,poll,media,batch",
        concurrency: int = 4,
        pool: str = "prefork",
        extra_args: Sequence[str] = (),
        dir: str | Path | None = None,
        app: str = "workers.app",
        loglevel: str = "INFO",
    ) -> None:
        self.name = name
        super().__init__(0, dir)
        self.env = dict(env)
        options = f"-n {name}@%h -Q {queues} -c {concurrency} --pool {pool} --loglevel {loglevel}"
        self.argv = [sys.executable, "-m", "celery", "-A", app, "worker", *options.split(), *extra_args]
        self.nodename = f"{name}@{socket.gethostname()}"
        self._app = app
        self._last_ping = 0.0

    def command(self) -> list[str]:
        return list(self.argv)

    def environment(self) -> dict[str, str]:
        return child_env(self.env)

    def is_ready(self) -> bool:
        assert self.process is not None
        if " ready." in self.process.log_text(20_000):
            return True
        if time.monotonic() - self._last_ping < 1.0 or "REDIS_URL" not in self.env:
            return False
        self._last_ping = time.monotonic()
        from celery import Celery

        probe = Celery(broker=self.env["REDIS_URL"])
        try:
            return bool(probe.control.ping(destination=[self.nodename], timeout=0.5))
        finally:
            probe.close()

    def wait_ready(self, timeout: float | None = None) -> None:
        assert self.process is not None, "start() first"
        self.process.wait_ready(self.is_ready, timeout or self.ready_timeout, interval=0.1)


class CeleryBeat(Service):
    """``celery -A workers.app beat`` with ``env`` and its schedule file in ``dir``."""

    name = "beat"

    def __init__(
        self, env: Mapping[str, str], dir: str | Path | None = None, app: str = "workers.app"
    ) -> None:
        super().__init__(0, dir)
        self.env = dict(env)
        self.app = app
        self._launched = 0.0

    def command(self) -> list[str]:
        self._launched = time.monotonic()
        schedule = str(self.dir / "celerybeat-schedule")
        return [sys.executable, "-m", "celery", "-A", self.app, "beat", "-s", schedule, "--loglevel", "INFO"]

    def environment(self) -> dict[str, str]:
        return child_env(self.env)

    def is_ready(self) -> bool:
        assert self.process is not None
        return "beat: Starting" in self.process.log_text() or time.monotonic() - self._launched > 2.0

    def wait_ready(self, timeout: float | None = None) -> None:
        assert self.process is not None, "start() first"
        self.process.wait_ready(self.is_ready, timeout or self.ready_timeout, interval=0.1)
