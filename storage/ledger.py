"""The job ledger: every state change is a guarded compare-and-set on one row.

Two workers can never both move a step from ``planned`` to ``submitting``: the UPDATE names the state it
expects and only one of them sees a changed row.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any, TypeVar

from sqlalchemy import Index, Table, bindparam, func, insert, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.dml import Update
from sqlmodel import Session, col, select

from storage import lanes
from storage.claims import Claims
from storage.db import get_engine
from storage.models import (
    ITEM_TERMINAL,
    STEP_INFLIGHT,
    STEP_TERMINAL,
    Attempt,
    Batch,
    Item,
    Step,
    utcnow,
)

INSERT_CHUNK = 500
T = TypeVar("T")

#: Items of a batch by state in feed order: the feeder's claim and the per-item batch barrier read ranges of
#: it instead of scanning every item of the batch (which made finishing N items cost O(N²)).
ITEM_BATCH_STATE = Index("ix_item_batch_state_seq", Item.batch_id, Item.state, Item.seq)  # type: ignore[arg-type]
ITEM_OPEN = ("pending", "queued")
STEP_ORDER = (col(Step.variant), col(Step.index), col(Step.branch))

STEP_TABLE: Table = Step.__table__  # type: ignore[attr-defined]
ITEM_TABLE: Table = Item.__table__  # type: ignore[attr-defined]
BATCH_TABLE: Table = Batch.__table__  # type: ignore[attr-defined]


@lru_cache(maxsize=512)
def _update_by_id(
    table: Table, keys: tuple[str, ...], guard: str | None = None, bumps: tuple[str, ...] = ()
) -> Update:
    """``UPDATE table SET key = :v_key, … [, bump = bump + 1] WHERE id = :w_id [AND guard IN :w_expected]``.

    Built once per shape and run with bound values: building an SQLAlchemy statement costs more than SQLite
    takes to run it (about 100 µs against 50), and a worker runs a dozen of these per LetzAI job.
    """
    stmt = update(table).where(table.c.id == bindparam("w_id"))
    if guard is not None:
        stmt = stmt.where(table.c[guard].in_(bindparam("w_expected", expanding=True)))
    values: dict[str, Any] = {k: bindparam(f"v_{k}", type_=table.c[k].type) for k in keys}
    values.update({k: table.c[k] + 1 for k in bumps})
    return stmt.values(values)


@lru_cache(maxsize=8)
def _select_by_id(*entities: Any) -> Any:
    """``SELECT entities… WHERE step.id = :w_id`` (joined to the step's batch and item), built once."""
    stmt = select(*entities).where(col(Step.id) == bindparam("w_id"))
    if Batch in entities:
        stmt = stmt.join(Batch, col(Batch.id) == col(Step.batch_id))
    if Item in entities:
        stmt = stmt.join(Item, col(Item.id) == col(Step.item_id))
    return stmt


def idempotency_key(
    batch_id: str, item_key: str, index: int, kind: str, variant: int, branch: str = ""
) -> str:
    """The unique key of one LetzAI job: (batch, item, step, variant, branch)."""
    raw = f"{batch_id}\x00{item_key}\x00{index}\x00{kind}\x00{variant}"
    if branch:
        raw += f"\x00{branch}"
    return hashlib.sha256(raw.encode()).hexdigest()


def new_batch_id() -> str:
    return uuid.uuid4().hex[:12]


class Ledger:
    """Queries and guarded updates over the ledger tables."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = get_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        ITEM_BATCH_STATE.create(self.engine, checkfirst=True)
        self.claims = Claims(self.engine)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _write(self, stmt: Executable, params: dict[str, Any] | None = None) -> int:
        """Run one statement in a transaction of its own (Core: no ORM session); the rows it changed."""
        with self.engine.begin() as conn:
            return int(conn.execute(stmt, params or {}).rowcount)

    def _update(
        self,
        table: Table,
        row_id: Any,
        values: dict[str, Any],
        *,
        guard: str | None = None,
        expected: Sequence[str] = (),
        bumps: tuple[str, ...] = (),
    ) -> int:
        """Update one row by id (only while ``guard`` is in ``expected``, if given); rows changed, 0 or 1."""
        if any(isinstance(v, ClauseElement) for v in values.values()):  # an SQL expression: built each time
            stmt: Any = update(table).where(table.c.id == row_id)
            if guard is not None:
                stmt = stmt.where(table.c[guard].in_(list(expected)))
            return self._write(stmt.values({**values, **{k: table.c[k] + 1 for k in bumps}}))
        keys = tuple(sorted(values))
        params = {f"v_{k}": values[k] for k in keys}
        params["w_id"] = row_id
        if guard is not None:
            params["w_expected"] = list(expected)
        return self._write(_update_by_id(table, keys, guard, bumps), params)

    # -- creation ----------------------------------------------------------------------------------
    def create_batch(
        self,
        *,
        name: str,
        spec_hash: str,
        steps: list[dict[str, Any]],
        items: Iterable[tuple[str, dict[str, Any]]],
        max_jobs: int | None = None,
        spec_path: str | None = None,
        schedule: str | None = None,
        batch_id: str | None = None,
    ) -> Batch:
        """Write a batch, its items and every planned step, in chunks (bounded memory).

        ``steps`` are dicts with at least ``kind``, ``remote_kind`` and ``variants``.
        """
        batch = Batch(
            id=batch_id or new_batch_id(),
            name=name,
            spec_hash=spec_hash,
            steps=steps,
            max_jobs=max_jobs,
            spec_path=spec_path,
            schedule=schedule,
            state="creating",
        )
        with self.session() as s:
            s.add(batch)
            s.commit()
        total = 0
        item_table, step_table = ITEM_TABLE, STEP_TABLE
        add_items = insert(item_table).returning(item_table.c.id, sort_by_parameter_order=True)
        item_defaults, step_defaults = _row_defaults(Item), _row_defaults(Step)
        plan = lanes.plan(steps)
        for chunk in chunked(items, INSERT_CHUNK):
            now = utcnow()
            rows = []
            for key, fields in chunk:
                rows.append(
                    {**item_defaults, "batch_id": batch.id, "seq": total, "key": key, "fields": fields}
                )
                total += 1
            rows_of_steps: list[dict[str, Any]] = []
            with self.engine.begin() as conn:
                ids = [row[0] for row in conn.execute(add_items, [{**r, "created_at": now} for r in rows])]
                for item_id, row in zip(ids, rows, strict=True):
                    rows_of_steps.extend(
                        {
                            **step_defaults,
                            "batch_id": batch.id,
                            "item_id": item_id,
                            "idempotency_key": idempotency_key(
                                batch.id, row["key"], index, kind, variant, branch
                            ),
                            "index": index,
                            "kind": kind,
                            "variant": variant,
                            "branch": branch,
                            "remote_kind": steps[index]["remote_kind"],
                            "updated_at": now,
                        }
                        for variant, index, branch in plan
                        for kind in [steps[index]["kind"]]
                    )
                conn.execute(insert(step_table), rows_of_steps)
        with self.session() as s:
            s.exec(update(Batch).where(col(Batch.id) == batch.id).values(items_total=total, state="running"))
            s.commit()
        batch.items_total = total
        batch.state = "running"
        return batch

    # -- reads -------------------------------------------------------------------------------------
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
                ids = [i.id for i in items]
                steps = list(
                    s.exec(select(Step).where(col(Step.item_id).in_(ids)).order_by(*STEP_ORDER)).all()
                )
            by_item: dict[int, list[Step]] = {}
            for st in steps:
                by_item.setdefault(st.item_id, []).append(st)
            for item in items:
                assert item.id is not None
                yield item, by_item.get(item.id, [])
            last = items[-1].seq

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

    # -- guarded writes ----------------------------------------------------------------------------
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

    def begin_submit_counted(self, step_id: int, batch_id: str) -> int | None:
        """:meth:`begin_submit`, answering the step's ``submit_attempts`` after it (None: not this call).

        The count comes back with the update (``RETURNING``), so the caller need not read the step again.
        """
        params = {"w_id": step_id, "w_batch": batch_id, "v_now": utcnow()}
        with self.engine.begin() as conn:
            row = conn.execute(_BEGIN_SUBMIT, params).first()
        return int(row[0]) if row is not None else None

    def bump_submit(self, step_id: int, seen_attempts: int) -> bool:
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
                error_class=None,  # none of this POST's end is known yet (see tasks.steps._recover_submit)
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

    def update_step(self, step_id: int, **values: Any) -> None:
        values.setdefault("updated_at", utcnow())
        self._update(STEP_TABLE, step_id, values)

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

    def mark_items_queued(self, item_ids: Sequence[int]) -> None:
        now = utcnow()
        with self.session() as s:
            s.exec(  # type: ignore[call-overload]
                update(Item).where(col(Item.id).in_(list(item_ids))).values(state="queued", kicked_at=now)
            )
            s.commit()

    # -- fan-in ------------------------------------------------------------------------------------
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
    ) -> list[Item]:
        """Queued items of running batches with a step nobody touched in time, or past its deadline.

        ``due_slack``: for a while after a worker died, a step counts as stalled as soon as its planned look
        is this late (``next_poll_at`` carries 30 s of slack over the planned look) instead of after
        ``grace``. ``crash_sweep``: the pass that found a worker dead takes every item with an open step,
        except steps whose next look is planned ahead (a dead worker may have held any of them; a
        duplicate message costs a task run, a held one an hour). Items re-kicked less than ``grace`` ago
        (2 s for a crash sweep) are left alone.
        """
        cutoff = now - grace
        slack = timedelta(seconds=30)
        if crash_sweep:
            planned_ahead = col(Step.state).in_(["submitted", "running"]) & (
                col(Step.next_poll_at) > now + slack
            )
            stalled: Any = ~planned_ahead | (col(Step.deadline_at) < now)
            kicked_before = now - timedelta(seconds=2)
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
_ITEM_BATCH_ID = select(Item.batch_id).where(col(Item.id) == bindparam("w_id"))


@cache
def _row_defaults_cached(model: type) -> tuple[tuple[str, Any], ...]:
    required: dict[str, Any] = {
        "Item": {"batch_id": "", "seq": 0, "key": ""},
        "Step": {
            "batch_id": "",
            "item_id": 0,
            "idempotency_key": "",
            "index": 0,
            "kind": "",
            "remote_kind": "",
        },
    }[model.__name__]
    sample = model(**required)
    return tuple((k, v) for k, v in sample.model_dump().items() if k != "id" and k not in required)


def _row_defaults(model: type) -> dict[str, Any]:
    """A new row's default column values, as the model itself fills them (for Core bulk inserts)."""
    return {k: copy.deepcopy(v) for k, v in _row_defaults_cached(model)}


def chunked(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` consecutive values (``itertools.batched`` arrives only in Python 3.12)."""
    chunk: list[T] = []
    for value in iterable:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
