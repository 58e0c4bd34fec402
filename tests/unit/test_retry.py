"""The retry policy, from a table: what ``classify`` decides for each error class, kind of call and attempt
(below, at and above the call's limit), with a seeded random generator."""

from __future__ import annotations

import random

import pytest

from letzai.errors import (
    AnswerLostError,
    BadRequest,
    ConnectError,
    Forbidden,
    InsufficientCredits,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationError,
)
from letzai.retry import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_SUBMITS,
    RATE_LIMIT_CAP,
    RATE_LIMIT_DEFAULT,
    RULES,
    Action,
    Call,
    backoff,
    classify,
)

SEED = 7
#: Expected delay: the jittered backoff of the row's attempt, drawn from ``random.Random(SEED)``.
BACKOFF = -1.0


class Flaky(Exception):
    """A failure from outside the LetzAI client that says it may pass (the media store's, say)."""

    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Broken(Flaky):
    retryable = False


RETRY, RECONCILE, FAIL, STOP, PAUSE, INTERRUPT = (
    Action.RETRY,
    Action.RECONCILE,
    Action.FAIL_STEP,
    Action.STOP_BATCH,
    Action.PAUSE_BATCH,
    Action.INTERRUPT,
)
SUBMIT, POLL, LIST, COPY, PREPARE = Call.SUBMIT, Call.POLL, Call.LIST, Call.COPY, Call.PREPARE_INPUT
LATE = True  # past the step's deadline
COPY_FAILED, NOT_PREPARED = "copying the media failed: ", "input could not be prepared: "

