"""The wire's names, and the one way the engine builds or sends a message.

Every task has an explicit, stable name (``letzflow.<function>``) and a queue, both listed once in
:data:`tasks.celery_app.TASK_QUEUES`: the app routes by it (``task_routes``) and :mod:`tasks.definitions`
registers the tasks under these names. Everything else builds signatures and sends by name, so nothing
that sends a message imports the task definitions (which import the engine): the engine and the wire form
no cycle, and moving a module never renames a task on the wire.

Messages carry ids only: never prompts, keys or bytes.
"""

from __future__ import annotations

from typing import Any

from celery.canvas import Signature

from tasks.celery_app import TASK_QUEUES, app

__all__ = ["TASK_QUEUES", "partial", "send", "task"]

SUBMIT_STEP = "letzflow.submit_step"
POLL_STEP = "letzflow.poll_step"
COPY_OUTPUTS = "letzflow.copy_outputs"
FINISH_ITEM = "letzflow.finish_item"
GATHER_BRANCHES = "letzflow.gather_branches"
ITEM_FAILED = "letzflow.item_failed"
FEED_BATCH = "letzflow.feed_batch"
FINALIZE_BATCH = "letzflow.finalize_batch"
RECONCILE_LEDGER = "letzflow.reconcile_ledger"


def task(name: str, *args: Any, **kwargs: Any) -> Signature:
    """An immutable signature of task ``name`` (it ignores the result of the task before it in a chain)."""
    return Signature(name, args=args, kwargs=kwargs, immutable=True, app=app)


def partial(name: str, **kwargs: Any) -> Signature:
    """A signature that receives what it is linked to (an errback gets the failed task's id)."""
    return Signature(name, kwargs=kwargs, app=app)


def send(name: str, *args: Any, **options: Any) -> None:
    """Publish one task by name (``options``: Celery's, e.g. ``countdown`` or ``expires``)."""
    app.send_task(name, args=args, queue=TASK_QUEUES[name], **options)
