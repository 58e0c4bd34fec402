"""Embedded local services as child processes, for ``letzflow demo`` and the integration tests.

Every service listens on 127.0.0.1 on a free port (never 6379), logs to a file in its directory, runs in
its own process group, and is killed at interpreter exit if nobody stopped it (see
:mod:`workers.stack_processes`). :class:`EmbeddedStack` starts them all::

    with EmbeddedStack(workers=1, sim_knobs={"latency_image": 0.2}) as stack:
        subprocess.run([...], env={**os.environ, **stack.env})

The S3 endpoint is moto's server, which keeps objects in memory only: :meth:`S3Server.stop` then
:meth:`S3Server.start` loses every object (the buckets it created are made again). Moto's request recorder
cannot replay multipart uploads (their upload ids change), so state cannot be kept across a restart; to
simulate a hung endpoint *with* its state, use :meth:`S3Server.pause` / :meth:`S3Server.resume`
(SIGSTOP/SIGCONT: clients time out, then carry on).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workers.services import (
    CeleryBeat,
    CeleryWorker,
    RedisServer,
    S3Server,
    SimulatorServer,
)
from workers.stack_processes import (
    HOST,
    REPO_ROOT,
    ManagedProcess,
    Service,
    StackError,
    child_env,
    find_redis_server,
    free_port,
    kill_all,
)
from workers.webhook_service import WebhookReceiver

__all__ = [
    "HOST",
    "REPO_ROOT",
    "CeleryBeat",
    "CeleryWorker",
    "EmbeddedStack",
    "ManagedProcess",
    "RedisServer",
    "S3Server",
    "Service",
    "SimulatorServer",
    "StackError",
    "WebhookReceiver",
    "child_env",
    "find_redis_server",
    "free_port",
    "kill_all",
]


class EmbeddedStack:
    """Redis, an S3 endpoint (with its bucket), the simulator and optionally workers, in a temp directory.

    ``env`` is what a worker or the CLI needs to use them. Everything stops on exit, in reverse order.
    """

    def __init__(
        self,
        workers: int = 0,
        sim_knobs: Mapping[str, Any] | None = None,
        *,
        bucket: str = "letzflow",
        prefix: str = "",
        worker_options: Mapping[str, Any] | None = None,
        redis_persist: bool = False,
        base_dir: str | Path | None = None,
        keep_dir: bool = False,
        webhooks: bool = False,
    ) -> None:
        self.workers_wanted = workers
        self.webhooks_wanted = webhooks
        self.sim_knobs = dict(sim_knobs or {})
        self.bucket = bucket
        self.prefix = prefix
        self.worker_options = dict(worker_options or {})
        self.redis_persist = redis_persist
        self.keep_dir = keep_dir or base_dir is not None
        self.dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="letzflow-stack-"))
        self.redis: RedisServer | None = None
        self.s3: S3Server | None = None
        self.sim: SimulatorServer | None = None
        self.workers: list[CeleryWorker] = []
        self.beat: CeleryBeat | None = None
        self.webhooks: WebhookReceiver | None = None

    @property
    def database_path(self) -> Path:
        return self.dir / "letzflow.db"

    @property
    def env(self) -> dict[str, str]:
        """The variables a letzflow process needs to use this stack (PYTHONPATH includes the repo root)."""
        assert self.redis and self.s3 and self.sim, "start the stack first"
        hooks = {"LETZFLOW_WEBHOOK_URL": self.webhooks.base_url} if self.webhooks else {}
        return {
            **hooks,
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": f"sqlite:///{self.database_path}",
            "S3_ENDPOINT_URL": self.s3.url,
            "S3_BUCKET": self.bucket,
            "S3_PREFIX": self.prefix,
            "LETZAI_BASE_URL": self.sim.url,
            "LETZAI_SIMULATOR": "1",
            "LETZAI_API_KEY": "sim-key",
            "AWS_ACCESS_KEY_ID": S3Server.access_key,
            "AWS_SECRET_ACCESS_KEY": S3Server.secret_key,
            "AWS_DEFAULT_REGION": S3Server.region,
            "PYTHONPATH": child_env()["PYTHONPATH"],
        }

    def start(self) -> EmbeddedStack:
        """Start the services side by side, then the workers. Raises StackError (what started is stopped)."""
        try:
            self.redis = RedisServer(dir=self.dir / "redis", persist=self.redis_persist)
            self.s3 = S3Server(dir=self.dir / "s3")
            self.sim = SimulatorServer(dir=self.dir / "sim", **self.sim_knobs)
            if self.webhooks_wanted:
                self.webhooks = WebhookReceiver(dir=self.dir / "webhooks")
            services: list[Service] = [self.redis, self.s3, self.sim]
            for service in services:
                service.start(wait=False)
            for service in services:
                service.wait_ready()
            if self.webhooks is not None:
                self.webhooks.env = self.env
                self.webhooks.start()
            self.s3.create_bucket(self.bucket)
            for _ in range(self.workers_wanted):
                self.start_worker(**self.worker_options)
        except BaseException:
            self.stop()
            raise
        return self

    def start_worker(self, **options: Any) -> CeleryWorker:
        """Start one more worker (``CeleryWorker`` options; a unique name by default) and wait until ready."""
        options.setdefault("name", f"w{len(self.workers) + 1}")
        options.setdefault("dir", self.dir / "workers" / options["name"])
        env = {**self.env, **options.pop("env", {})}
        worker = CeleryWorker(env, **options)
        self.workers.append(worker)
        worker.start()
        return worker

    def start_beat(self) -> CeleryBeat:
        """Start celery beat (the reconciler's schedule)."""
        self.beat = CeleryBeat(self.env, dir=self.dir / "beat")
        self.beat.start()
        return self.beat

    def _services(self, newest_worker_first: bool = False) -> list[Service]:
        """Every service started, workers first, then beat, the receiver, the simulator, S3 and Redis."""
        workers = list(reversed(self.workers)) if newest_worker_first else list(self.workers)
        others = [self.beat, self.webhooks, self.sim, self.s3, self.redis]
        return [*workers, *(s for s in others if s is not None)]

    def processes(self) -> list[ManagedProcess]:
        """Every process started and not yet reaped, workers first."""
        return [s.process for s in self._services() if s.process is not None and s.process.alive]

    def stop(self) -> None:
        """Stop workers and beat (warm), then the simulator, S3 and Redis; remove the temp dir unless kept."""
        for service in self._services(newest_worker_first=True):
            service.stop()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