CASES: list[tuple[Call, BaseException, int, bool, Action, float, bool, str]] = [
    # (call, error, attempt, past deadline, action, delay, counts, reason)
    # -- SUBMIT: limit MAX_SUBMITS (5); the POST may be billed once it lands --
    (SUBMIT, Unauthorized(401, "bad key"), 1, False, STOP, 0.0, True, "HTTP 401: bad key"),
    (SUBMIT, Forbidden(403, "plan"), 1, False, STOP, 0.0, True, "HTTP 403: plan"),
    (SUBMIT, InsufficientCredits(402, "credits"), 1, False, PAUSE, 0.0, True, "HTTP 402: credits"),
    (SUBMIT, BadRequest(400, "seed is not allowed"), 1, False, FAIL, 0.0, True, "seed is not allowed"),
    (SUBMIT, BadRequest(422, "odd"), 1, False, FAIL, 0.0, True, "odd"),
    (SUBMIT, NotFound(404, "no such model"), 1, False, FAIL, 0.0, True, "no such model"),
    (SUBMIT, ValidationError("w", 9, "1 to 2"), 1, False, FAIL, 0.0, True, "w=9 is invalid: 1 to 2"),
    (SUBMIT, RateLimited(429, "slow", 3.0), 1, False, RETRY, 3.0, False, "HTTP 429: slow"),
    (SUBMIT, RateLimited(429, "slow", 3.0), 5, False, RETRY, 3.0, False, "HTTP 429: slow"),
    (SUBMIT, RateLimited(429, "slow", None), 9, False, RETRY, RATE_LIMIT_DEFAULT, False, "HTTP 429: slow"),
    (SUBMIT, ServerError(500, "boom"), 1, False, RECONCILE, BACKOFF, True, "HTTP 500: boom"),
    (SUBMIT, ServerError(503, "busy"), 5, False, RECONCILE, BACKOFF, True, "HTTP 503: busy"),
    (SUBMIT, AnswerLostError("timeout"), 1, False, RECONCILE, BACKOFF, True, "timeout"),
    (SUBMIT, AnswerLostError("timeout"), 9, False, RECONCILE, BACKOFF, True, "timeout"),
    (SUBMIT, ConnectError("refused"), 1, False, RETRY, BACKOFF, True, "refused"),
    (SUBMIT, ConnectError("refused"), 4, False, RETRY, BACKOFF, True, "refused"),
    (SUBMIT, ConnectError("refused"), 5, False, FAIL, 0.0, True, "gave up after 5 submissions: refused"),
    (SUBMIT, ConnectError("refused"), 6, False, FAIL, 0.0, True, "gave up after 6 submissions: refused"),
    # -- POLL: limit 40 failed GETs in a row; the job is paid for; past its deadline it is interrupted --
    (POLL, Unauthorized(401, "bad key"), 1, False, STOP, 0.0, True, "HTTP 401: bad key"),
    (POLL, InsufficientCredits(402, "credits"), 1, False, PAUSE, 0.0, True, "HTTP 402: credits"),
    (POLL, NotFound(404, "gone"), 1, False, FAIL, 0.0, True, "polling failed: HTTP 404: gone"),
    (POLL, NotFound(404, "gone"), 1, LATE, FAIL, 0.0, True, "polling failed: HTTP 404: gone"),
    (POLL, BadRequest(400, "odd"), 1, False, FAIL, 0.0, True, "polling failed: HTTP 400: odd"),
    (POLL, RateLimited(429, "slow", 3.0), 1, False, RETRY, 3.0, False, "HTTP 429: slow"),
    (POLL, RateLimited(429, "slow", 3.0), 40, False, RETRY, 3.0, False, "HTTP 429: slow"),
    (POLL, RateLimited(429, "slow", 3.0), 41, False, RETRY, 3.0, False, "HTTP 429: slow"),
    (POLL, RateLimited(429, "slow", 3.0), 1, LATE, INTERRUPT, 0.0, True, "HTTP 429: slow"),
    (POLL, ServerError(503, "busy"), 1, False, RETRY, BACKOFF, True, "HTTP 503: busy"),
    (POLL, ServerError(503, "busy"), 39, False, RETRY, BACKOFF, True, "HTTP 503: busy"),
    (POLL, ServerError(503, "busy"), 39, LATE, INTERRUPT, 0.0, True, "HTTP 503: busy"),
    (POLL, ServerError(503, "busy"), 40, False, FAIL, 0.0, True, "polling failed: HTTP 503: busy"),
    (POLL, ServerError(503, "busy"), 40, LATE, FAIL, 0.0, True, "polling failed: HTTP 503: busy"),
    (POLL, ServerError(503, "busy"), 41, False, FAIL, 0.0, True, "polling failed: HTTP 503: busy"),
    (POLL, AnswerLostError("timeout"), 1, False, RETRY, BACKOFF, True, "timeout"),
    (POLL, ConnectError("refused"), 39, False, RETRY, BACKOFF, True, "refused"),
    (POLL, ConnectError("refused"), 40, False, FAIL, 0.0, True, "polling failed: refused"),
    # -- LIST: no limit here (tasks.lost_answers counts looks against LETZFLOW_LIST_ATTEMPTS); never fails --
    (LIST, Unauthorized(401, "bad key"), 1, False, STOP, 0.0, True, "HTTP 401: bad key"),
    (LIST, InsufficientCredits(402, "credits"), 1, False, PAUSE, 0.0, True, "HTTP 402: credits"),
    (LIST, RateLimited(429, "slow", 3.0), 1, False, RETRY, 3.0, False, "HTTP 429: slow"),
    (LIST, RateLimited(429, "slow", 3.0), 1, LATE, RETRY, 3.0, True, "HTTP 429: slow"),
    (LIST, ServerError(503, "busy"), 1, False, RETRY, BACKOFF, True, "HTTP 503: busy"),
    (LIST, ServerError(503, "busy"), 10**6, LATE, RETRY, BACKOFF, True, "HTTP 503: busy"),
    (LIST, AnswerLostError("timeout"), 3, False, RETRY, BACKOFF, True, "timeout"),
    (LIST, ConnectError("refused"), 3, False, RETRY, BACKOFF, True, "refused"),
    (LIST, BadRequest(400, "odd"), 1, False, RETRY, 0.0, True, "HTTP 400: odd"),
    (LIST, NotFound(404, "gone"), 7, False, RETRY, 0.0, True, "HTTP 404: gone"),
    (LIST, ValidationError("w", 9, "1 to 2"), 1, False, RETRY, 0.0, True, "w=9 is invalid: 1 to 2"),
    # -- COPY: limit 8 failed copies in a row; a media host's 4xx is the URL's, a 429 like any transient --
    (COPY, AnswerLostError("broke off"), 1, False, RETRY, BACKOFF, True, "broke off"),
    (COPY, AnswerLostError("broke off"), 7, False, RETRY, BACKOFF, True, "broke off"),
    (COPY, AnswerLostError("broke off"), 8, False, FAIL, 0.0, True, COPY_FAILED + "broke off"),
    (COPY, ConnectError("unreachable"), 9, False, FAIL, 0.0, True, COPY_FAILED + "unreachable"),
    (COPY, ServerError(502, "bad gateway"), 7, False, RETRY, BACKOFF, True, "HTTP 502: bad gateway"),
    (COPY, RateLimited(429, "slow", None), 1, False, RETRY, BACKOFF, True, "HTTP 429: slow"),
    # a media host's Retry-After is waited at least (the backoff of attempt 1 is 1-2 s), and counted
    (COPY, RateLimited(429, "slow", 40.0), 1, False, RETRY, 40.0, True, "HTTP 429: slow"),
    (COPY, RateLimited(429, "slow", 9000.0), 2, False, RETRY, RATE_LIMIT_CAP, True, "HTTP 429: slow"),
    (COPY, RateLimited(429, "slow", 3.0), 8, False, FAIL, 0.0, True, COPY_FAILED + "HTTP 429: slow"),
    (COPY, Forbidden(403, "expired"), 1, False, FAIL, 0.0, True, COPY_FAILED + "HTTP 403: expired"),
    (COPY, Unauthorized(401, "no"), 1, False, FAIL, 0.0, True, COPY_FAILED + "HTTP 401: no"),
    (COPY, InsufficientCredits(402, "c"), 1, False, FAIL, 0.0, True, COPY_FAILED + "HTTP 402: c"),
    (COPY, NotFound(404, "gone"), 1, False, FAIL, 0.0, True, COPY_FAILED + "HTTP 404: gone"),
    (COPY, Flaky("S3 SlowDown"), 1, False, RETRY, BACKOFF, True, "S3 SlowDown"),
    (COPY, Flaky("S3 SlowDown"), 8, False, FAIL, 0.0, True, COPY_FAILED + "S3 SlowDown"),
    (COPY, Broken("NoSuchBucket"), 1, False, FAIL, 0.0, True, COPY_FAILED + "NoSuchBucket"),
    (COPY, KeyError("url"), 1, False, FAIL, 0.0, True, COPY_FAILED + "'url'"),
    # -- PREPARE_INPUT: errors outside the client before a POST; 8 tries --
    (PREPARE, Flaky("presign failed"), 1, False, RETRY, BACKOFF, True, "presign failed"),
    (PREPARE, Flaky("presign failed"), 7, False, RETRY, BACKOFF, True, "presign failed"),
    (
        PREPARE,
        Flaky("presign failed"),
        8,
        False,
        FAIL,
        0.0,
        True,
        NOT_PREPARED[:-2] + " after 8 tries: presign failed",
    ),
    (PREPARE, Broken("no such key"), 1, False, FAIL, 0.0, True, NOT_PREPARED + "no such key"),
    (PREPARE, FileNotFoundError("mask.png"), 1, False, FAIL, 0.0, True, NOT_PREPARED + "mask.png"),
]


