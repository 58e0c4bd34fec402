"""Learned job durations, kept in the ledger so a restart, a new Redis or tomorrow's batch starts warm.

One row per duration key (``kind/mode/size``, or a bare kind for the kind's fallback, see
``letzflow.engine.duration_keys``): the learned first-look time in seconds and how many looks taught it.
Redis holds the hot copy the engine reads and updates; this table is written behind it, at most every few
seconds per key and process, and read when Redis has no value. The table is created on older ledgers by
``create_all``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Field, SQLModel, col

from storage.models import utcnow


class LearnedDuration(SQLModel, table=True):
    """The learned first-look time of one kind of job."""

    __tablename__ = "learned_duration"

    key: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=20)
    seconds: float
    samples: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class DurationsError(RuntimeError):
    """The durations table could not be read or written (the engine goes on with Redis alone)."""


class Durations:
    """Queries of :class:`LearnedDuration` on a ledger's engine.

    Raises:
        DurationsError: from every method, for any database error (translated here, ``from`` it).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        LearnedDuration.metadata.create_all(engine, tables=[LearnedDuration.__table__])  # type: ignore[attr-defined]

    def load(self, keys: Iterable[str]) -> dict[str, tuple[float, int]]:
        """``key -> (seconds, samples)`` for those of ``keys`` that have a row."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        query = select(
            col(LearnedDuration.key), col(LearnedDuration.seconds), col(LearnedDuration.samples)
        ).where(col(LearnedDuration.key).in_(wanted))
        try:
            with self.engine.connect() as conn:
                return {key: (float(sec), int(n)) for key, sec, n in conn.execute(query)}
        except SQLAlchemyError as exc:
            raise DurationsError(f"reading learned durations failed: {exc}") from exc

    def save(self, key: str, kind: str, seconds: float, samples: int) -> None:
        """Insert or overwrite the row of ``key`` (last writer wins: every writer holds a recent value)."""
        values = {"seconds": float(seconds), "samples": int(samples), "updated_at": utcnow()}
        change = update(LearnedDuration).where(col(LearnedDuration.key) == key).values(**values)
        try:
            with self.engine.begin() as conn:
                if conn.execute(change).rowcount:
                    return
            try:
                with self.engine.begin() as conn:
                    conn.execute(LearnedDuration.__table__.insert().values(key=key, kind=kind, **values))  # type: ignore[attr-defined]
            except IntegrityError:  # another process inserted it meanwhile
                with self.engine.begin() as conn:
                    conn.execute(change)
        except SQLAlchemyError as exc:
            raise DurationsError(f"saving the learned duration of {key} failed: {exc}") from exc

    def all(self) -> list[LearnedDuration]:
        """Every row, by key (for reports and tests)."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(LearnedDuration).order_by(col(LearnedDuration.key)))
                return [LearnedDuration.model_validate(dict(r._mapping)) for r in rows]
        except SQLAlchemyError as exc:
            raise DurationsError(f"reading learned durations failed: {exc}") from exc
