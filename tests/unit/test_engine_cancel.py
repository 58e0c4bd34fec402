"""Cancelling a batch (:func:`letzflow.engine.cancel.cancel_batch`) with fakes: an SQLite ledger, a fake
client that records interrupts, a recording in-flight limiter. No Celery, no runtime."""

from __future__ import annotations

import pytest

from letzflow.engine.cancel import cancel_batch
from tests.engine_fakes import Fakes


@pytest.fixture
def fakes(ledger):
    return Fakes(ledger)


def batch_of(fakes, n, remote_kind="image", kind="generate"):
    """A running batch of ``n`` items, each one step; its id and the steps in item order."""
    batch = fakes.ledger.create_batch(
        name="cancel",
        spec_hash="h",
        steps=[{"index": 0, "kind": kind, "remote_kind": remote_kind, "variants": 1, "params": {}}],
        items=[(f"sku-{k}", {"prompt": "p"}) for k in range(n)],
    )
    steps = [fakes.ledger.item_steps(item.id)[0] for item in fakes.ledger.items(batch.id)]
    return batch.id, steps


def test_cancel_interrupts_images_in_flight_and_ends_every_open_step_and_item(fakes):
    batch_id, (flying, planned) = batch_of(fakes, 2)
    fakes.ledger.claim_pending(batch_id, 1)
    fakes.ledger.update_step(flying.id, state="submitted", remote_id="job-1")

    counts = cancel_batch(fakes.deps(), batch_id, settle_seconds=0)

    assert counts == {"interrupted": 1, "cancelled": 2}
    assert fakes.ledger.batch(batch_id).state == "cancelled"
    assert fakes.client.images.interrupted == ["job-1"]
    assert {fakes.ledger.step(s.id).state for s in (flying, planned)} == {"cancelled"}
    assert sorted(fakes.inflight.released) == sorted([flying.id, planned.id])
    assert fakes.inflight.forgotten == [batch_id]
    assert fakes.ledger.item_counts(batch_id) == {"cancelled": 2}


def test_a_step_caught_mid_post_is_given_time_to_record_its_job_which_is_then_interrupted(fakes):
    batch_id, (posting,) = batch_of(fakes, 1)
    fakes.ledger.update_step(posting.id, state="submitting")
    waited = []

    def the_post_answers(seconds):
        waited.append(seconds)
        fakes.ledger.update_step(posting.id, state="submitted", remote_id="job-late")

    counts = cancel_batch(fakes.deps(), batch_id, settle_seconds=10, sleep=the_post_answers)

    assert waited == [0.2]
    assert counts == {"interrupted": 1, "cancelled": 1}
    assert fakes.client.images.interrupted == ["job-late"]


def test_a_video_in_flight_is_cancelled_but_cannot_be_interrupted(fakes):
    batch_id, (video,) = batch_of(fakes, 1, "video", "animate")
    fakes.ledger.update_step(video.id, state="running", remote_id="vid-1")

    counts = cancel_batch(fakes.deps(), batch_id, settle_seconds=0)

    assert counts == {"interrupted": 0, "cancelled": 1}
    assert fakes.client.videos.interrupted == [] and fakes.ledger.step(video.id).state == "cancelled"


def test_finished_work_is_left_as_it_is(fakes):
    batch_id, (ready, done) = batch_of(fakes, 2)
    fakes.ledger.update_step(ready.id, state="ready", remote_id="job-r")
    fakes.ledger.update_step(done.id, state="done", remote_id="job-d")

    counts = cancel_batch(fakes.deps(), batch_id, settle_seconds=0)

    assert counts == {"interrupted": 0, "cancelled": 0}
    assert fakes.ledger.step(ready.id).state == "ready" and fakes.ledger.step(done.id).state == "done"
    assert fakes.client.images.interrupted == []


def test_a_step_that_moves_while_it_is_cancelled_is_cancelled_where_it_is_now(fakes, monkeypatch):
    batch_id, (moving,) = batch_of(fakes, 1)
    fakes.ledger.update_step(moving.id, state="submitted", remote_id="job-1")
    real = fakes.ledger.transition

    def its_poll_moves_it_first(step_id, expected, new_state, **values):
        if expected == ("submitted",):  # the poll saw it working a moment before the cancel's write
            real(step_id, ("submitted",), "running", progress=40.0)
        return real(step_id, expected, new_state, **values)

    monkeypatch.setattr(fakes.ledger, "transition", its_poll_moves_it_first)
    assert cancel_batch(fakes.deps(), batch_id, settle_seconds=0)["cancelled"] == 1
    assert fakes.ledger.step(moving.id).state == "cancelled"
    assert fakes.inflight.released == [moving.id]  # freed once, by the write that cancelled it


def test_a_step_whose_job_finished_meanwhile_keeps_its_paid_output(fakes, monkeypatch):
    batch_id, (finishing,) = batch_of(fakes, 1)
    fakes.ledger.update_step(finishing.id, state="running", remote_id="job-1")
    real = fakes.ledger.transition

    def its_poll_sees_it_done_first(step_id, expected, new_state, **values):
        if expected == ("running",):
            real(step_id, ("running",), "ready", results=[{"url": "https://x/a.png"}])
        return real(step_id, expected, new_state, **values)

    monkeypatch.setattr(fakes.ledger, "transition", its_poll_sees_it_done_first)
    assert cancel_batch(fakes.deps(), batch_id, settle_seconds=0)["cancelled"] == 0
    assert fakes.ledger.step(finishing.id).state == "ready"  # still copied
    assert fakes.inflight.released == []  # its look that saw it done frees the slot, not the cancel
