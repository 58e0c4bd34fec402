"""A step whose input cannot be prepared (an upload to LetzAI that fails) was never POSTed: it is tried
again as an input, never reconciled as a lost POST answer (``tasks.posting.post``, runtime faked)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from letzai.errors import AnswerLostError, BadRequest, InsufficientCredits, ServerError, Unauthorized
from tasks import posting, runtime
from tests.engine_fakes import Fakes, one_step_batch


@pytest.fixture
def fakes(ledger, monkeypatch):
    f = Fakes(ledger)
    monkeypatch.setattr(runtime, "ledger", lambda: f.ledger)
    monkeypatch.setattr(runtime, "inflight", lambda: f.inflight)
    monkeypatch.setattr(runtime, "deps", f.deps)
    monkeypatch.setattr(runtime, "settings", lambda: SimpleNamespace(letzflow_webhook_url=None))
    return f


def submitting(fakes):
    step = one_step_batch(fakes.ledger, "image_edit", "edit")
    fakes.ledger.claim_job(step.batch_id)
    fakes.ledger.update_step(step.id, state="submitting", submit_attempts=1)
    step = fakes.ledger.step(step.id)
    batch, item = fakes.ledger.batch(step.batch_id), fakes.ledger.item(step.item_id)
    return step, batch, item


def upload_fails(monkeypatch, exc):
    posted = []

    def request_for(*_args):
        raise exc

    monkeypatch.setattr(posting, "request_for", request_for)
    monkeypatch.setattr(posting, "resource", lambda endpoint: posted.append(endpoint))
    return posted


@pytest.mark.parametrize(
    "exc",
    [AnswerLostError("read timed out"), ServerError(503, "Service Unavailable")],
    ids=["answer lost", "503"],
)
def test_an_upload_whose_answer_is_lost_or_refused_is_tried_again_not_reconciled(fakes, monkeypatch, exc):
    posted = upload_fails(monkeypatch, exc)
    step, batch, item = submitting(fakes)

    outcome = posting.post(step, batch, item, None)

    assert outcome.action == "again" and outcome.note.startswith("input not ready")
    after = fakes.ledger.step(step.id)
    assert after.state == "planned" and after.remote_id is None  # free to POST: no job was created
    assert fakes.inflight.released == [step.id] and posted == []
    assert fakes.ledger.batch(batch.id).jobs_submitted == 0  # the job's claim is given back


def test_an_upload_refused_for_the_key_stops_the_batch_as_a_post_would(fakes, monkeypatch):
    upload_fails(monkeypatch, Unauthorized(401, "Unauthorized"))
    step, batch, item = submitting(fakes)

    posting.post(step, batch, item, None)

    assert fakes.ledger.batch(batch.id).state == "stopped"
    assert fakes.ledger.step(step.id).state == "planned"


def test_an_upload_without_credits_pauses_the_batch(fakes, monkeypatch):
    upload_fails(monkeypatch, InsufficientCredits(402, "Payment Required"))
    step, batch, item = submitting(fakes)

    posting.post(step, batch, item, None)

    assert fakes.ledger.batch(batch.id).state == "paused"


def test_an_upload_the_api_rejects_fails_the_step_with_its_reason(fakes, monkeypatch):
    upload_fails(monkeypatch, BadRequest(400, "file type not allowed"))
    step, batch, item = submitting(fakes)

    assert posting.post(step, batch, item, None).action == "next"

    after = fakes.ledger.step(step.id)
    assert after.state == "failed" and "input could not be prepared" in after.error_message
    assert "file type not allowed" in after.error_message


@pytest.mark.parametrize(
    ("exc", "state"),
    [
        (InsufficientCredits(402, "Payment Required"), "paused"),
        (Unauthorized(401, "Unauthorized"), "stopped"),
    ],
    ids=["402", "401"],
)
def test_a_post_refused_for_credits_or_key_costs_the_step_no_submission(fakes, monkeypatch, exc, state):
    class Refusing:
        def create(self, **_body):
            raise exc

    monkeypatch.setattr(posting, "request_for", lambda *_a: ("image_edits", {"prompt": "p"}, frozenset()))
    monkeypatch.setattr(posting, "resource", lambda endpoint: Refusing())
    step, batch, item = submitting(fakes)

    posting.post(step, batch, item, None)

    after = fakes.ledger.step(step.id)
    assert fakes.ledger.batch(batch.id).state == state
    # resumed any number of times after a top-up, the step still has all its submissions
    assert after.state == "planned" and after.submit_attempts == 0
