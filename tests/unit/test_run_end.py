"""A task run whose work goes on in another message ends as a plain return (``tasks.run_end``), through
Celery's own tracer: the re-sent message carries the rest of the chain, nothing is sent on from the run,
and where a return would count (a chord header's last task) Celery's Retry/Ignore are kept."""

from __future__ import annotations

import pytest
from celery import Celery
from celery.app.trace import build_tracer
from celery.canvas import Signature

from tasks.run_end import LetzflowTask, end_run, run_again

NEXT = {"task": "t.next", "args": [7], "kwargs": {}, "options": {}, "subtask_type": None, "immutable": True}


@pytest.fixture
def sent(monkeypatch):
    """Every message published, as (task name, its options' chain)."""
    out: list[tuple[str, list]] = []

    def apply_async(sig, *args, **kwargs):
        out.append((sig.task, [dict(x)["task"] for x in (sig.options.get("chain") or [])]))

    monkeypatch.setattr(Signature, "apply_async", apply_async)
    return out


def traced(body, **request):
    """Run ``body`` as task ``t.step`` (in a fresh app: one body per name) through Celery's tracer."""
    app = Celery("run-end-test", broker="memory://", backend="cache+memory://", set_as_current=False)
    task = app.task(bind=True, base=LetzflowTask, name="t.step", ignore_result=True)(body)
    trace = build_tracer(task.name, task, app=app, eager=False)
    return trace("run-1", [7], {}, {"id": "run-1", "chain": [dict(NEXT)], **request})


def test_run_again_resends_the_run_with_its_chain_and_sends_nothing_on(sent):
    def body(self, step_id):
        run_again(self, 3.0)

    result = traced(body)
    assert result.info is None  # a plain return: no Retry, no ExceptionInfo
    assert sent == [("t.step", ["t.next"])]  # the retry message, carrying the chain; not the next task


def test_end_run_sends_nothing_at_all(sent):
    def body(self, step_id):
        end_run(self)

    result = traced(body)
    assert result.info is None
    assert sent == []


def test_the_last_task_of_a_chord_header_keeps_celerys_retry_and_ignore(sent):
    def again(self, step_id):
        run_again(self, 3.0)

    def park(self, step_id):
        end_run(self)

    chord = {"task": "t.join", "args": [], "kwargs": {}, "options": {}, "subtask_type": None}
    retried = traced(again, chord=chord, group="g-1")
    assert retried.info is not None and retried.info.state == "RETRY"
    assert sent == [("t.step", ["t.next"])]
    sent.clear()
    ignored = traced(park, chord=chord, group="g-1")
    assert ignored.info is not None and ignored.info.state == "IGNORED" and sent == []


def test_a_run_that_returns_still_sends_its_chain_on(sent):
    def body(self, step_id):
        return "next"

    traced(body)
    assert sent == [("t.next", [])]
