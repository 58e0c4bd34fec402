"""The retry policy as a pure function: what to do after a failed LetzAI call.

``classify(error, attempt)`` answers a :class:`Decision`; it never sleeps and never reads the clock,
so it is tested from a table. ``attempt`` counts failures so far (1 for the first).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from letzai.errors import (
    AnswerLostError,
    AuthError,
    InsufficientCredits,
    LetzAIError,
    NotFound,
    RateLimited,
    ServerError,
)

#: Backoff base and cap in seconds for 5xx and transport errors.
BACKOFF_BASE = 2.0
BACKOFF_CAP = 60.0
#: Delay after a 429 without Retry-After.
RATE_LIMIT_DEFAULT = 5.0
#: Longest Retry-After honoured as given (keeps countdowns well below the broker's visibility timeout).
RATE_LIMIT_CAP = 600.0
#: Failures after which a retryable error fails the step.
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Decision:
    """What the engine does next.

    action: ``retry`` (after ``delay`` seconds), ``fail_step``, ``stop_batch`` (401/403),
    ``pause_batch`` (402) or ``reconcile`` (a POST whose answer was lost: look for the job first).
    """

    action: str
    delay: float = 0.0
    reason: str = ""


def backoff(
    attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter: uniform in [base/2, min(cap, base * 2**(attempt-1))]."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    r = (rng or random).random()
    return max(base / 2, ceiling * r)


def classify(
    error: LetzAIError,
    attempt: int,
    *,
    is_post: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
    rng: random.Random | None = None,
) -> Decision:
    """Decide how to react to ``error`` on the ``attempt``-th failure of one call."""
    if isinstance(error, AuthError):
        return Decision("stop_batch", reason=error.message)
    if isinstance(error, InsufficientCredits):
        return Decision("pause_batch", reason=error.message)
    if isinstance(error, RateLimited):
        delay = error.retry_after if error.retry_after is not None else RATE_LIMIT_DEFAULT
        return Decision("retry", delay=min(delay, RATE_LIMIT_CAP), reason=error.message)
    answer_lost = isinstance(error, AnswerLostError | ServerError)
    if is_post and answer_lost:
        return Decision("reconcile", delay=backoff(attempt, rng=rng), reason=error.message)
    if isinstance(error, NotFound):
        return Decision("fail_step", reason=error.message)
    if error.retryable:
        if attempt >= max_attempts:
            return Decision("fail_step", reason=f"gave up after {attempt} attempts: {error.message}")
        return Decision("retry", delay=backoff(attempt, rng=rng), reason=error.message)
    return Decision("fail_step", reason=error.message)
