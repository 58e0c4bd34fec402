"""The two bounds every look at a job keeps: the longest wait before the next look, and the job's deadline."""

from __future__ import annotations

from datetime import timedelta

from letzflow.engine.deps import Deps
from storage.models import Step


def ceiling(deps: Deps, until_deadline: float | None = None) -> float:
    """The longest wait before the next look: a safe fraction of the Redis visibility timeout (ETA tasks
    are redelivered past it), and no later than just past the job's deadline (``until_deadline`` s away)."""
    longest = deps.visibility_timeout / 10
    if until_deadline is not None:
        longest = min(longest, max(0.0, until_deadline) + 0.1)
    return longest


def deadline_of(deps: Deps, step: Step) -> timedelta:
    """How long a job of this step may run before it is interrupted and failed."""
    seconds = deps.video_deadline if step.remote_kind == "video" else deps.image_deadline
    return timedelta(seconds=seconds)
