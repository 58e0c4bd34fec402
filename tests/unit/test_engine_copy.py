"""The copy decision (:func:`letzflow.engine.copy.copy`) with fakes: an SQLite ledger, a fake media host,
the in-memory media store, a fixed clock. No Celery, no network, no runtime."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses

from letzai.errors import ConnectError, RateLimited, error_for_status
from letzai.media import open_media
from letzflow.engine.copy import copy
from letzflow.engine.outcome import NEXT
from storage.layout import media_key
from tests.engine_fakes import NOW, Fakes, one_step_batch, sha256

PNG = b"\x89PNG" + b"x" * 5000
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"v" * 300


@pytest.fixture
def fakes(ledger):
    return Fakes(ledger)


def ready(fakes, results, remote_kind="image", kind="generate", errors_in_row=0):
    """A step of a one-item batch, ``ready`` with ``results`` (what its poll stored)."""
    step = one_step_batch(fakes.ledger, remote_kind, kind)
    fakes.ledger.update_step(step.id, state="ready", results=results, errors_in_row=errors_in_row)
    return fakes.ledger.step(step.id)


def key_of(fakes, step, ext, output=0, outputs=1):
    batch = fakes.ledger.batch(step.batch_id)
    return media_key(batch.name, batch.id, "sku-1", 0, step.kind, ext, output=output, outputs=outputs)


def test_every_output_is_stored_verified_and_the_step_is_done(fakes):
    fakes.host.media = {"https://cdn.test/a": (PNG, "image/png"), "https://cdn.test/b": (MP4, "video/mp4")}
    step = ready(
        fakes,
        [{"url": "https://cdn.test/a", "image_id": "img-a"}, {"url": "https://cdn.test/b", "image_id": None}],
    )

    assert copy(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    first, second = key_of(fakes, step, "png", 0, 2), key_of(fakes, step, "mp4", 1, 2)
    assert after.state == "done" and after.finished_at is not None and after.next_poll_at is None
    assert after.outputs == [
        {
            "key": first,
            "sha256": sha256(PNG),
            "size": len(PNG),
            "content_type": "image/png",
            "image_id": "img-a",
            "source_url": "https://cdn.test/a",
        },
        {
            "key": second,
            "sha256": sha256(MP4),
            "size": len(MP4),
            "content_type": "video/mp4",
            "image_id": None,
            "source_url": "https://cdn.test/b",
        },
    ]
    assert fakes.store.get_bytes(first) == PNG and fakes.store.get_bytes(second) == MP4


def test_a_broken_download_is_retried_and_the_step_stays_copying(fakes):
    fakes.host.media = {"https://cdn.test/a": ConnectError("media host unreachable (ConnectionError)")}
    step = ready(fakes, [{"url": "https://cdn.test/a", "image_id": "img-a"}])

    outcome = copy(fakes.deps(), step.id)

    assert outcome.action == "again" and outcome.note.startswith("copy failed, retrying:")
    after = fakes.ledger.step(step.id)
    assert after.state == "copying" and after.errors_in_row == 1 and after.error_class == "ConnectError"
    assert after.error_message == "copy: media host unreachable (ConnectionError)"
    assert after.next_poll_at.replace(tzinfo=None) == (NOW + timedelta(seconds=outcome.delay + 60)).replace(
        tzinfo=None
    )


def test_a_run_whose_download_broke_leaves_a_step_another_run_finished_as_it_is(fakes, monkeypatch):
    fakes.host.media = {"https://cdn.test/a": (PNG, "image/png")}
    step = ready(fakes, [{"url": "https://cdn.test/a", "image_id": "img-a"}])
    real_open = fakes.host.open

    def the_other_run_finishes_first(url):
        # a duplicate run of this copy stores the image and ends the step while this one's download breaks
        monkeypatch.setattr(fakes.host, "open", real_open)
        assert copy(fakes.deps(), step.id) == NEXT
        raise ConnectError("media host unreachable (ConnectionError)")

    monkeypatch.setattr(fakes.host, "open", the_other_run_finishes_first)
    assert copy(fakes.deps(), step.id).action == "again"
    after = fakes.ledger.step(step.id)
    assert after.state == "done" and after.error_class is None and after.error_message is None
    assert after.errors_in_row == 0 and after.next_poll_at is None
    assert copy(fakes.deps(), step.id) == NEXT  # its retry finds the step done


def test_a_short_download_is_not_stored_and_is_retried(fakes):
    fakes.host.media = {"https://cdn.test/a": (PNG, "image/png")}
    fakes.host.short = {"https://cdn.test/a"}
    step = ready(fakes, [{"url": "https://cdn.test/a", "image_id": "img-a"}])

    outcome = copy(fakes.deps(), step.id)

    assert outcome.action == "again"
    assert fakes.ledger.step(step.id).error_class == "StorageError"
    assert fakes.store.list_keys() == []


def test_the_retry_copies_what_the_failed_attempt_could_not(fakes):
    fakes.host.media = {"https://cdn.test/a": ConnectError("unreachable")}
    step = ready(fakes, [{"url": "https://cdn.test/a", "image_id": "img-a"}])
    copy(fakes.deps(), step.id)
    fakes.host.media = {"https://cdn.test/a": (PNG, "image/png")}

    assert copy(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    assert after.state == "done" and after.errors_in_row == 0 and after.error_message is None
    assert fakes.host.opened == ["https://cdn.test/a", "https://cdn.test/a"]


def test_media_that_is_gone_fails_the_step_at_once(fakes):
    # what letzai.media.open_media raises for a 404
    fakes.host.media = {"https://cdn.test/a": error_for_status(404, "media download failed: HTTP 404")}
    step = ready(fakes, [{"url": "https://cdn.test/a", "image_id": "img-a"}])

    assert copy(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    assert after.state == "failed" and after.error_class == "NotFound"
    assert after.error_message == "copying the media failed: HTTP 404: media download failed: HTTP 404"
    assert after.finished_at is not None


def test_the_copy_gives_up_after_its_last_attempt(fakes):
    fakes.host.media = {"https://cdn.test/a": ConnectError("unreachable")}
    step = ready(fakes, [{"url": "https://cdn.test/a", "image_id": "img-a"}], errors_in_row=7)

    assert copy(fakes.deps(), step.id) == NEXT

    after = fakes.ledger.step(step.id)
    assert after.state == "failed" and after.error_message == "copying the media failed: unreachable"


def test_a_reused_output_is_copied_inside_the_store_without_a_download(fakes):
    earlier = fakes.store.put_bytes("old/batch/sku-1/01-generate.png", PNG, "image/png")
    reuse = {
        "url": "https://cdn.test/old",
        "image_id": "img-old",
        "reuse_key": earlier.key,
        "sha256": earlier.sha256,
        "size": earlier.size,
        "content_type": "image/png",
        "origin_batch": "b-old",
        "origin_step": 7,
        "origin_remote_id": "job-old",
    }
    step = ready(fakes, [reuse])

    assert copy(fakes.deps(), step.id) == NEXT

    (output,) = fakes.ledger.step(step.id).outputs
    assert output["key"] == key_of(fakes, step, "png") and output["sha256"] == sha256(PNG)
    assert output["reused_from"] == {"batch": "b-old", "step": 7, "key": earlier.key, "letzai_id": "job-old"}
    assert fakes.host.opened == []


def test_a_step_not_ready_is_left_alone(fakes):
    step = one_step_batch(fakes.ledger)

    assert copy(fakes.deps(), step.id) == NEXT
    assert fakes.ledger.step(step.id).state == "planned" and fakes.host.opened == []


@responses.activate
def test_a_media_hosts_retry_after_is_waited_at_least(fakes):
    # the real download (letzai.media.open_media) against a host answering 429 with Retry-After
    responses.get("https://cdn.test/busy", status=429, headers={"Retry-After": "45"})
    with pytest.raises(RateLimited) as raised:
        open_media("https://cdn.test/busy")
    assert raised.value.retry_after == 45.0
    fakes.host.media = {"https://cdn.test/busy": raised.value}
    step = ready(fakes, [{"url": "https://cdn.test/busy", "image_id": "img-b"}])

    outcome = copy(fakes.deps(), step.id)

    assert outcome.action == "again" and outcome.delay == 45.0  # the backoff of a first failure is 1-2 s
    assert fakes.ledger.step(step.id).errors_in_row == 1  # counted: the copy still gives up after 8
