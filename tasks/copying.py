"""The copy on the wire: :func:`letzflow.engine.copy.copy` with this process's collaborators."""

from __future__ import annotations

from letzflow.engine import copy as copies
from letzflow.engine.outcome import Outcome
from tasks import runtime


def copy(step_id: int) -> Outcome:
    """Copy every output of a ready step to storage; then the step is done."""
    return copies.copy(runtime.deps(), step_id)
