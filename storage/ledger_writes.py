"""Guarded writes: a step, item or batch moves only from the state the caller expects.

Two workers can never both move a step from ``planned`` to ``submitting``: the UPDATE names the state it
expects and only one of them sees a changed row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, update
from sqlmodel import col, select

from storage.ledger_base import (
    BATCH_TABLE,
    ITEM_TABLE,
    STEP_TABLE,
    LedgerBase,
    _update_by_id,
)
from storage.models import (
    Attempt,
    Batch,
    Item,
    Step,
    utcnow,
)


class StepWrites(LedgerBase):
    def transition(self, step_id: int, expected: Sequence[str], new_state: str, **values: Any) -> bool:
        """Move a step to ``new_state`` only if it is in one of ``expected``; True when this call did it."""
        values.setdefault("updated_at", utcnow())
        values["state"] = new_state
        return self._update(STEP_TABLE, step_id, values, guard="state", expected=expected) == 1

    def polled(self, step_id: int, expected: Sequence[str], new_state: str, **values: Any) -> bool:
        """A GET of the step's job answered: count it (``polls + 1``) and move the step as :meth:`transition`.

        One write where counting and moving took two; the count is lost only when the guard refuses (the
        step was moved meanwhile, e.g. cancelled), and then no longer matters.
        """
        values.setdefault("updated_at", utcnow())
        values["state"] = new_state
        bumped = self._update(STEP_TABLE, step_id, values, guard="state", expected=expected, bumps=("polls",))
        return bumped == 1

    def begin_submit(self, step_id: int, batch_id: str) -> bool:
        """planned → submitting, only while the batch is running: the one gate before a POST."""
        return self.begin_submit_counted(step_id, batch_id) is not None

    def begin_submit_counted(
        self, step_id: int, batch_id: str, by: str | None = None, webhook_hash: str | None = None
    ) -> int | None:
        """:meth:`begin_submit`, answering the step's ``submit_attempts`` after it (None: not this call).

        The count comes back with the update (``RETURNING``), so the caller need not read the step again.
        ``by``: the worker sending the POST (``submitting_by``); ``webhook_hash``: its webhook token's hash.
        """
        params = {"w_id": step_id, "w_batch": batch_id, "v_now": utcnow(), "v_by": by, "v_hook": webhook_hash}
        with self.engine.begin() as conn:
            row = conn.execute(_BEGIN_SUBMIT, params).first()
        return int(row[0]) if row is not None else None

    def bump_submit(
        self, step_id: int, seen_attempts: int, by: str | None = None, webhook_hash: str | None = None
    ) -> bool:
        """Take the right to re-POST a ``submitting`` step: only one caller wins per attempt number."""
        now = utcnow()
        stmt = (
            update(Step)
            .where(
                col(Step.id) == step_id,
                col(Step.state) == "submitting",
                col(Step.submit_attempts) == seen_attempts,
            )
            .values(
                submit_attempts=seen_attempts + 1,
                submitting_since=now,
                updated_at=now,
                errors_in_row=0,
                error_class=None,  # none of this POST's end is known yet (see tasks.lost_answers)
                submitting_by=by,
                webhook_hash=webhook_hash,
            )
        )
        return self._write(stmt) == 1

    def unclaim_job(self, batch_id: str) -> None:
        """Give back a job counted by :meth:`claim_job` whose POST certainly created nothing."""
        self._write(
            update(Batch)
            .where(col(Batch.id) == batch_id, col(Batch.jobs_submitted) > 0)
            .values(jobs_submitted=Batch.jobs_submitted - 1)
        )

    def update_step(self, step_id: int, *, while_in: Sequence[str] = (), **values: Any) -> bool:
        """Write ``values`` to the step; with ``while_in``, only while its state is one of those (another run
        of its work may have moved it on). True when the row was written."""
        values.setdefault("updated_at", utcnow())
        if while_in:
            return self._update(STEP_TABLE, step_id, values, guard="state", expected=while_in) == 1
        return self._update(STEP_TABLE, step_id, values) == 1

    def bump_polls(self, step_id: int, **values: Any) -> None:
        values.setdefault("updated_at", utcnow())
        self._update(STEP_TABLE, step_id, values, bumps=("polls",))

    def attempts(self, step_id: int) -> list[Attempt]:
        """A step's task executions, oldest first."""
        with self.session() as s:
            stmt = select(Attempt).where(Attempt.step_id == step_id).order_by(col(Attempt.id))
            return list(s.exec(stmt).all())

    def record_attempt(
        self, step_id: int, task: str, outcome: str, started: datetime, error: str | None = None
    ) -> None:
        duration = int((utcnow() - started).total_seconds() * 1000)
        with self.engine.begin() as conn:
            conn.execute(
                _INSERT_ATTEMPT,
                {
                    "step_id": step_id,
                    "task": task,
                    "outcome": outcome,
                    "error": error,
                    "started_at": started,
                    "duration_ms": duration,
                },
            )
            conn.execute(_update_by_id(STEP_TABLE, (), None, ("attempts",)), {"w_id": step_id})

    def set_batch_state(
        self,
        batch_id: str,
        expected: Sequence[str],
        new_state: str,
        message: str | None = None,
        **values: Any,
    ) -> bool:
        vals: dict[str, Any] = {"state": new_state, **values}
        if message is not None:
            vals["message"] = message
        return self._update(BATCH_TABLE, batch_id, vals, guard="state", expected=expected) == 1

    def update_batch(self, batch_id: str, **values: Any) -> None:
        self._update(BATCH_TABLE, batch_id, values)

    def claim_job(self, batch_id: str) -> bool:
        """Count one more submitted job against the batch's ``max_jobs``; False once the cap is reached."""
        return self._write(_CLAIM_JOB, {"w_id": batch_id}) == 1

    def set_item_state(self, item_id: int, expected: Sequence[str], new_state: str, **values: Any) -> bool:
        values["state"] = new_state
        return self._update(ITEM_TABLE, item_id, values, guard="state", expected=expected) == 1

    def claim_pending(self, batch_id: str, count: int) -> list[int]:
        """Move up to ``count`` pending items (in feed order) to queued, atomically; their ids."""
        now = utcnow()
        pending = (
            select(Item.id)
            .where(Item.batch_id == batch_id, Item.state == "pending")
            .order_by(col(Item.seq))
            .limit(count)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(
                update(Item)
                .where(col(Item.id).in_(pending.scalar_subquery()), col(Item.state) == "pending")
                .values(state="queued", kicked_at=now)
                .returning(col(Item.id))
            ).all()
        return sorted(int(r[0]) for r in rows if r[0] is not None)

    def finish_batch(self, batch_id: str, manifest_key: str) -> bool:
        """finalizing → done with its manifest key; True for the one caller whose update did it."""
        stmt = (
            update(Batch)
            .where(col(Batch.id) == batch_id, col(Batch.state) == "finalizing")
            .values(
                state="done",
                finished_at=utcnow(),
                manifest_key=manifest_key,
                finalize_runs=Batch.finalize_runs + 1,
            )
        )
        return self._write(stmt) == 1

    def save_item_fields(self, item_id: int, fields: dict[str, Any]) -> None:
        """Replace an item's fields (e.g. the URL its local photo was uploaded to, reused on retries)."""
        self._write(update(Item).where(col(Item.id) == item_id).values(fields=fields))


_BEGIN_SUBMIT = (
    update(Step)
    .where(
        col(Step.id) == bindparam("w_id"),
        col(Step.state) == "planned",
        select(Batch.id).where(col(Batch.id) == bindparam("w_batch"), col(Batch.state) == "running").exists(),
    )
    .values(
        state="submitting",
        submitting_since=bindparam("v_now"),
        updated_at=bindparam("v_now"),
        submit_attempts=Step.submit_attempts + 1,
        error_class=None,
        errors_in_row=0,
        submitting_by=bindparam("v_by"),
        webhook_hash=bindparam("v_hook"),
    )
    .returning(col(Step.submit_attempts))
)
_CLAIM_JOB = (
    update(Batch)
    .where(
        col(Batch.id) == bindparam("w_id"),
        or_(col(Batch.max_jobs).is_(None), col(Batch.jobs_submitted) < col(Batch.max_jobs)),
    )
    .values(jobs_submitted=Batch.jobs_submitted + 1)
)
_INSERT_ATTEMPT = insert(Attempt)
