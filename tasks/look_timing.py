"""When a step's job is looked at: :mod:`letzflow.engine.look_timing` with this process's learned durations
(``runtime.durations()``), for the parts of the wire not moved to the engine yet."""

from __future__ import annotations

from letzflow.engine import look_timing
from letzflow.engine.look_timing import duration_key_of
from storage.models import Batch, Step
from tasks import runtime

__all__ = ["duration_key_of", "first_look_delay"]


def first_look_delay(step: Step, batch: Batch, ceiling: float) -> float:
    """Seconds from submission to the first look: the learned first-look time, or the cold look."""
    return look_timing.first_look_delay(runtime.durations(), step, batch, ceiling)