def _row_id(row: tuple[Call, BaseException, int, bool, Action, float, bool, str]) -> str:
    call, error, attempt, late, action = row[:5]
    return f"{call.name}-{type(error).__name__}-{attempt}{'-late' if late else ''}-{action.name}"


@pytest.mark.parametrize(
    ("call", "error", "attempt", "past_deadline", "action", "delay", "counts", "reason"),
    CASES,
    ids=[_row_id(row) for row in CASES],
)
def test_classify_table(
    call: Call,
    error: BaseException,
    attempt: int,
    past_deadline: bool,
    action: Action,
    delay: float,
    counts: bool,
    reason: str,
) -> None:
    decision = classify(error, call, attempt, past_deadline=past_deadline, rng=random.Random(SEED))
    expected_delay = backoff(attempt, rng=random.Random(SEED)) if delay == BACKOFF else delay
    assert (decision.action, decision.delay, decision.counts, decision.reason) == (
        action,
        expected_delay,
        counts,
        reason,
    )


def test_the_limits_table() -> None:
    limits = {call: rules.max_attempts for call, rules in RULES.items()}
    assert limits == {
        Call.SUBMIT: MAX_SUBMITS,
        Call.POLL: 40,
        Call.LIST: None,
        Call.COPY: 8,
        Call.PREPARE_INPUT: 8,
    }
    assert MAX_SUBMITS == 5


