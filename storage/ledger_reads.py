"""Reads of the ledger: batches, items, steps and counts (for tasks, the CLI and reports)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from storage import lanes
from storage.ledger_base import (
    STEP_ORDER,
    LedgerBase,
    _select_by_id,
)
from storage.models import (
    Batch,
    Item,
    Step,
)

#: Steps whose webhook token is live: it expires when the step ends, except where the step's POST answer
#: was lost and its job could not be identified (``unconfirmed``): a late call to it names that job.
HOOK_OPEN = ("submitting", "submitted", "running", "unconfirmed")


class Reads(LedgerBase):
    def open_step_by_webhook(self, webhook_hash: str) -> Step | None:
        """The open (or unconfirmed) step whose last POST carried the webhook token of this hash (a read,
        never a write)."""
        with self.session() as s:
            stmt = select(Step).where(col(Step.webhook_hash) == webhook_hash, col(Step.state).in_(HOOK_OPEN))
            return s.exec(stmt).first()

    def ended_step_by_webhook(self, webhook_hash: str) -> bool:
        """Whether the step whose last POST carried the token of this hash has left :data:`HOOK_OPEN` (its
        job was seen ended, or the step was ended): a webhook to it came late, not from a stranger."""
        with self.session() as s:
            stmt = select(Step.id).where(
                col(Step.webhook_hash) == webhook_hash, col(Step.state).not_in(HOOK_OPEN)
            )
            return s.exec(stmt).first() is not None

    def batch(self, batch_id: str) -> Batch | None:
        with self.session() as s:
            return s.get(Batch, batch_id)

    def find_batch(self, name: str, spec_hash: str) -> Batch | None:
        """The newest batch of that name built from the same spec content."""
        with self.session() as s:
            stmt = (
                select(Batch)
                .where(Batch.name == name, Batch.spec_hash == spec_hash, Batch.schedule == None)  # noqa: E711
                .order_by(col(Batch.created_at).desc())
            )
            return s.exec(stmt).first()

    def find_batch_prefix(self, prefix: str) -> list[Batch]:
        with self.session() as s:
            return list(s.exec(select(Batch).where(col(Batch.id).startswith(prefix))).all())

    def step(self, step_id: int) -> Step | None:
        with self.session() as s:
            return s.get(Step, step_id)

    def step_with_batch(self, step_id: int) -> tuple[Step, Batch] | None:
        """A step and its batch, read together (one query where a task would make two)."""
        with self.session() as s:
            row = s.execute(_select_by_id(Step, Batch), {"w_id": step_id}).first()
        return (row[0], row[1]) if row is not None else None

    def step_with_batch_item(self, step_id: int) -> tuple[Step, Batch, Item] | None:
        """A step, its batch and its item, read together (one query where a task would make three)."""
        with self.session() as s:
            row = s.execute(_select_by_id(Step, Batch, Item), {"w_id": step_id}).first()
        return (row[0], row[1], row[2]) if row is not None else None

    def item(self, item_id: int) -> Item | None:
        with self.session() as s:
            return s.get(Item, item_id)

    def batch_id_of_item(self, item_id: int) -> str | None:
        """The batch of an item (one column, no ORM load)."""
        with self.engine.connect() as conn:
            return conn.execute(_ITEM_BATCH_ID, {"w_id": item_id}).scalar_one_or_none()  # type: ignore[no-any-return]

    def item_steps(self, item_id: int) -> list[Step]:
        with self.session() as s:
            stmt = select(Step).where(Step.item_id == item_id).order_by(*STEP_ORDER)
            return list(s.exec(stmt).all())

    def previous_step(self, step: Step) -> Step | None:
        """The step whose output ``step`` works on: the one before on its branch, or the step that split."""
        if step.index == 0:
            return None
        with self.session() as s:
            stmt = select(Step).where(
                Step.item_id == step.item_id,
                Step.variant == step.variant,
                Step.index == step.index - 1,
                col(Step.branch).in_([step.branch, lanes.parent(step.branch)]),
            )
            found = list(s.exec(stmt).all())
        same = [st for st in found if st.branch == step.branch]
        chosen = same or found
        return chosen[0] if chosen else None

    def items(
        self, batch_id: str, states: Sequence[str] | None = None, limit: int | None = None
    ) -> list[Item]:
        with self.session() as s:
            stmt = select(Item).where(Item.batch_id == batch_id)
            if states:
                stmt = stmt.where(col(Item.state).in_(states))
            stmt = stmt.order_by(col(Item.seq))
            if limit:
                stmt = stmt.limit(limit)
            return list(s.exec(stmt).all())

    def iter_items_with_steps(self, batch_id: str, chunk: int = 500) -> Iterator[tuple[Item, list[Step]]]:
        """Every item of a batch with its steps, in item order, a chunk at a time."""
        last = -1
        while True:
            with self.session() as s:
                items = list(
                    s.exec(
                        select(Item)
                        .where(Item.batch_id == batch_id, Item.seq > last)
                        .order_by(col(Item.seq))
                        .limit(chunk)
                    ).all()
                )
                if not items:
                    return
                by_item = _steps_by_item(s, [i.id for i in items if i.id is not None])
            for item in items:
                assert item.id is not None
                yield item, by_item.get(item.id, [])
            last = items[-1].seq

    def steps_of_items(self, item_ids: Sequence[int]) -> dict[int, list[Step]]:
        """Each item's steps (in step order, as :meth:`item_steps`), read in one query."""
        with self.session() as s:
            return _steps_by_item(s, item_ids)

    def item_counts(self, batch_id: str) -> dict[str, int]:
        with self.session() as s:
            rows = s.exec(
                select(Item.state, func.count()).where(Item.batch_id == batch_id).group_by(Item.state)
            ).all()
        return {state: int(n) for state, n in rows}

    def step_counts(self, batch_id: str) -> dict[tuple[int, str, str], int]:
        """(step index, kind, state) -> count."""
        with self.session() as s:
            rows = s.exec(
                select(Step.index, Step.kind, Step.state, func.count())
                .where(Step.batch_id == batch_id)
                .group_by(col(Step.index), col(Step.kind), col(Step.state))
            ).all()
        return {(int(i), k, st): int(n) for i, k, st, n in rows}

    def steps_in(self, batch_id: str, states: Sequence[str]) -> list[Step]:
        with self.session() as s:
            stmt = select(Step).where(Step.batch_id == batch_id, col(Step.state).in_(states))
            return list(s.exec(stmt).all())

    def claimed_remote_ids(self, remote_kind: str, remote_ids: Sequence[str]) -> set[str]:
        if not remote_ids:
            return set()
        with self.session() as s:
            stmt = select(Step.remote_id).where(
                Step.remote_kind == remote_kind, col(Step.remote_id).in_(list(remote_ids))
            )
            return {r for r in s.exec(stmt).all() if r}


_ITEM_BATCH_ID = select(Item.batch_id).where(col(Item.id) == bindparam("w_id"))


def _steps_by_item(session: Session, item_ids: Sequence[int]) -> dict[int, list[Step]]:
    by_item: dict[int, list[Step]] = {i: [] for i in item_ids}
    if item_ids:
        stmt = select(Step).where(col(Step.item_id).in_(list(item_ids))).order_by(*STEP_ORDER)
        for st in session.exec(stmt).all():
            by_item[st.item_id].append(st)
    return by_item
