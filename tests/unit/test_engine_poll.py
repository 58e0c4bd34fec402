"""The poll decision (:func:`letzflow.engine.poll.poll`) with fakes: an SQLite ledger, a fake client,
recording limiters, a fixed clock. No Celery, no Redis, no runtime."""

from __future__ import annotations

from datetime import timedelta

import pytest

from letzai.errors import NotFound, ServerError, Unauthorized
from letzflow.engine.outcome import NEXT, Outcome
from letzflow.engine.poll import poll
from tests.engine_fakes import NOW, Fakes, one_step_batch, submitted

READY = {"status": "ready", "progress": 100, "imageVersions": {"original": "https://cdn.test/job-1.png"}}


@pytest.fixture
def fakes(ledger):
    return Fakes(ledger)


def test_a_finished_job_stores_its_outputs_and_frees_its_slot(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    fakes.client.images.jobs["job-1"] = READY

    # the first look to see it done: the wire may copy the image in the same task execution
    assert poll(fakes.deps(), step.id) == Outcome("next", copy_here=True)

    after = fakes.ledger.step(step.id)
    assert after.state == "ready" and after.progress == 100.0
    assert after.results == [{"url": "https://cdn.test/job-1.png", "image_id": "job-1"}]
    assert after.next_poll_at.replace(tzinfo=None) == (NOW + timedelta(seconds=60)).replace(tzinfo=None)
    assert fakes.inflight.released == [step.id]
    assert [(d["done"], d["first_look"]) for d in fakes.durations.lessons] == [(True, True)]


def test_a_redelivered_poll_of_a_finished_step_changes_nothing(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    fakes.client.images.jobs["job-1"] = READY
    poll(fakes.deps(), step.id)

    assert poll(fakes.deps(), step.id) == NEXT  # nor is its image copied here: the chain's copy does it
    assert fakes.client.images.gets == ["job-1"]
    assert fakes.inflight.released == [step.id]


def test_a_finished_upscale_is_left_to_the_media_queue(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger, "upscale", "upscale"), "up-1")
    fakes.client.upscale.jobs["up-1"] = {
        "status": "ready",
        "imageVersions": {"original": "https://cdn.test/u"},
    }

    assert poll(fakes.deps(), step.id) == NEXT
    assert fakes.ledger.step(step.id).state == "ready"


def test_a_failed_job_fails_the_step_with_the_apis_reason(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    fakes.client.images.jobs["job-1"] = {"status": "failed", "statusDetail": "prompt was flagged"}

    assert poll(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    assert after.state == "failed"
    assert after.error_message == "LetzAI job failed: prompt was flagged"
    assert after.error_class == "StepFailed" and after.polls == 1
    assert fakes.inflight.released == [step.id]


def test_a_working_job_is_looked_at_again_and_the_answer_says_it_was_seen(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1", age=4.0)
    fakes.client.images.jobs["job-1"] = {"status": "generating", "progress": 40}

    outcome = poll(fakes.deps(), step.id)

    # 40 % after 4 s: the job ends at about 10 s, so the next look comes about 6 s from now
    assert outcome.action == "again" and outcome.looked is True
    assert outcome.note == "generating 40%"
    assert 5.0 < outcome.delay < 6.5
    after = fakes.ledger.step(step.id)
    assert after.state == "running" and after.progress == 40.0 and after.polls == 1
    assert fakes.inflight.refreshed == [(step.id, NOW.timestamp() + outcome.delay)]
    assert fakes.inflight.released == []
    assert [(d["done"], d["progress"]) for d in fakes.durations.lessons] == [(False, 40.0)]


def test_a_working_job_is_never_looked_at_later_than_just_past_its_deadline(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1", age=598.0, deadline=600)
    fakes.client.images.jobs["job-1"] = {"status": "generating", "progress": 0}

    outcome = poll(fakes.deps(), step.id)

    assert outcome.action == "again" and outcome.looked and outcome.delay <= 2.1


def test_a_job_still_working_past_its_deadline_is_interrupted_and_failed(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1", age=700.0, deadline=600)
    fakes.client.images.jobs["job-1"] = {"status": "generating", "progress": 10}

    assert poll(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    assert after.state == "failed" and after.error_message == "deadline passed (600 s): job interrupted"
    assert fakes.client.images.interrupted == ["job-1"]
    assert fakes.inflight.released == [step.id]


def test_a_failed_get_is_retried_and_counted(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    fakes.client.images.jobs["job-1"] = ServerError(503, "busy")

    outcome = poll(fakes.deps(), step.id)

    assert outcome.action == "again" and not outcome.looked
    after = fakes.ledger.step(step.id)
    assert after.state == "submitted" and after.errors_in_row == 1
    assert after.next_poll_at.replace(tzinfo=None) == (NOW + timedelta(seconds=outcome.delay + 30)).replace(
        tzinfo=None
    )
    assert fakes.inflight.released == []


def test_a_failed_get_of_a_job_another_look_saw_done_leaves_its_step_as_it_is(fakes, monkeypatch):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    images = fakes.client.images
    real_get = images.get

    def another_look_sees_it_done_first(job_id):
        # a duplicate poll message's look gets the job ready while this one's GET fails
        monkeypatch.setattr(images, "get", real_get)
        images.jobs["job-1"] = READY
        assert poll(fakes.deps(), step.id).action == "next"
        raise ServerError(503, "busy")

    monkeypatch.setattr(images, "get", another_look_sees_it_done_first)
    assert poll(fakes.deps(), step.id).action == "again"
    after = fakes.ledger.step(step.id)
    assert after.state == "ready" and after.errors_in_row == 0  # the copy's retry count starts at 0


def test_a_get_that_fails_past_the_deadline_interrupts_the_job(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1", age=601.0, deadline=600)
    fakes.client.images.jobs["job-1"] = ServerError(503, "busy")

    assert poll(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    assert after.state == "failed" and after.error_message.startswith("deadline passed (600 s)")
    assert fakes.client.images.interrupted == ["job-1"]


def test_a_job_the_api_no_longer_knows_fails_the_step(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    fakes.client.images.jobs["job-1"] = NotFound(404, "no such image")

    assert poll(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    assert after.state == "failed" and after.error_status == 404 and after.error_class == "NotFound"
    assert after.error_message.startswith("polling failed:")
    assert fakes.inflight.released == [step.id]


def test_a_refused_key_stops_the_batch_once(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    fakes.client.images.jobs["job-1"] = Unauthorized(401, "invalid token")

    assert poll(fakes.deps(), step.id) == NEXT

    batch = fakes.ledger.batch(step.batch_id)
    assert batch.state == "stopped" and "HTTP 401" in batch.message
    assert fakes.inflight.forgotten == [step.batch_id]
    assert fakes.ledger.step(step.id).state == "submitted"


def test_a_step_of_a_cancelled_batch_is_cancelled_without_a_look(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    fakes.ledger.set_batch_state(step.batch_id, ("running",), "cancelled", "cancelled by the user")

    assert poll(fakes.deps(), step.id) == NEXT

    assert fakes.ledger.step(step.id).state == "cancelled"
    assert fakes.client.images.gets == [] and fakes.client.images.interrupted == ["job-1"]
    assert fakes.inflight.released == [step.id]


def test_no_token_no_look(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger), "job-1")
    fakes.rate.wait = 0.4

    outcome = poll(fakes.deps(), step.id)

    assert (outcome.action, outcome.delay, outcome.note) == ("again", 0.4, "rate limited locally")
    assert fakes.client.images.gets == []


def test_a_step_not_submitted_is_left_alone(fakes):
    step = one_step_batch(fakes.ledger)

    assert poll(fakes.deps(), step.id) == NEXT
    assert fakes.ledger.step(step.id).state == "planned" and fakes.client.images.gets == []


def test_a_finished_video_without_media_fails_with_the_keys_it_had(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger, "video", "animate"), "vid-1")
    fakes.client.videos.jobs["vid-1"] = {"status": "ready", "progress": 100}

    assert poll(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    assert after.state == "failed"
    assert after.error_message == "video is ready but has no media URL; keys: id, progress, status"


def test_edit_choices_listed_by_id_are_read_one_by_one(fakes):
    step = submitted(fakes.ledger, one_step_batch(fakes.ledger, "image_edit", "edit"), "edit-1")
    fakes.client.image_edits.jobs["edit-1"] = {"status": "ready", "imageCompletionChoices": ["c1", "c2"]}
    fakes.client.images.jobs["c1"] = {"status": "ready", "imageVersions": {"original": "https://cdn.test/c1"}}
    fakes.client.images.jobs["c2"] = {"status": "generating"}

    assert poll(fakes.deps(), step.id) == Outcome("next", copy_here=True)

    after = fakes.ledger.step(step.id)
    assert after.state == "ready" and after.results == [{"url": "https://cdn.test/c1", "image_id": "c1"}]
    assert fakes.client.images.gets == ["c1", "c2"]
