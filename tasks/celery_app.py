"""The wire's Celery application, built from settings (the process layer adds to it in workers.app).

Queues: ``submit``, ``poll``, ``media``, ``batch`` (slow copies never starve polling). Side-effecting tasks
ack late, are requeued when their worker dies, and prefetch one message at a time. Every countdown stays
well below the Redis visibility timeout, past which Redis redelivers an unacknowledged (or ETA) message.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from config.settings import Settings, get_settings

QUEUES = ("submit", "poll", "media", "batch")

#: Task name → queue. ``submit``, ``poll``, ``media`` and ``batch`` are consumed separately, so slow copies
#: never starve polling.
TASK_QUEUES: dict[str, str] = {
    "letzflow.submit_step": "submit",
    "letzflow.poll_step": "poll",
    "letzflow.copy_outputs": "media",
    "letzflow.finish_item": "batch",
    "letzflow.gather_branches": "batch",
    "letzflow.item_failed": "batch",
    "letzflow.feed_batch": "batch",
    "letzflow.finalize_batch": "batch",
    "letzflow.reconcile_ledger": "batch",
    "letzflow.run_schedule": "batch",
}


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
        # a pool process opens the ledger, Redis, HTTP and S3 clients as it starts (workers.app): on a
        # loaded machine that outlasts Celery's default 4 s, which would kill it as hung
        "worker_proc_alive_timeout": 30.0,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": 10.0,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_hijack_root_logger": False,
        "worker_log_format": "[%(asctime)s: %(levelname)s/%(processName)s] %(ids)s%(message)s",
        "worker_task_log_format": (
            "[%(asctime)s: %(levelname)s/%(processName)s] %(ids)s%(task_name)s[%(task_id)s]: %(message)s"
        ),
        "task_default_queue": "batch",
        "task_routes": {name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
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
    """A Celery app for ``settings`` (the process's settings by default); its tasks are tasks.definitions.

    The configuration is read when first needed (``add_defaults`` with a callable), so importing a module
    that builds signatures reads no environment and opens no connection.
    """
    celery = Celery("letzflow", include=["tasks.definitions"])
    celery.add_defaults(lambda: celery_config(settings or get_settings()))
    return celery


#: The process's app: whatever sends a task (the CLI, a worker, a test) sends it through this one.
app = create_app()


def publish_parked(message: str) -> None:
    """Send a parked message: a serialized signature taken from Redis by its one taker (a poll parked for
    its webhook, :mod:`tasks.waker`; a submitter parked for a slot, :mod:`tasks.waiters`)."""
    from kombu.utils.json import loads

    app.signature(loads(message)).apply_async()
