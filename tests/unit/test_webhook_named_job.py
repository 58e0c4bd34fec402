"""A webhook call to the token of a POST whose answer was lost names its job: kept as a candidate
(``tasks.hooks.on_webhook``) and adopted by the step's recovery once a GET shows it
(``tasks.lost_answers._hooked``). Runtime faked: a real SQLite ledger, fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from letzai.errors import NotFound
from letzai.webhook_tokens import new_token, token_hash
from tasks import hooks, lost_answers, runtime
from tests.engine_fakes import Fakes, one_step_batch

JOB = "0b5c7a9e-3f41-4d2a-9c3e-5a1f2b7d8e90"


@pytest.fixture
def fakes(ledger, monkeypatch):
    f = Fakes(ledger)
    r = fakeredis.FakeRedis()
    monkeypatch.setattr(runtime, "ledger", lambda: f.ledger)
    monkeypatch.setattr(runtime, "redis_client", lambda: r)
    monkeypatch.setattr(lost_answers, "resource", lambda endpoint: getattr(f.client, endpoint))
    return f


def step_in(fakes, state):
    token = new_token()
    step = one_step_batch(fakes.ledger, "upscale", "upscale")
    fakes.ledger.update_step(step.id, state=state, webhook_hash=token_hash(token))
    return fakes.ledger.step(step.id), token


def test_a_call_for_a_step_whose_answer_was_lost_keeps_the_job_it_names(fakes):
    step, token = step_in(fakes, "submitting")
    assert hooks.on_webhook(token, JOB)
    assert hooks.hooked_job(step.webhook_hash) == JOB
    other, other_token = step_in(fakes, "submitting")
    assert hooks.on_webhook(other_token, None)  # a body naming no job: nothing kept
    assert hooks.hooked_job(other.webhook_hash) is None
    assert not hooks.on_webhook(new_token(), JOB)  # no step has that token: nothing kept anywhere


def test_the_recovery_adopts_the_named_job_once_a_get_shows_it(fakes, monkeypatch):
    taken: list[str] = []

    def accepted(step, batch, job_id, progress=0.0, *, adopted=False):
        assert adopted
        taken.append(job_id)
        return "ok"

    monkeypatch.setattr(lost_answers, "accepted", accepted)
    step, token = step_in(fakes, "submitting")
    batch = fakes.ledger.batch(step.batch_id)
    hooks.on_webhook(token, JOB)
    fakes.client.upscale.jobs[JOB] = NotFound(404, "not yet")
    assert lost_answers._hooked(step, batch) is None  # not readable yet: the list decides as before
    fakes.client.upscale.jobs[JOB] = {"status": "in progress", "progress": 40}
    assert lost_answers._hooked(step, batch) == "ok" and taken == [JOB]


def test_a_named_job_another_step_holds_is_not_adopted(fakes, monkeypatch):
    monkeypatch.setattr(lost_answers, "accepted", lambda *a, **k: pytest.fail("adopted a held job"))
    holder, _ = step_in(fakes, "running")
    fakes.ledger.update_step(holder.id, remote_id=JOB)
    step, token = step_in(fakes, "submitting")
    hooks.on_webhook(token, JOB)
    fakes.client.upscale.jobs[JOB] = {"status": "ready"}
    assert lost_answers._hooked(step, fakes.ledger.batch(step.batch_id)) is None


def unconfirmed_in(fakes, batch_state):
    """A step that ended ``unconfirmed`` (its item failed) in a batch left ``batch_state``."""
    step, token = step_in(fakes, "unconfirmed")
    fakes.ledger.set_item_state(step.item_id, ("pending", "queued", "running"), "failed")
    fakes.ledger.set_batch_state(step.batch_id, ("running",), batch_state)
    return step, token


def test_a_late_call_reopens_an_unconfirmed_step_whose_recovery_then_adopts_the_job(fakes, monkeypatch):
    from tasks import batch_control

    kicked: list[str] = []
    monkeypatch.setattr(batch_control, "kick_batch", kicked.append)
    step, token = unconfirmed_in(fakes, "done")
    assert hooks.on_webhook(token, JOB)
    again = fakes.ledger.step(step.id)
    assert (again.state, again.errors_in_row, again.submit_attempts) == (
        "submitting",
        0,
        step.submit_attempts,
    )
    assert fakes.ledger.items(step.batch_id)[0].state == "pending"
    assert fakes.ledger.batch(step.batch_id).state == "running" and kicked == [step.batch_id]
    assert hooks.on_webhook(token, JOB)  # a duplicate delivery: the step is searched for already
    assert kicked == [step.batch_id]

    taken: list[str] = []
    monkeypatch.setattr(lost_answers, "accepted", lambda s, b, job_id, *a, **k: taken.append(job_id))
    fakes.client.upscale.jobs[JOB] = {"status": "ready"}
    lost_answers._hooked(again, fakes.ledger.batch(step.batch_id))
    assert taken == [JOB]


def test_a_late_call_for_a_cancelled_batch_is_kept_for_a_retry_but_reopens_nothing(fakes, monkeypatch):
    from tasks import batch_control

    monkeypatch.setattr(batch_control, "kick_batch", lambda b: pytest.fail("kicked a cancelled batch"))
    step, token = unconfirmed_in(fakes, "cancelled")
    assert hooks.on_webhook(token, JOB)
    assert fakes.ledger.step(step.id).state == "unconfirmed"
    assert hooks.hooked_job(step.webhook_hash) == JOB  # `letzflow retry` looks again and adopts it


def test_a_late_call_for_a_paused_batch_reopens_the_step_for_its_resume(fakes, monkeypatch):
    from tasks import batch_control

    monkeypatch.setattr(batch_control, "kick_batch", lambda b: pytest.fail("kicked a paused batch"))
    step, token = unconfirmed_in(fakes, "paused")
    assert hooks.on_webhook(token, JOB)
    assert fakes.ledger.step(step.id).state == "submitting"
    assert fakes.ledger.batch(step.batch_id).state == "paused"


def test_a_token_of_an_ended_step_came_late_and_a_strangers_did_not(fakes):
    running, token = step_in(fakes, "running")
    assert not hooks.came_late(token)  # open: on_webhook wakes it
    fakes.ledger.update_step(running.id, state="done")
    assert hooks.came_late(token)
    assert not hooks.came_late(new_token())  # never given out
    assert not hooks.came_late("not a token")
