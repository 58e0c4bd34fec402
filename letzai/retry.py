"""The retry policy as one pure function: what to do after a failed call, for every kind of call.

``classify(error, call, attempt)`` answers a :class:`Decision`; it never sleeps and never reads the clock,
so it is tested from a table. ``attempt`` counts the call's failures so far, 1 for the first (for
:attr:`Call.SUBMIT`: the step's submissions, this one included). What differs between kinds of call (their
limits, whether a 401/403/402 halts the batch, whether a lost answer is reconciled, the reason a failed
step shows) is one row of :data:`RULES`; callers only act on the decision.

Any exception is classified: a :class:`~letzai.errors.LetzAIError` by its class, any other (the media
store's, a local file's) by its own ``retryable`` attribute (none: not retryable).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from letzai.errors import (
    AnswerLostError,
    APIError,
    AuthError,
    InsufficientCredits,
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
#: Submissions of one step (POSTs, re-POSTs after a lost answer proven to have created nothing; a 429 is
#: none) after which it fails.
MAX_SUBMITS = 5


class Call(Enum):
    """The kind of call that failed."""

    SUBMIT = "submit"  #: the POST that creates a step's job
    POLL = "poll"  #: the GET of a submitted job
    LIST = "list"  #: listing jobs to find the one a lost POST answer may have created
    COPY = "copy"  #: downloading a finished job's media and storing it
    PREPARE_INPUT = "prepare_input"  #: a step's input before its POST (a presign, a local file), not LetzAI's


class Action(Enum):
    """What the engine does next."""

    RETRY = "retry"  #: the same call again after ``delay`` seconds
    RECONCILE = (
        "reconcile"  #: a POST whose answer was lost: look for its job (after ``delay``), never re-POST
    )
    FAIL_STEP = "fail_step"  #: the step fails with ``reason``; the item fails, the batch goes on
    STOP_BATCH = "stop_batch"  #: 401/403: the batch stops
    PAUSE_BATCH = "pause_batch"  #: 402: the batch pauses (credits), resumable
    INTERRUPT = "interrupt"  #: the job is past its deadline: interrupt it, then fail the step


@dataclass(frozen=True)
class Decision:
    """What to do after one failed call.

    ``reason``: for :attr:`Action.FAIL_STEP` the step's error message as ``letzflow status`` shows it; for
    the other actions the error's own text, which the caller words into its note. ``counts``: whether this
    failure counts as an attempt toward the call's limit (a 429 does not, until the step's deadline).
    """

    action: Action
    delay: float = 0.0
    reason: str = ""
    counts: bool = True


@dataclass(frozen=True)
class Rules:
    """How one kind of call treats its failures (a row of :data:`RULES`).

    max_attempts: counted failures at which a retryable error fails the step; None: bounded by its caller.
    halts: a 401/403 stops and a 402 pauses the batch (else they fail the step like any other 4xx).
    waits_on_429: a 429 waits as long as Retry-After says and counts no attempt until the step's deadline
        (else it is retried and counted like a 5xx).
    reconciles: a lost answer or a 5xx may have created the job: reconcile, never re-send blindly.
    fails_step: an error that is not retryable fails the step (else it is retried at once, counted).
    interrupts: a retry past the step's deadline becomes :attr:`Action.INTERRUPT`.
    fail, gave_up: the failed step's reason, for an error that is not retryable and at ``max_attempts``;
        ``{message}`` is the error's text, ``{api_message}`` the API's own message where there is one,
        ``{attempt}`` the attempt.
    """

    max_attempts: int | None
    halts: bool = True
    waits_on_429: bool = True
    reconciles: bool = False
    fails_step: bool = True
    interrupts: bool = False
    fail: str = "{message}"
    gave_up: str | None = None  # None: as ``fail``


#: Every kind of call's limits and exceptions to the general rules, in one place.
RULES: dict[Call, Rules] = {
    # Each POST may be billed once it lands: a refused connection is re-sent (nothing reached the API), a
    # lost answer reconciled (tasks.lost_answers then bounds the re-POSTs by the same limit).
    Call.SUBMIT: Rules(
        MAX_SUBMITS,
        reconciles=True,
        fail="{api_message}",
        gave_up="gave up after {attempt} submissions: {message}",
    ),
    # Failed GETs of a job in a row: the job is paid for, so they are retried long (each waits up to the
    # backoff cap, the deadline usually comes first), and past the deadline the job is interrupted.
    Call.POLL: Rules(40, interrupts=True, fail="polling failed: {message}"),
    # A list that cannot be read is a look that could not decide: counted by tasks.lost_answers against
    # LETZFLOW_LIST_ATTEMPTS (with the looks that found nothing decisive), then the step is unconfirmed.
    Call.LIST: Rules(None, fails_step=False),
    # Failed copies in a row. A media host's 401/403/402/429 is about that URL, not the account's key.
    Call.COPY: Rules(8, halts=False, waits_on_429=False, fail="copying the media failed: {message}"),
    # Tries at preparing the input (each counts as a submission: nothing was POSTed): a presign or an
    # upload that keeps failing fails the step after 8, with the backoff between them (minutes in all).
    Call.PREPARE_INPUT: Rules(
        8,
        fail="input could not be prepared: {message}",
        gave_up="input could not be prepared after {attempt} tries: {message}",
    ),
}


def backoff(
    attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter: uniform in [base/2, min(cap, base * 2**(attempt-1))]."""
    # the exponent is clamped: 2**1024 no longer converts to a float, and the cap is reached long before
    ceiling = min(cap, base * (2 ** min(max(0, attempt - 1), 64)))
    r = (rng or random).random()
    return max(base / 2, ceiling * r)


