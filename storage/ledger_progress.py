"""Fan-in and recovery: settling an item once, the batch barrier, and what the reconciler looks for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlmodel import col, select

from storage import lanes
from storage.ledger_base import (
    ITEM_OPEN,
)
from storage.ledger_reads import Reads
from storage.models import (
    ITEM_TERMINAL,
    STEP_INFLIGHT,
    STEP_TERMINAL,
    Batch,
    Item,
    Step,
    utcnow,
)


class Progress(Reads):
    """Fan-in and recovery queries (they read steps as :class:`Reads` does)."""

    def settle_item(self, item_id: int) -> str | None:
        """Move a queued item to done/failed/cancelled once all its steps are terminal.

        Returns the new state when this call settled it, else None (not finished yet, or already settled:
        counting an item twice is impossible).
        """
        steps = self.item_steps(item_id)
        if not steps or any(st.state not in STEP_TERMINAL for st in steps):
            return None
        if all(st.state == "done" for st in steps):
            new_state, error = "done", None
        elif all(st.state in ("done", "skipped") for st in steps):
            # only a branch whose image never came (an edit gave fewer than asked): the rest is done
            new_state = "done"
            notes = {st.error_message or "skipped" for st in steps if st.state == "skipped"}
            error = "; ".join(sorted(notes))
        elif any(st.state == "cancelled" for st in steps) and not any(st.state == "failed" for st in steps):
            new_state, error = "cancelled", "cancelled"
        else:
            failed = [st for st in steps if st.state in ("failed", "unconfirmed")]
            multi = any(st.variant for st in steps)
            error = (
                "; ".join(
                    f"step {st.index + 1} {st.kind}"
                    + (f" ({where})" if (where := lanes.describe(st.variant, st.branch, multi)) else "")
                    + f": {st.error_message}"
                    for st in failed
                )
                or "failed"
            )
            new_state = "failed"
        params = {"w_id": item_id, "v_state": new_state, "v_error": error, "v_finished_at": utcnow()}
        settled = self._write(_SETTLE_ITEM, params)
        return new_state if settled == 1 else None

    def batch_settled(self, batch_id: str) -> bool:
        """True when every item of the batch is terminal."""
        with self.engine.connect() as conn:
            open_item = conn.execute(_OPEN_ITEM, {"w_batch": batch_id}).first()
        return open_item is None

    # -- reconciler queries ------------------------------------------------------------------------
    def stalled_items(
        self,
        now: datetime,
        grace: timedelta,
        limit: int = 500,
        *,
        due_slack: timedelta | None = None,
        crash_sweep: bool = False,
        all_kicks_lost: bool = False,
    ) -> list[Item]:
        """Queued items of running batches with a step nobody touched in time, or past its deadline.

        ``due_slack``: for a while after a worker died, a step counts as stalled as soon as its planned look
        is this late (``next_poll_at`` carries 30 s of slack over the planned look) instead of after
        ``grace``. ``crash_sweep``: the pass that found a worker dead takes every item with an open step,
        except steps whose next look is planned ahead (a dead worker may have held any of them; a
        duplicate message costs a task run, a held one an hour). Items re-kicked less than ``grace`` ago
        (2 s for a crash sweep) are left alone, unless ``all_kicks_lost`` (a crash sweep after Redis lost
        its data: every message sent before it went, however recent).
        """
        cutoff = now - grace
        slack = timedelta(seconds=30)
        if crash_sweep:
            planned_ahead = col(Step.state).in_(["submitted", "running"]) & (
                col(Step.next_poll_at) > now + slack
            )
            stalled: Any = ~planned_ahead | (col(Step.deadline_at) < now)
            kicked_before = now if all_kicks_lost else now - timedelta(seconds=2)
        else:
            due = now + slack - due_slack if due_slack is not None else cutoff
            stalled = or_(
                col(Step.next_poll_at) < due,
                col(Step.deadline_at) < now,
                (col(Step.next_poll_at).is_(None)) & (col(Step.updated_at) < cutoff),
            )
            kicked_before = cutoff
        with self.session() as s:
            overdue = (
                select(Step.item_id).where(col(Step.state).not_in(list(STEP_TERMINAL)), stalled).distinct()
            )
            stmt = (
                select(Item)
                .join(Batch, col(Batch.id) == Item.batch_id)
                .where(
                    Batch.state == "running",
                    Item.state == "queued",
                    col(Item.id).in_(overdue),
                    or_(col(Item.kicked_at).is_(None), col(Item.kicked_at) < kicked_before),
                )
                .limit(limit)
            )
            return list(s.exec(stmt).all())

    def unsettled_finished_items(self, limit: int = 500) -> list[int]:
        """Queued items all of whose steps are terminal (their fan-in message was lost)."""
        with self.session() as s:
            open_steps = select(Step.item_id).where(col(Step.state).not_in(list(STEP_TERMINAL)))
            stmt = select(Item.id).where(Item.state == "queued", col(Item.id).not_in(open_steps)).limit(limit)
            return [i for i in s.exec(stmt).all() if i is not None]

    def batches_in(self, states: Sequence[str]) -> list[Batch]:
        with self.session() as s:
            return list(s.exec(select(Batch).where(col(Batch.state).in_(list(states)))).all())

    def inflight_steps(self) -> list[Step]:
        with self.session() as s:
            return list(s.exec(select(Step).where(col(Step.state).in_(list(STEP_INFLIGHT)))).all())

    def reset_failed(self, batch_id: str) -> int:
        """Re-plan failed, skipped and cancelled steps of unfinished items (done steps are kept)."""
        with self.session() as s:
            failed_items = select(Item.id).where(
                Item.batch_id == batch_id, col(Item.state).in_(["failed", "cancelled"])
            )
            s.exec(  # type: ignore[call-overload]
                update(Step)
                .where(
                    col(Step.item_id).in_(failed_items),
                    col(Step.state).in_(["failed", "skipped", "cancelled"]),
                )
                .values(
                    state="planned",
                    remote_id=None,
                    error_class=None,
                    error_status=None,
                    error_message=None,
                    progress=0.0,
                    next_poll_at=None,
                    deadline_at=None,
                    results=[],
                    updated_at=utcnow(),
                )
            )
            result = s.exec(  # type: ignore[call-overload]
                update(Item)
                .where(col(Item.batch_id) == batch_id, col(Item.state).in_(["failed", "cancelled"]))
                .values(state="pending", error=None, finished_at=None)
            )
            s.commit()
            return int(result.rowcount)


_SETTLE_ITEM = (
    update(Item)
    .where(col(Item.id) == bindparam("w_id"), col(Item.state).not_in(list(ITEM_TERMINAL)))
    .values(
        state=bindparam("v_state"),
        error=bindparam("v_error"),
        finished_at=bindparam("v_finished_at"),
        finish_runs=Item.finish_runs + 1,
    )
)
_OPEN_ITEM = (
    select(Item.id).where(col(Item.batch_id) == bindparam("w_batch"), col(Item.state).in_(ITEM_OPEN)).limit(1)
)
