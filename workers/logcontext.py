"""Log lines of tasks carry the batch, item and step they work on: ``[batch=… item=… step=…]``.

A ``task_prerun`` handler notes the task's name and arguments (messages carry ids only); a logging filter
adds the ids to every record as ``ids``, looking the rest up in the ledger (once per step per process) only
when a task actually logs something. Most executions log nothing, and the lookup cost two ledger reads.
"""

from __future__ import annotations

import contextvars
import logging
from functools import lru_cache
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun, task_prerun

#: The running task's (name, args, kwargs), or None outside tasks.
_task: contextvars.ContextVar[tuple[str, tuple[Any, ...], dict[str, Any]] | None] = contextvars.ContextVar(
    "letzflow_task", default=None
)
_resolving: contextvars.ContextVar[bool] = contextvars.ContextVar("letzflow_ids_resolving", default=False)
STEP_TASKS = ("submit_step", "poll_step", "copy_outputs")
ITEM_TASKS = ("finish_item", "item_failed")
BATCH_TASKS = ("feed_batch", "finalize_batch")


class IdsFilter(logging.Filter):
    """Adds ``record.ids`` (empty outside tasks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _task.get()
        record.ids = ""
        if current is not None and not _resolving.get():
            token = _resolving.set(True)  # a record logged while looking the ids up gets none
            try:
                record.ids = describe(*current)
            finally:
                _resolving.reset(token)
        return True


@lru_cache(maxsize=20_000)
def _step_ids(step_id: int) -> str:
    from tasks import runtime

    step = runtime.ledger().step(step_id)
    if step is None:
        return f"[step={step_id}] "
    item = runtime.ledger().item(step.item_id)
    key = item.key if item else step.item_id
    return f"[batch={step.batch_id} item={key} step={step_id}] "


def describe(task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The ids prefix for one task execution."""
    short = task_name.rsplit(".", 1)[-1]
    try:
        if short in STEP_TASKS and args:
            return _step_ids(int(args[0]))
        if short in ITEM_TASKS:
            item_id = kwargs.get("item_id", args[0] if args else None)
            return f"[item_id={item_id}] "
        if short in BATCH_TASKS and args:
            return f"[batch={args[0]}] "
    except Exception:  # logging must never break a task
        return ""
    return ""


@task_prerun.connect
def _enter(task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    _task.set((getattr(task, "name", ""), tuple(args or ()), dict(kwargs or {})))


@task_postrun.connect
def _leave(**_: Any) -> None:
    _task.set(None)


def _install(logger: logging.Logger, **_: Any) -> None:
    for handler in logger.handlers:
        if not any(isinstance(f, IdsFilter) for f in handler.filters):
            handler.addFilter(IdsFilter())


after_setup_logger.connect(_install)
after_setup_task_logger.connect(_install)
