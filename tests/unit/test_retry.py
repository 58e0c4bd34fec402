"""The retry policy, from a table: what ``classify`` decides for each error class and attempt."""

from __future__ import annotations

import random

import pytest

from letzai.errors import (
    AnswerLostError,
    BadRequest,
    ConnectError,
    Forbidden,
    InsufficientCredits,
    LetzAIError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationError,
)
from letzai.retry import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_ATTEMPTS,
    RATE_LIMIT_CAP,
    RATE_LIMIT_DEFAULT,
    backoff,
    classify,
)

CASES = [
    # (error, attempt, is_post, action)
    (Unauthorized(401, "bad key"), 1, False, "stop_batch"),
    (Forbidden(403, "plan"), 1, True, "stop_batch"),
    (InsufficientCredits(402, "credits"), 1, True, "pause_batch"),
    (InsufficientCredits(402, "credits"), 1, False, "pause_batch"),
    (BadRequest(400, "seed is not allowed"), 1, True, "fail_step"),
    (BadRequest(422, "odd"), 1, False, "fail_step"),
    (NotFound(404, "gone"), 1, False, "fail_step"),
    (NotFound(404, "gone"), 1, True, "fail_step"),
    (ValidationError("width", 9999, "480 to 2160"), 1, True, "fail_step"),
    (RateLimited(429, "slow", 3.0), 1, True, "retry"),
    (RateLimited(429, "slow", None), 2, False, "retry"),
    (ServerError(503, "busy"), 1, False, "retry"),
    (ServerError(500, "boom"), 1, True, "reconcile"),
    (AnswerLostError("timeout"), 1, True, "reconcile"),
    (AnswerLostError("timeout"), 1, False, "retry"),
    (ConnectError("refused"), 1, True, "retry"),
    (ConnectError("refused"), 1, False, "retry"),
    (ServerError(502, "bad gateway"), MAX_ATTEMPTS, False, "fail_step"),
    (ConnectError("refused"), MAX_ATTEMPTS, True, "fail_step"),
    (AnswerLostError("timeout"), MAX_ATTEMPTS + 3, False, "fail_step"),
]


@pytest.mark.parametrize(("error", "attempt", "is_post", "action"), CASES)
def test_classify_table(error: LetzAIError, attempt: int, is_post: bool, action: str):
    decision = classify(error, attempt, is_post=is_post, rng=random.Random(7))
    assert decision.action == action
    assert decision.reason


def test_four_xx_is_never_retried_whatever_the_attempt():
    for status in (400, 404, 409, 422):
        cls = NotFound if status == 404 else BadRequest
        for attempt in (1, 2, 5):
            assert classify(cls(status, "x"), attempt).action != "retry"


def test_rate_limit_honours_retry_after():
    assert classify(RateLimited(429, "x", 12.5), 1).delay == 12.5
    assert classify(RateLimited(429, "x", 0.0), 1).delay == 0.0
    assert classify(RateLimited(429, "x", 120.0), 1).delay == 120.0


def test_rate_limit_without_hint_uses_the_default_and_huge_hints_are_capped():
    assert classify(RateLimited(429, "x", None), 1).delay == RATE_LIMIT_DEFAULT
    assert classify(RateLimited(429, "x", 10 * RATE_LIMIT_CAP), 1).delay == RATE_LIMIT_CAP


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_is_jittered_within_bounds(attempt: int):
    rng = random.Random(attempt)
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    delays = [backoff(attempt, rng=rng) for _ in range(200)]
    assert all(BACKOFF_BASE / 2 <= d <= ceiling for d in delays)
    if ceiling > BACKOFF_BASE:
        assert len(set(delays)) > 100


def test_backoff_grows_with_attempts_on_average():
    rng = random.Random(1)
    mean = [sum(backoff(a, rng=rng) for _ in range(500)) / 500 for a in (1, 3, 6)]
    assert mean[0] < mean[1] < mean[2] <= BACKOFF_CAP


def test_server_error_retry_delay_is_the_jittered_backoff():
    decision = classify(ServerError(500, "x"), 3, rng=random.Random(3))
    assert decision.action == "retry"
    assert BACKOFF_BASE / 2 <= decision.delay <= BACKOFF_BASE * 4


def test_give_up_reason_names_the_attempts():
    decision = classify(ServerError(500, "boom"), MAX_ATTEMPTS)
    assert (
        decision.action == "fail_step" and str(MAX_ATTEMPTS) in decision.reason and "boom" in decision.reason
    )


def test_custom_max_attempts():
    assert classify(ConnectError("x"), 2, max_attempts=2).action == "fail_step"
    assert classify(ConnectError("x"), 1, max_attempts=2).action == "retry"
