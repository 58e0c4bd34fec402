"""An in-flight slot belongs to a step, and no POST goes out without one: two runs of one step's submit (a
re-kicked duplicate and a hand-over, say) leave the slot with the one whose job is in flight, and a lost
answer's re-send waits for a slot like any submitter. The real limiter scripts on fakeredis, a real SQLite
ledger."""

from __future__ import annotations

import fakeredis
import pytest

from tasks import lost_answers, runtime, submitting
from tasks.limits import InflightLimiter
from tasks.outcomes import NEXT
from tests.engine_fakes import Fakes, one_step_batch


@pytest.fixture
def limiter(ledger, monkeypatch):
    fakes = Fakes(ledger)
    slots = InflightLimiter(fakeredis.FakeRedis(), max_inflight=1, on_handover=lambda m: None)
    monkeypatch.setattr(runtime, "ledger", lambda: fakes.ledger)
    monkeypatch.setattr(runtime, "inflight", lambda: slots)
    monkeypatch.setattr(runtime, "rate", lambda: fakes.rate)
    monkeypatch.setattr(runtime, "expected_duration", lambda key: 1.0)
    monkeypatch.setattr(submitting, "new_hook", lambda: (None, None))  # webhooks off
    return slots


def posting_to(ledger, posts):
    def post(step, batch, item, previous, token):
        posts.append(step.id)
        ledger.transition(step.id, ("submitting",), "submitted", remote_id=f"job-{step.id}")
        return NEXT

    return post


def test_the_run_that_loses_the_submit_leaves_the_winners_slot_held(ledger, limiter, monkeypatch):
    step = one_step_batch(ledger)
    posts: list[int] = []
    monkeypatch.setattr(submitting, "post", posting_to(ledger, posts))
    real_begin = ledger.begin_submit_counted

    def begin_after_the_other_run(*args, **kwargs):
        # this run (granted the slot, about to take the step) is overtaken by a duplicate run that does it all
        monkeypatch.setattr(ledger, "begin_submit_counted", real_begin)
        assert submitting.submit(step.id) is NEXT
        return real_begin(*args, **kwargs)

    monkeypatch.setattr(ledger, "begin_submit_counted", begin_after_the_other_run)
    assert submitting.submit(step.id) is NEXT
    assert posts == [step.id]  # one POST
    assert ledger.step(step.id).state == "submitted"
    assert limiter.holders() == {str(step.id)}  # its job is in flight: the slot is still its own
    assert limiter.acquire(step.id + 1000) > 0  # the cap of 1 holds against the next step


def test_a_run_that_finds_its_batch_stopped_frees_the_slot_it_took(ledger, limiter, monkeypatch):
    step = one_step_batch(ledger)
    monkeypatch.setattr(submitting, "post", lambda *a: pytest.fail("posted for a stopped batch"))
    real_begin = ledger.begin_submit_counted

    def stop_first(*args, **kwargs):
        ledger.set_batch_state(step.batch_id, ("running",), "stopped")
        return real_begin(*args, **kwargs)

    monkeypatch.setattr(ledger, "begin_submit_counted", stop_first)
    assert submitting.submit(step.id) is NEXT
    assert ledger.step(step.id).state == "planned"
    assert limiter.holders() == set()


def test_a_lost_answers_re_send_waits_for_a_slot_when_its_own_ran_out(ledger, limiter, monkeypatch):
    step = one_step_batch(ledger)
    posts: list[int] = []
    monkeypatch.setattr(lost_answers, "post", posting_to(ledger, posts))
    monkeypatch.setattr(lost_answers, "new_hook", lambda: (None, None))
    assert ledger.begin_submit_counted(step.id, step.batch_id) == 1  # its POST's answer was lost ...
    assert limiter.acquire(step.id + 1000) == 0  # ... and its lease ran out: another step holds the one slot
    step = ledger.step(step.id)
    batch = ledger.batch(step.batch_id)
    waiting = lost_answers._post_again(step, batch, None, None, "the list proves absence")
    assert waiting.action == "again" and waiting.delay > 0 and posts == []
    assert ledger.step(step.id).submit_attempts == 1  # nothing counted: no POST went out
    limiter.release(step.id + 1000)
    assert lost_answers._post_again(ledger.step(step.id), batch, None, None, "absent") is NEXT
    assert posts == [step.id] and limiter.holders() == {str(step.id)}
    assert ledger.step(step.id).submit_attempts == 2


def test_failing_a_step_that_another_run_moved_on_leaves_its_slot(ledger):
    from letzflow.engine.stopping import fail_step

    fakes = Fakes(ledger)
    step = one_step_batch(ledger)
    ledger.update_step(step.id, state="submitted", remote_id="job-1")  # another run's POST answered
    fail_step(fakes.deps(), step, ("submitting",), "a stale run's verdict")
    assert ledger.step(step.id).state == "submitted"
    assert fakes.inflight.released == []  # the job in flight keeps the slot
    fail_step(fakes.deps(), step, ("submitted",), "the job failed")
    assert ledger.step(step.id).state == "failed" and fakes.inflight.released == [step.id]
