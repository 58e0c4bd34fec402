"""The Celery application, built from settings.

Queues: ``submit``, ``poll``, ``media``, ``batch`` (slow copies never starve polling). Side-effecting tasks
ack late, are requeued when their worker dies, and prefetch one message at a time. Every countdown stays
well below the Redis visibility timeout, past which Redis redelivers an unacknowledged (or ETA) message.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger, worker_process_init
from kombu import Queue

from config.settings import Settings, get_settings

QUEUES = ("submit", "poll", "media", "batch")


def celery_config(settings: Settings) -> dict[str, object]:
    """The Celery configuration derived from letzflow's settings."""
    transport = {
        "visibility_timeout": settings.letzflow_visibility_timeout,
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": settings.letzflow_visibility_timeout},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "redis_backend_health_check_interval": 10,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "result_expires": 24 * 3600,
        "result_extended": False,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": 10.0,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_hijack_root_logger": False,
        "worker_log_format": "[%(asctime)s: %(levelname)s/%(processName)s] %(ids)s%(message)s",
        "worker_task_log_format": (
            "[%(asctime)s: %(levelname)s/%(processName)s] %(ids)s%(task_name)s[%(task_id)s]: %(message)s"
        ),
        "task_default_queue": "batch",
        "task_queues": [Queue(name) for name in QUEUES],
        "task_create_missing_queues": False,
        "task_time_limit": 300,
        "task_soft_time_limit": 240,
        "timezone": "UTC",
        "enable_utc": True,
        # beat only fires schedules: the reconciler is offered by every worker (workers.liveness_step)
        "beat_schedule": {},
    }


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app for ``settings`` (the process's settings by default)."""
    settings = settings or get_settings()
    celery = Celery("letzflow", include=["tasks.definitions"])
    config = celery_config(settings)
    schedules_file = os.environ.get("LETZFLOW_SCHEDULES")
    if schedules_file:
        from workers.schedules import beat_entries, load_schedules

        config["beat_schedule"].update(beat_entries(load_schedules(schedules_file)))  # type: ignore[attr-defined]
    celery.conf.update(config)
    return celery


app = create_app()

from workers.kombu_fixes import tolerate_restore_without_connection  # noqa: E402

tolerate_restore_without_connection()

import workers.logcontext  # noqa: E402,F401  (task log lines carry batch, item and step ids)
from workers.liveness_step import Liveness  # noqa: E402

app.steps["worker"].add(Liveness)


@after_setup_logger.connect
def _quiet_libraries(**_kwargs: object) -> None:
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)


@worker_process_init.connect
def _warm_up(**_kwargs: object) -> None:
    """Open what every task needs (the ledger, Redis, the LetzAI session, the task modules) as each pool
    process starts, so a user's first batch does not pay for it in its first tasks (0.4 s measured)."""
    try:
        import tasks.definitions  # noqa: F401
        from tasks import runtime

        runtime.ledger().engine.connect().close()
        runtime.redis_client().ping()
        runtime.client()
        runtime.durations()
    except Exception as exc:  # the first task will meet the same problem and report it properly
        logging.getLogger(__name__).warning("warm-up of a pool process failed: %s", exc)
