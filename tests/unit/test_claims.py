"""Ownership decided once in the ledger: taking a job back, reopening unconfirmed steps, schedule firings.
On SQLite and, in CI, on PostgreSQL (the ``ledger`` fixture of test_ledger)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from storage.ledger import Ledger
from tasks.firing import firing_time


def _steps(led: Ledger, batch_id: str, kind: str = "image"):
    return [s for s in led.steps_in(batch_id, ("planned",)) if s.remote_kind == kind]


def test_the_step_whose_post_answered_takes_its_job_back_from_an_adopter(ledger, batch):
    owner, adopter = _steps(ledger, batch.id)[:2]
    ledger.transition(owner.id, ("planned",), "submitting")
    ledger.transition(adopter.id, ("planned",), "submitted", remote_id="job-1", adopted=True)
    assert ledger.claims.take_over(owner, "job-1", "taken back")
    back = ledger.step(adopter.id)
    assert (back.state, back.remote_id, back.adopted, back.error_message) == (
        "submitting",
        None,
        False,
        "taken back",
    )
    assert ledger.transition(owner.id, ("submitting",), "submitted", remote_id="job-1")


def test_a_job_held_by_its_own_answer_or_already_stored_is_never_taken(ledger, batch):
    owner, holder = _steps(ledger, batch.id)[:2]
    ledger.transition(holder.id, ("planned",), "submitted", remote_id="job-2", adopted=False)
    assert not ledger.claims.take_over(owner, "job-2", "x")
    ledger.transition(holder.id, ("submitted",), "done", adopted=True)
    assert not ledger.claims.take_over(owner, "job-2", "x")
    assert ledger.step(holder.id).remote_id == "job-2"


@pytest.mark.parametrize(("resubmit", "state"), [(False, "submitting"), (True, "planned")])
def test_retry_reopens_unconfirmed_steps_to_look_again_or_to_resend(ledger, batch, resubmit, state):
    first, second = _steps(ledger, batch.id)[:2]
    ledger.transition(first.id, ("planned",), "unconfirmed", errors_in_row=6, submit_attempts=1)
    ledger.transition(second.id, ("planned",), "skipped")
    ledger.set_item_state(first.item_id, ("pending",), "failed", error="unconfirmed")
    assert [s.id for s in ledger.claims.unconfirmed(batch.id)] == [first.id]
    assert ledger.claims.reopen_unconfirmed(batch.id, resubmit=resubmit) == 1
    again = ledger.step(first.id)
    assert (again.state, again.errors_in_row) == (state, 0)
    assert again.submit_attempts == (0 if resubmit else 1)
    assert ledger.item(first.item_id).state == "pending"
    assert ledger.claims.unconfirmed(batch.id) == []


def test_a_schedule_firing_is_claimed_once_by_any_number_of_beats(ledger):
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    wins: list[bool] = []
    threads = [
        threading.Thread(target=lambda: wins.append(ledger.claims.claim_firing("n", at))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert ledger.claims.claim_firing("n", datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    assert ledger.claims.claim_firing("other", at)


def test_two_beats_firing_seconds_apart_name_the_same_firing_time():
    cron = "0 2 * * *"
    a = firing_time(cron, datetime(2026, 12, 1, 2, 0, 0, 300_000, tzinfo=UTC))
    b = firing_time(cron, datetime(2026, 12, 1, 2, 0, 59, tzinfo=UTC))
    late = firing_time(cron, datetime(2026, 12, 1, 2, 3, 0, tzinfo=UTC))  # a beat that fired late
    assert a == b == late == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
