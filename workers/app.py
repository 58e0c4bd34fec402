"""The Celery application of letzflow's processes: ``celery -A workers.app worker|beat|flower``.

The app itself (settings, queues, acks) is :mod:`tasks.celery_app`; this module adds what only processes
need: the kombu work-around, task log context, the liveness bootstep (heartbeats and the reconciler offered
by every worker), library log levels, and beat's schedules from ``LETZFLOW_SCHEDULES``.
"""

from __future__ import annotations

import logging
import os

from celery.signals import after_setup_logger, worker_process_init

from tasks.celery_app import QUEUES, app, celery_config, create_app

__all__ = ["QUEUES", "app", "celery_config", "create_app"]

_schedules_file = os.environ.get("LETZFLOW_SCHEDULES")
if _schedules_file:
    from workers.schedules import beat_entries, load_schedules

    app.conf.beat_schedule = beat_entries(load_schedules(_schedules_file))


from workers.kombu_fixes import RestoreHeld, tolerate_restore_without_connection  # noqa: E402

tolerate_restore_without_connection()
app.steps["consumer"].add(RestoreHeld)

import workers.logcontext  # noqa: E402,F401  (task log lines carry batch, item and step ids)
from workers.liveness_step import Liveness  # noqa: E402

app.steps["worker"].add(Liveness)


@after_setup_logger.connect
def _quiet_libraries(**_kwargs: object) -> None:
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)


@worker_process_init.connect
def _warm_up(**_kwargs: object) -> None:
    """Open what every task needs (the ledger, Redis, the LetzAI session, the S3 client, the task modules)
    as each pool process starts, so a user's first batch does not pay for it in its first tasks (0.4 s
    measured; the S3 client, built in a first task, another 0.1-0.7 s per process)."""
    try:
        import tasks.definitions  # noqa: F401
        from tasks import runtime

        runtime.ledger().engine.connect().close()
        runtime.redis_client().ping()
        runtime.deps()  # the engine's collaborators: LetzAI session, limits, durations, media store
    except Exception as exc:  # the first task will meet the same problem and report it properly
        logging.getLogger(__name__).warning("warm-up of a pool process failed: %s", exc)
