"""The poll task copies a small job's media itself when the chain's next task is that copy (the wire's
``tasks.definitions._copy_here``), with the engine's copy faked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from letzflow.engine.outcome import NEXT, again
from tasks import definitions
from tasks.messages import COPY_OUTPUTS, SUBMIT_STEP


class Calls:
    def __init__(self, outcome: Any = NEXT) -> None:
        self.copied: list[int] = []
        self.finished: list[int] = []
        self.attempts: list[tuple[int, str, str]] = []
        self.outcome = outcome

    def copy(self, step_id: int) -> Any:
        self.copied.append(step_id)
        return self.outcome

    def record_attempt(self, step_id: int, name: str, note: str, started: Any) -> None:
        self.attempts.append((step_id, name, note))


@pytest.fixture
def calls(monkeypatch) -> Calls:
    c = Calls()
    monkeypatch.setattr(definitions.copying, "copy", c.copy)
    monkeypatch.setattr(definitions.batches, "finish", c.finished.append)
    monkeypatch.setattr(definitions.runtime, "ledger", lambda: c)
    return c


def sig(name: str, *args: Any, options: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return {"task": name, "args": list(args), "kwargs": kwargs, "options": options or {}}


def task_with(*chain: dict[str, Any]) -> Any:
    """A task whose remaining chain is ``chain`` in run order (Celery keeps it reversed)."""
    return SimpleNamespace(request=SimpleNamespace(chain=list(reversed(chain))))


def test_the_copy_of_the_seen_step_runs_here_and_leaves_the_chain(calls):
    task = task_with(sig(COPY_OUTPUTS, 7), sig(SUBMIT_STEP, 8))
    definitions._copy_here(task, 7)
    assert calls.copied == [7] and calls.attempts == [(7, "copy", "ok")]
    assert [s["task"] for s in task.request.chain] == [SUBMIT_STEP]  # the next step's submit goes on
    assert calls.finished == []


def test_a_copy_that_ends_the_item_settles_it_here(calls):
    task = task_with(sig(COPY_OUTPUTS, 7, then_finish=3))
    definitions._copy_here(task, 7)
    assert calls.copied == [7] and calls.finished == [3] and task.request.chain == []


def test_the_last_copy_of_a_chord_header_is_left_to_its_task(calls):
    task = task_with(sig(COPY_OUTPUTS, 7, options={"chord": {"task": "letzflow.finish_item"}}))
    definitions._copy_here(task, 7)
    assert calls.copied == [] and len(task.request.chain) == 1


@pytest.mark.parametrize(
    "chain",
    [(), (sig(COPY_OUTPUTS, 9),), (sig(SUBMIT_STEP, 7),)],
    ids=["no chain", "another step's copy", "not a copy"],
)
def test_nothing_is_copied_unless_the_next_task_is_this_steps_copy(calls, chain):
    task = task_with(*chain)
    definitions._copy_here(task, 7)
    assert calls.copied == [] and len(task.request.chain) == len(chain)


def test_a_copy_to_try_again_stays_on_the_chain_with_the_backoff(calls):
    calls.outcome = again(4.0, "copy failed, retrying: 503")
    task = task_with(sig(COPY_OUTPUTS, 7, then_finish=3))
    definitions._copy_here(task, 7)
    (copy,) = task.request.chain
    assert copy["options"]["countdown"] == 4.0 and calls.finished == []
