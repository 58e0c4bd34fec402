"""How a task run ends when its work goes on in another message: sent again later, or parked.

Celery's own ways are to raise ``Retry`` (``task.retry``) or ``Ignore``. Its tracer answers each with a
``billiard`` ``ExceptionInfo``: a picklable copy of the whole traceback, down to every frame's code
positions, which the engine never reads. Polls come back about once per job and refused submitters park
about once, so that copy cost 8-10 % of a worker's CPU in a 300-job run (py-spy, session 9).

Here such a run ends as a plain return instead, where that means the same to Celery: the next message is
sent (or parked) first, with the rest of the chain in its options, exactly as ``task.retry`` builds it;
then the run's own chain is emptied, so nothing goes on from it, and the task returns ``None``. Its
message is acked as after ``Retry``/``Ignore`` (``acks_late``); results are not stored (every such task
has ``ignore_result``). Where a return would mean more, the Celery way is kept:

- a run with a ``chord`` or ``group`` (the last task of a chord header): a return is what the chord counts;
- a run with link callbacks (a return sends them);
- an eager or directly called run (``task.retry`` re-runs those itself, only when raised).

Seen from outside, the difference is the state Celery reports for the run: ``SUCCESS``, not ``RETRY`` or
``IGNORED`` (the ``task-succeeded`` event, for a worker started with ``-E``).
"""

from __future__ import annotations

from typing import Any, NoReturn

from celery import Task
from celery.exceptions import Ignore


class Ended(Exception):
    """This run's work goes on in another message; the run returns (see :class:`LetzflowTask`)."""


class LetzflowTask(Task):  # type: ignore[misc]
    """The base of every letzflow task: a run that raises :class:`Ended` returns ``None`` with its chain
    emptied (the message that carries the work on was sent or parked already)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Ended:
            chain = self.request.chain
            if chain:
                chain.clear()
            return None


def _plain(task: Task) -> bool:
    """Whether a plain return ends this run as ``Retry``/``Ignore`` would (see the module docstring)."""
    request = task.request
    return not (
        request.chord
        or request.group
        or request.callbacks
        or request.is_eager
        or request.called_directly
        or not isinstance(task, LetzflowTask)
    )


def run_again(task: Task, delay: float) -> NoReturn:
    """Run this task once more in ``delay`` s, with the rest of its chain (``task.retry``'s message).

    Raises:
        Ended: the message is sent; this run returns.
        Retry: where a return would mean more than the retry (see the module docstring).
    """
    if not _plain(task):
        raise task.retry(countdown=delay, max_retries=None)
    task.retry(countdown=delay, max_retries=None, throw=False)
    raise Ended()


def end_run(task: Task) -> NoReturn:
    """End this run: its message was parked (it carries the rest of the chain) or another one goes on.

    Raises:
        Ended: this run returns, sending nothing on.
        Ignore: where a return would mean more (see the module docstring).
    """
    if not _plain(task):
        raise Ignore()
    raise Ended()
