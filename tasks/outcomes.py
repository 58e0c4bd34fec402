"""What a step's work answers (:class:`Outcome`), and the rules every part of it shares: the longest
wait before a look, a job's deadline, failing a step."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from storage.models import Step, utcnow
from tasks import runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """``next``: the chain goes on (its next task after ``delay`` seconds, if any). ``again``: run the same
    task after ``delay`` seconds. ``looked``: an ``again`` after the job was seen still working (with
    webhooks on, the next look waits for the job's webhook: :mod:`tasks.hooks`). ``park``: a ``next``
    whose following look (the chain's poll) is parked for the job's webhook, with this fallback (s)."""

    action: str
    delay: float = 0.0
    note: str = ""
    looked: bool = False
    park: float | None = None


NEXT = Outcome("next")


def again(delay: float, note: str = "") -> Outcome:
    return Outcome("again", max(0.05, delay), note)


def ceiling(until_deadline: float | None = None) -> float:
    """The longest wait before the next look: a safe fraction of the Redis visibility timeout (ETA tasks
    are redelivered past it), and no later than just past the job's deadline."""
    ceiling = runtime.settings().letzflow_visibility_timeout / 10
    if until_deadline is not None:
        ceiling = min(ceiling, max(0.0, until_deadline) + 0.1)
    return ceiling


def deadline_of(step: Step) -> timedelta:
    """How long a job of this step may run before it is interrupted and failed."""
    s = runtime.settings()
    seconds = s.letzflow_video_deadline if step.remote_kind == "video" else s.letzflow_image_deadline
    return timedelta(seconds=seconds)


def fail_step(step: Step, expected: tuple[str, ...], message: str, exc: BaseException | None = None) -> None:
    """Move the step to ``failed`` (from one of ``expected``) with ``message``, and free its slot."""
    runtime.ledger().transition(
        step.id,  # type: ignore[arg-type]
        expected,
        "failed",
        error_class=type(exc).__name__ if exc else "StepFailed",
        error_status=getattr(exc, "status", None),
        error_message=message[:2000],
        finished_at=utcnow(),
        next_poll_at=None,
    )
    runtime.inflight().release(step.id)  # type: ignore[arg-type]
