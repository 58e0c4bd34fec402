"""The poll on the wire: :func:`letzflow.engine.poll.poll` with this process's collaborators.

Submitting is :mod:`tasks.submitting`; copying :mod:`tasks.copying`.
"""

from __future__ import annotations

from letzflow.engine import poll as polls
from letzflow.engine.outcome import Outcome
from tasks import runtime


def poll(step_id: int) -> Outcome:
    """Look at a submitted job once; decide whether it is done, failed, or when to look again."""
    return polls.poll(runtime.deps(), step_id)
