"""What every part of the ledger shares: the engine, sessions, one-row guarded updates built once, keys.

The ledger is split by concern (:mod:`storage.ledger` is the facade): creation, reads, guarded step
writes, fan-in and recovery queries. Statements are built once per shape and run with bound values.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from functools import cache, lru_cache
from typing import Any, TypeVar

from sqlalchemy import Index, Table, bindparam, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.dml import Update
from sqlmodel import Session, col, select

from storage.models import (
    Batch,
    Item,
    Step,
)

INSERT_CHUNK = 500
T = TypeVar("T")

#: Items of a batch by state in feed order: the feeder's claim and the per-item batch barrier read ranges of
#: it instead of scanning every item of the batch (which made finishing N items cost O(N²)).
ITEM_BATCH_STATE = Index("ix_item_batch_state_seq", Item.batch_id, Item.state, Item.seq)  # type: ignore[arg-type]
#: Done steps by content key: reuse looks keys up in bulk, never scanning (storage/catalog.py).
STEP_CONTENT_KEY = Index("ix_step_content_key", Step.content_key, Step.state)  # type: ignore[arg-type]
#: The receiver finds a webhook token's step by the token's hash.
STEP_WEBHOOK_HASH = Index("ix_step_webhook_hash", Step.webhook_hash)  # type: ignore[arg-type]
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


class LedgerBase:
    """The engine and the write helpers every part of the ledger uses."""

    engine: Engine

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
