"""When a step's job is looked at, and what each look teaches: :mod:`letzflow.engine.polling` applied to a
step, with the learned durations passed in.

The learned figure of a step is that of its duration key (kind, mode or model, size class:
:mod:`letzflow.engine.duration_keys`). With nothing learned for it or its kind, the step's first look comes
at the cold look (about a second) and its progress sets the next one.
"""

from __future__ import annotations

from datetime import datetime

from letzflow.engine.deps import Durations
from letzflow.engine.duration_keys import duration_key
from letzflow.engine.polling import ESTIMATE_MIN_PROGRESS, next_poll_delay
from storage.models import Batch, Step, as_utc


def duration_key_of(step: Step, batch: Batch) -> str:
    """The duration key of ``step`` (its kind alone if the batch's step list does not describe it)."""
    try:
        raw = batch.steps[step.index]
    except (IndexError, TypeError):
        return step.remote_kind
    return duration_key(step.remote_kind, str(raw.get("kind") or ""), raw.get("params") or {})


def first_look_delay(durations: Durations, step: Step, batch: Batch, ceiling: float) -> float:
    """Seconds from submission to the first look: the learned first-look time, or the cold look."""
    figure = durations.figure(duration_key_of(step, batch))
    if figure.cold:
        return min(ceiling, figure.cold_look)
    return next_poll_delay(step.remote_kind, 0.0, 0.0, figure.first_look, ceiling=ceiling)


def next_look_delay(
    durations: Durations,
    step: Step,
    batch: Batch,
    elapsed: float,
    progress: float,
    ceiling: float,
    key: str | None = None,
) -> float:
    """Seconds to the next look at a running job, ``elapsed`` s after submission at ``progress`` %."""
    figure = durations.figure(key or duration_key_of(step, batch))
    return next_poll_delay(
        step.remote_kind,
        elapsed,
        progress,
        figure.first_look,
        polls=step.polls,
        ceiling=ceiling,
        cold=figure.cold,
    )


def learn_from_look(
    durations: Durations,
    step: Step,
    batch: Batch,
    now: datetime,
    *,
    done: bool,
    progress: float,
    key: str | None = None,
) -> None:
    """Teach the step's duration key what this look showed (``step`` as loaded before the look)."""
    elapsed = (now - as_utc(step.submitted_at or now)).total_seconds()
    durations.learn(
        key or duration_key_of(step, batch),
        first_look=step.polls == 0,
        done=done,
        elapsed=elapsed,
        progress=progress,
        had_progress=step.progress >= ESTIMATE_MIN_PROGRESS,
    )