def classify(
    error: BaseException,
    call: Call,
    attempt: int,
    *,
    past_deadline: bool = False,
    rng: random.Random | None = None,
) -> Decision:
    """Decide how to react to ``error`` on the ``attempt``-th failure of a ``call``.

    ``past_deadline``: the step's job has passed its deadline (callers without one leave it False).
    ``rng``: the jitter's random generator (None: the module's).
    """
    rules = RULES[call]
    message = getattr(error, "message", None) or str(error)
    if rules.halts and isinstance(error, AuthError):
        return Decision(Action.STOP_BATCH, reason=message)
    if rules.halts and isinstance(error, InsufficientCredits):
        return Decision(Action.PAUSE_BATCH, reason=message)
    decision = _retry_or_fail(error, rules, attempt, message, past_deadline, rng)
    if rules.interrupts and past_deadline and decision.action is Action.RETRY:
        return Decision(Action.INTERRUPT, reason=message)
    return decision


def _retry_or_fail(
    error: BaseException,
    rules: Rules,
    attempt: int,
    message: str,
    past_deadline: bool,
    rng: random.Random | None,
) -> Decision:
    if rules.waits_on_429 and isinstance(error, RateLimited):
        delay = error.retry_after if error.retry_after is not None else RATE_LIMIT_DEFAULT
        return Decision(Action.RETRY, min(delay, RATE_LIMIT_CAP), message, counts=past_deadline)
    if rules.reconciles and isinstance(error, AnswerLostError | ServerError):
        return Decision(Action.RECONCILE, backoff(attempt, rng=rng), message)
    if getattr(error, "retryable", False):
        if rules.max_attempts is not None and attempt >= rules.max_attempts:
            gave_up = rules.gave_up or rules.fail
            return Decision(Action.FAIL_STEP, reason=_reason(gave_up, error, message, attempt))
        delay = backoff(attempt, rng=rng)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, RATE_LIMIT_CAP))  # counted, but not sooner than asked
        return Decision(Action.RETRY, delay, message)
    if not rules.fails_step:
        return Decision(Action.RETRY, 0.0, message)
    return Decision(Action.FAIL_STEP, reason=_reason(rules.fail, error, message, attempt))


def _reason(template: str, error: BaseException, message: str, attempt: int) -> str:
    api_message = error.api_message if isinstance(error, APIError) else message
    return template.format(message=message, api_message=api_message, attempt=attempt)