def test_every_kind_of_call_and_action_appears_in_the_table() -> None:
    assert {row[0] for row in CASES} == set(Call)
    assert {row[4] for row in CASES} == set(Action)


def test_actions_are_no_strings() -> None:
    decision = classify(ServerError(503, "x"), Call.POLL, 1, rng=random.Random(SEED))
    assert decision.action is Action.RETRY
    assert decision.action != "retry"


@pytest.mark.parametrize("call", [Call.SUBMIT, Call.POLL, Call.COPY])
def test_four_xx_is_never_retried_whatever_the_attempt(call: Call) -> None:
    for status in (400, 404, 409, 422):
        cls = NotFound if status == 404 else BadRequest
        for attempt in (1, 2, 5, 50):
            assert classify(cls(status, "x"), call, attempt).action is Action.FAIL_STEP


@pytest.mark.parametrize("call", [Call.SUBMIT, Call.POLL, Call.LIST])
def test_rate_limit_honours_retry_after(call: Call) -> None:
    assert classify(RateLimited(429, "x", 12.5), call, 1).delay == 12.5
    assert classify(RateLimited(429, "x", 0.0), call, 1).delay == 0.0
    assert classify(RateLimited(429, "x", 120.0), call, 1).delay == 120.0


def test_rate_limit_without_hint_uses_the_default_and_huge_hints_are_capped() -> None:
    assert classify(RateLimited(429, "x", None), Call.SUBMIT, 1).delay == RATE_LIMIT_DEFAULT
    assert classify(RateLimited(429, "x", 10 * RATE_LIMIT_CAP), Call.POLL, 1).delay == RATE_LIMIT_CAP


def test_a_429_on_a_post_never_uses_up_the_submissions() -> None:
    for attempt in range(1, 3 * MAX_SUBMITS):
        decision = classify(RateLimited(429, "x", 1.0), Call.SUBMIT, attempt)
        assert (decision.action, decision.counts) == (Action.RETRY, False)


def test_the_same_seed_gives_the_same_delay() -> None:
    first = classify(ServerError(500, "x"), Call.SUBMIT, 4, rng=random.Random(3)).delay
    assert first == classify(ServerError(500, "x"), Call.SUBMIT, 4, rng=random.Random(3)).delay
    assert BACKOFF_BASE / 2 <= first <= BACKOFF_BASE * 8


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_is_jittered_within_bounds(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    delays = [backoff(attempt, rng=rng) for _ in range(200)]
    assert all(BACKOFF_BASE / 2 <= d <= ceiling for d in delays)
    if ceiling > BACKOFF_BASE:
        assert len(set(delays)) > 100


def test_backoff_of_a_huge_attempt_is_the_cap_not_an_overflow() -> None:
    assert BACKOFF_BASE / 2 <= backoff(10**6, rng=random.Random(SEED)) <= BACKOFF_CAP


def test_backoff_grows_with_attempts_on_average() -> None:
    rng = random.Random(1)
    mean = [sum(backoff(a, rng=rng) for _ in range(500)) / 500 for a in (1, 3, 6)]
    assert mean[0] < mean[1] < mean[2] <= BACKOFF_CAP
