"""What a step's work answers (:class:`Outcome`), and the rules every part of it shares, with this
process's collaborators: the longest wait before a look, a job's deadline, failing a step.

The decisions themselves are the engine's (:mod:`letzflow.engine.outcome`, :mod:`letzflow.engine.bounds`,
:mod:`letzflow.engine.stopping`); these are for the parts of the wire not moved there yet.
"""

from __future__ import annotations

from datetime import timedelta

from letzflow.engine import bounds, stopping
from letzflow.engine.outcome import NEXT, Outcome, again
from storage.models import Step
from tasks import runtime

__all__ = ["NEXT", "Outcome", "again", "ceiling", "deadline_of", "fail_step"]


def ceiling(until_deadline: float | None = None) -> float:
    """:func:`letzflow.engine.bounds.ceiling` with this process's settings."""
    return bounds.ceiling(runtime.deps(), until_deadline)


def deadline_of(step: Step) -> timedelta:
    """:func:`letzflow.engine.bounds.deadline_of` with this process's settings."""
    return bounds.deadline_of(runtime.deps(), step)


def fail_step(step: Step, expected: tuple[str, ...], message: str, exc: BaseException | None = None) -> None:
    """:func:`letzflow.engine.stopping.fail_step` with this process's ledger and in-flight limiter."""
    stopping.fail_step(runtime.deps(), step, expected, message, exc)
