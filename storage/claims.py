"""Who owns what, decided once in the ledger: remote jobs found after a lost answer, unconfirmed steps,
and schedule firings.

- A step whose POST answer arrived owns that job id, even if another step adopted it from a list first:
  :meth:`Claims.take_over` moves the id to the answering step and sends the adopter back to reconciling.
- An ``unconfirmed`` step (its lost answer could not be matched to a listed job) is only re-sent when an
  operator says so: :meth:`Claims.reopen_unconfirmed`.
- A schedule firing is claimed with a unique (schedule, time) row, so any number of beats start it once.

Every method is one transaction; SQL errors are the ledger's (``sqlalchemy.exc``), as in
:mod:`storage.ledger`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import STEP_TERMINAL, ContentClaim, Item, ScheduleFiring, Step, utcnow

#: States in which an adopted job can still be handed back: nothing of it has been stored yet.
UNSTORED = ("submitted", "running", "ready")


class Claims:
    """Ownership decisions over the ledger's steps and schedule firings."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def twins_submitting(self, step: Step) -> list[Step]:
        """Other steps of the same remote kind whose POST is unsettled (state ``submitting``)."""
        with Session(self.engine) as s:
            stmt = select(Step).where(
                Step.remote_kind == step.remote_kind, Step.state == "submitting", col(Step.id) != step.id
            )
            return list(s.exec(stmt).all())

    def holder_of(self, remote_kind: str, remote_id: str) -> Step | None:
        with Session(self.engine) as s:
            stmt = select(Step).where(Step.remote_kind == remote_kind, Step.remote_id == remote_id)
            return s.exec(stmt).first()

    def take_over(self, step: Step, remote_id: str, note: str) -> bool:
        """Hand ``remote_id`` from the step that adopted it to ``step``, whose own POST answered with it.

        The adopter goes back to ``submitting`` (its lost answer is looked for again) with ``note`` as its
        last error. False when the holder did not adopt it or has already stored its media: then nothing
        changes and the caller shows the conflict.
        """
        now = utcnow()
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(Step)
                .where(
                    col(Step.remote_kind) == step.remote_kind,
                    col(Step.remote_id) == remote_id,
                    col(Step.adopted).is_(True),
                    col(Step.state).in_(UNSTORED),
                    col(Step.id) != step.id,
                )
                .values(
                    state="submitting",
                    remote_id=None,
                    adopted=False,
                    results=[],
                    progress=0.0,
                    errors_in_row=0,
                    error_class="JobTakenBack",
                    error_message=note[:2000],
                    next_poll_at=now,
                    updated_at=now,
                )
            ).rowcount
        return bool(moved)

    def unconfirmed(self, batch_id: str) -> list[Step]:
        """The batch's ``unconfirmed`` steps, in item order."""
        with Session(self.engine) as s:
            stmt = (
                select(Step)
                .where(Step.batch_id == batch_id, Step.state == "unconfirmed")
                .order_by(col(Step.item_id), col(Step.index))
            )
            return list(s.exec(stmt).all())

    def reopen_unconfirmed(self, batch_id: str, *, resubmit: bool, step_id: int | None = None) -> int:
        """Give the batch's unconfirmed steps (or only step ``step_id``) another go; their items become
        pending again. How many items were reopened.

        ``resubmit=False``: back to ``submitting`` with fresh counters, so the list is searched again (a
        list endpoint that was down may answer now) and nothing is re-sent unless absence is proven.
        ``resubmit=True``: back to ``planned``: a new POST, which may pay for the job a second time.
        """
        now = utcnow()
        which = [col(Step.batch_id) == batch_id, col(Step.state) == "unconfirmed"]
        if step_id is not None:
            which.append(col(Step.id) == step_id)
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(select(Step.item_id).where(*which)).all()]
            if not ids:
                return 0
            values: dict[str, object] = {"errors_in_row": 0, "updated_at": now, "next_poll_at": now}
            if resubmit:
                values.update(state="planned", submit_attempts=0, submitting_since=None)
            else:
                values.update(state="submitting")
            if conn.execute(update(Step).where(*which).values(values)).rowcount == 0:
                return 0  # another caller reopened them meanwhile
            # steps skipped behind an unconfirmed one run again once it resolves
            conn.execute(
                update(Step)
                .where(col(Step.item_id).in_(ids), col(Step.state) == "skipped")
                .values(state="planned", error_message=None, updated_at=now)
            )
            conn.execute(
                update(Item)
                .where(col(Item.id).in_(ids), col(Item.state).in_(["failed", "done"]))
                .values(state="pending", error=None, finished_at=None)
            )
        return len(set(ids))

    def claim_content(self, content_key: str, step_id: int) -> int:
        """The step that renders ``content_key``: this one if no other holds it, or holds it and ended
        without outputs (failed, cancelled, unconfirmed, skipped); else the holder (whose outputs the
        caller reuses once it is done)."""
        table = ContentClaim.__table__  # type: ignore[attr-defined]
        try:
            with self.engine.begin() as conn:
                conn.execute(table.insert().values(content_key=content_key, step_id=step_id))
            return step_id
        except IntegrityError:
            pass
        with Session(self.engine) as s:
            claim = s.get(ContentClaim, content_key)
            holder = s.get(Step, claim.step_id) if claim is not None else None
        if claim is None or claim.step_id == step_id:
            return step_id
        if holder is None or (holder.state in STEP_TERMINAL and holder.state != "done"):
            with self.engine.begin() as conn:
                taken = conn.execute(
                    update(ContentClaim)
                    .where(
                        col(ContentClaim.content_key) == content_key,
                        col(ContentClaim.step_id) == claim.step_id,
                    )
                    .values(step_id=step_id, claimed_at=utcnow())
                ).rowcount
            return step_id if taken else self.claim_content(content_key, step_id)
        return claim.step_id

    def claim_firing(self, schedule: str, fire_at: datetime) -> bool:
        """Claim one firing of a schedule; False when another beat (or an earlier call) already did."""
        try:
            with self.engine.begin() as conn:
                conn.execute(ScheduleFiring.__table__.insert().values(schedule=schedule, fire_at=fire_at))  # type: ignore[attr-defined]
        except IntegrityError:
            return False
        return True

    def record_firing(self, schedule: str, fire_at: datetime, batch_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(ScheduleFiring)
                .where(col(ScheduleFiring.schedule) == schedule, col(ScheduleFiring.fire_at) == fire_at)
                .values(batch_id=batch_id)
            )

    def firings(self, schedule: str) -> Sequence[ScheduleFiring]:
        with Session(self.engine) as s:
            stmt = select(ScheduleFiring).where(ScheduleFiring.schedule == schedule)
            return list(s.exec(stmt.order_by(col(ScheduleFiring.fire_at))).all())
