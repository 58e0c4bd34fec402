"""The ledger's guarded transitions and fan-in barrier, on SQLite."""

from __future__ import annotations

import os
import threading

import pytest

from storage.db import LedgerError, get_engine
from storage.ledger import Ledger


def test_plan_has_one_step_per_item_step_and_variant(ledger, batch):
    assert batch.items_total == 2
    counts = ledger.step_counts(batch.id)
    assert counts == {(0, "generate", "planned"): 4, (1, "upscale", "planned"): 4}
    keys = {s.idempotency_key for item in ledger.items(batch.id) for s in ledger.item_steps(item.id)}
    assert len(keys) == 8


def test_only_one_caller_can_begin_a_submit(ledger, batch):
    step = ledger.item_steps(ledger.items(batch.id)[0].id)[0]
    wins = []

    def attempt():
        wins.append(ledger.begin_submit(step.id, batch.id))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    fresh = ledger.step(step.id)
    assert fresh.state == "submitting" and fresh.submit_attempts == 1


def test_no_submit_unless_the_batch_is_running(ledger, batch):
    step = ledger.item_steps(ledger.items(batch.id)[0].id)[0]
    ledger.set_batch_state(batch.id, ("running",), "paused", "402")
    assert not ledger.begin_submit(step.id, batch.id)
    assert ledger.step(step.id).state == "planned"


def test_max_jobs_is_never_exceeded(ledger, batch):
    assert [ledger.claim_job(batch.id) for _ in range(5)] == [True, True, True, False, False]
    ledger.unclaim_job(batch.id)
    assert ledger.claim_job(batch.id)


def test_bump_submit_lets_one_recoverer_resubmit(ledger, batch):
    step = ledger.item_steps(ledger.items(batch.id)[0].id)[0]
    ledger.begin_submit(step.id, batch.id)
    assert ledger.bump_submit(step.id, 1)
    assert not ledger.bump_submit(step.id, 1)


def test_settle_item_counts_once_and_only_when_all_steps_ended(ledger, batch):
    item = ledger.items(batch.id)[0]
    steps = ledger.item_steps(item.id)
    for st in steps[:-1]:
        ledger.transition(st.id, ("planned",), "done")
    assert ledger.settle_item(item.id) is None
    ledger.transition(steps[-1].id, ("planned",), "failed", error_message="HTTP 400: bad width")
    assert ledger.settle_item(item.id) == "failed"
    assert ledger.settle_item(item.id) is None
    settled = ledger.item(item.id)
    assert settled.finish_runs == 1 and "bad width" in settled.error


def test_reset_failed_keeps_done_steps(ledger, batch):
    item = ledger.items(batch.id)[0]
    steps = ledger.item_steps(item.id)
    ledger.transition(steps[0].id, ("planned",), "done", remote_id="r1")
    for st in steps[1:]:
        ledger.transition(st.id, ("planned",), "failed")
    ledger.settle_item(item.id)
    assert ledger.reset_failed(batch.id) == 1
    states = [ledger.step(s.id).state for s in steps]
    assert states[0] == "done" and set(states[1:]) == {"planned"}
    assert ledger.item(item.id).state == "pending"


def test_unwritable_ledger_path_is_a_clear_error(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.geteuid() == 0:
            pytest.skip("root can write anywhere")
        with pytest.raises(LedgerError, match="not writable"):
            get_engine(f"sqlite:///{locked / 'l.db'}")
    finally:
        locked.chmod(0o700)


def test_uncreatable_ledger_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match="DATABASE_URL"):
        get_engine(f"sqlite:///{blocker / 'sub' / 'l.db'}")


SPLIT = [
    {"index": 0, "kind": "generate", "remote_kind": "image", "variants": 1},
    {"index": 1, "kind": "edit", "remote_kind": "image_edit", "variants": 1, "completions": 3},
    {"index": 2, "kind": "upscale", "remote_kind": "upscale", "variants": 1},
    {"index": 3, "kind": "animate", "remote_kind": "video", "variants": 1},
]


def test_branch_steps_find_the_step_they_work_on(ledger):
    batch = ledger.create_batch(name="s", spec_hash="h", steps=SPLIT, items=[("a", {})])
    (item,) = ledger.items(batch.id)
    steps = ledger.item_steps(item.id)
    assert [(s.index, s.branch) for s in steps] == [
        (0, ""), (1, ""), (2, "0"), (2, "1"), (2, "2"), (3, "0"), (3, "1"), (3, "2"),
    ]  # fmt: skip
    assert len({s.idempotency_key for s in steps}) == 8
    by = {(s.index, s.branch): s for s in steps}
    assert ledger.previous_step(by[2, "1"]).id == by[1, ""].id  # the split: its image 2
    assert ledger.previous_step(by[3, "1"]).id == by[2, "1"].id  # then along its own branch


def test_an_older_ledger_gets_the_branch_column(ledger):
    from sqlalchemy import inspect, text

    from storage.db import reset_engines

    url = ledger.engine.url.render_as_string(hide_password=False)
    with ledger.engine.begin() as conn:
        conn.execute(text("ALTER TABLE step DROP COLUMN branch"))
    reset_engines()
    reopened = Ledger(url)
    assert "branch" in {c["name"] for c in inspect(reopened.engine).get_columns("step")}
    batch = reopened.create_batch(name="old", spec_hash="h", steps=SPLIT, items=[("a", {})])
    assert len(reopened.item_steps(reopened.items(batch.id)[0].id)) == 8


def test_a_crash_sweep_after_redis_lost_its_data_takes_items_kicked_just_before(ledger, batch):
    from datetime import timedelta

    from storage.models import utcnow

    kicked = ledger.claim_pending(batch.id, 2)  # fed a moment ago: their messages went with Redis's data
    assert len(kicked) == 2
    now = utcnow()
    # a worker death: items kicked in the last 2 s are left alone (their messages may be on the queue)
    assert ledger.stalled_items(now, timedelta(seconds=10), crash_sweep=True) == []
    swept = ledger.stalled_items(now, timedelta(seconds=10), crash_sweep=True, all_kicks_lost=True)
    assert sorted(i.id for i in swept) == kicked


def test_the_steps_of_several_items_in_one_read_are_each_items_steps_in_order(ledger, batch):
    ids = [item.id for item in ledger.items(batch.id)]
    assert len(ids) == 2
    together = ledger.steps_of_items(ids)
    assert list(together) == ids
    for item_id in ids:
        one = ledger.item_steps(item_id)
        assert len(one) == 4  # generate, upscale: for each of 2 variants
        assert [s.id for s in together[item_id]] == [s.id for s in one]
    assert ledger.steps_of_items([]) == {}
