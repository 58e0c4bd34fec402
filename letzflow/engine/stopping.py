"""Ending work early: a step failed or cancelled, its job interrupted, a batch stopped or paused.

Each frees what the step held (its in-flight slot) in the same call, so no caller can forget to. None
sends a message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from letzai.errors import InsufficientCredits, LetzAIError
from letzflow.engine.deps import Deps
from storage.models import Step

if TYPE_CHECKING:  # the client's module imports requests: `letzflow run` imports this module, needs neither
    from letzai.client import LetzAIClient

log = logging.getLogger(__name__)


def fail_step(
    deps: Deps, step: Step, expected: tuple[str, ...], message: str, exc: BaseException | None = None
) -> None:
    """Move the step to ``failed`` (from one of ``expected``) with ``message``, and free its slot.

    A step no longer in ``expected`` was moved by another run of its work (a duplicate message), whose job
    may hold the slot: then nothing changes here."""
    if deps.ledger.transition(
        step.id,  # type: ignore[arg-type]
        expected,
        "failed",
        error_class=type(exc).__name__ if exc else "StepFailed",
        error_status=getattr(exc, "status", None),
        error_message=message[:2000],
        finished_at=deps.now(),
        next_poll_at=None,
    ):
        deps.inflight.release(step.id)  # type: ignore[arg-type]


#: The states a cancel ends; a ``ready`` or ``copying`` step's job is done and paid, and is still copied.
CANCELLABLE = ("planned", "submitting", "submitted", "running")
#: Reads of a step that keeps moving while it is cancelled (each move is one step along its way).
CANCEL_READS = 4


def cancel_step(deps: Deps, step: Step) -> bool:
    """Cancel one step: interrupt its image job if one is in flight, release its slot. A step that moved
    meanwhile (``submitted → running``, a POST that answered) is read again and cancelled from where it is
    now; False when it left the cancellable states (ended, or its job finished)."""
    for _ in range(CANCEL_READS):
        if step.state not in CANCELLABLE:
            return False
        if step.state in ("submitted", "running"):
            interrupt_job(deps.client, step)
        if deps.ledger.transition(
            step.id,  # type: ignore[arg-type]
            (step.state,),
            "cancelled",
            finished_at=deps.now(),
            next_poll_at=None,
            error_message="cancelled by the user",
        ):
            deps.inflight.release(step.id)  # type: ignore[arg-type]
            return True
        fresh = deps.ledger.step(step.id)  # type: ignore[arg-type]
        if fresh is None:
            return False
        step = fresh
    log.warning("step %s kept moving while it was cancelled; its own next run cancels it", step.id)
    return False


def interrupt_job(client: LetzAIClient, step: Step) -> None:
    """Best effort: only images can be interrupted through the public API."""
    if step.remote_kind != "image" or not step.remote_id:
        return
    try:
        client.images.interrupt(step.remote_id)
    except LetzAIError as exc:
        log.warning("step %s: interrupting job %s failed: %s", step.id, step.remote_id, exc.message)


def halt_message(state: str, batch_id: str, exc: LetzAIError) -> str:
    """What ``letzflow status`` shows for a batch stopped (401/403) or paused (402), and how to resume it."""
    reason = getattr(exc, "api_message", exc.message)
    if state == "paused" or isinstance(exc, InsufficientCredits):
        return (
            f"paused: LetzAI is out of credits (HTTP 402: {reason}). Top up the account or organization, "
            f"then run `letzflow resume {batch_id}`; nothing done so far is paid again."
        )
    return (
        f"stopped: LetzAI refused the request (HTTP {getattr(exc, 'status', '?')}: {reason}). Check "
        f"LETZAI_API_KEY (and LETZAI_ORGANIZATION_ID), then run `letzflow resume {batch_id}`."
    )


def halt_batch(deps: Deps, batch_id: str, state: str, exc: LetzAIError) -> bool:
    """Stop (401/403) or pause (402) a running batch once; later calls change nothing."""
    changed = deps.ledger.set_batch_state(batch_id, ("running",), state, halt_message(state, batch_id, exc))
    if changed:
        log.warning("batch %s %s", batch_id, halt_message(state, batch_id, exc))
        deps.inflight.forget_batch(batch_id)  # its waiters leave the line: other batches get the slots
    return changed
