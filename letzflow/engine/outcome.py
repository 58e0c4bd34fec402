"""What an engine decision answers: go on with the chain, or run the same work again later.

The wire (``tasks/``) turns an :class:`Outcome` into Celery's terms (a retry with a countdown, or the
chain's next task); the engine never sees a task.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """``next``: the chain goes on (its next task after ``delay`` seconds, if any). ``again``: run the same
    task after ``delay`` seconds. ``looked``: an ``again`` after the job was seen still working (with
    webhooks on, the next look waits for the job's webhook: ``tasks.hooks``). ``park``: a ``next``
    whose following look (the chain's poll) is parked for the job's webhook, with this fallback (s).
    ``for_slot``: an ``again`` because the in-flight cap is reached (the wire parks the work until a
    freed slot is handed to it; ``delay`` is then the predicted wait). ``copy_here``: a ``next`` of a
    look that has just seen a small job done (an image or an edit): the wire may copy its media in the same
    task execution rather than in one more (:data:`letzflow.engine.copy.COPY_IN_LOOK`)."""

    action: str
    delay: float = 0.0
    note: str = ""
    looked: bool = False
    park: float | None = None
    for_slot: bool = False
    copy_here: bool = False


NEXT = Outcome("next")


def again(delay: float, note: str = "") -> Outcome:
    """Run the same work again after ``delay`` seconds (at least 50 ms: a zero countdown spins)."""
    return Outcome("again", max(0.05, delay), note)
