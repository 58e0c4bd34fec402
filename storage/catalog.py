"""Content keys across batches: finding done outputs to reuse, and a catalog's previous run.

A planned step whose content key equals a ``done`` step's of an earlier batch (same ledger, same bucket)
takes that step's outputs instead of paying again: :meth:`Catalog.reuse` marks it ``ready`` with the
origin's results (each naming the stored object to copy server-side) and ``reused_from``. Only finished,
verified outputs are reused: ``done`` steps with outputs, never failed, partial or unconfirmed ones.
Lookups are bulk ``IN`` queries on an index (``ix_step_content_key``), a chunk of keys at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.ledger_base import chunked
from storage.models import Batch, Item, Step, utcnow

LOOKUP_CHUNK = 500


class Catalog:
    """Reuse by content key, and what a catalog's last run held."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def done_by_key(self, keys: Iterable[str], *, exclude_batch: str | None = None) -> dict[str, Step]:
        """The newest done step with stored outputs for each of ``keys`` (other batches only)."""
        found: dict[str, Step] = {}
        with Session(self.engine) as s:
            for chunk in chunked(sorted(set(keys)), LOOKUP_CHUNK):
                stmt = (
                    select(Step)
                    .where(col(Step.content_key).in_(chunk), Step.state == "done")
                    .order_by(col(Step.finished_at).desc(), col(Step.id).desc())
                )
                if exclude_batch is not None:
                    stmt = stmt.where(Step.batch_id != exclude_batch)
                for step in s.exec(stmt).all():
                    if step.content_key and step.outputs and step.content_key not in found:
                        found[step.content_key] = step
        return found

    def planned_with_keys(self, batch_id: str, chunk: int = 2000) -> Iterator[list[tuple[int, str]]]:
        """The batch's planned steps that have a content key, as (step id, key), a chunk at a time."""
        last = 0
        with Session(self.engine) as s:
            while True:
                rows = s.exec(
                    select(Step.id, Step.content_key)
                    .where(
                        Step.batch_id == batch_id,
                        Step.state == "planned",
                        col(Step.content_key).is_not(None),
                        col(Step.id) > last,
                    )
                    .order_by(col(Step.id))
                    .limit(chunk)
                ).all()
                if not rows:
                    return
                ids = [(i, k) for i, k in rows if i is not None and k]
                if not ids:
                    return
                last = ids[-1][0]
                yield [(int(i), str(k)) for i, k in ids]

    def reuse(self, pairs: Sequence[tuple[int, Step]]) -> int:
        """Mark each planned step ``ready`` with the outputs of its origin (``(step id, origin)``)."""
        if not pairs:
            return 0
        now = utcnow()
        stmt = (
            update(Step)
            .where(col(Step.id) == bindparam("w_id"), col(Step.state) == "planned")
            .values(
                state="ready",
                results=bindparam("v_results"),
                reused_from=bindparam("v_from"),
                progress=100.0,
                next_poll_at=bindparam("v_next"),
                updated_at=now,
            )
        )
        rows = [
            {
                "w_id": step_id,
                "v_results": reused_results(origin),
                "v_from": f"{origin.batch_id}/{origin.id}",
                "v_next": now,
            }
            for step_id, origin in pairs
        ]
        with self.engine.begin() as conn:
            return int(conn.execute(stmt, rows).rowcount)

    def last_run(self, name: str, *, exclude: str | None = None) -> Batch | None:
        """The newest batch of that catalog name (the previous run), other than ``exclude``."""
        with Session(self.engine) as s:
            stmt = select(Batch).where(Batch.name == name).order_by(col(Batch.created_at).desc())
            if exclude is not None:
                stmt = stmt.where(Batch.id != exclude)
            return s.exec(stmt.limit(1)).first()

    def item_keys(self, batch_id: str) -> set[str]:
        with Session(self.engine) as s:
            return set(s.exec(select(Item.key).where(Item.batch_id == batch_id)).all())

    def step_keys(self, batch_id: str) -> dict[tuple[str, int, int, str], str | None]:
        """(item key, variant, index, branch) → content key, for every step of a batch."""
        with Session(self.engine) as s:
            stmt: Any = (
                select(Item.key, Step.variant, Step.index, Step.branch, Step.content_key)  # type: ignore[call-overload]
                .join(Item, col(Item.id) == col(Step.item_id))
                .where(Step.batch_id == batch_id)
            )
            rows = s.exec(stmt).all()
        return {(k, v, i, b): c for k, v, i, b, c in rows}


def reused_results(origin: Step) -> list[dict[str, Any]]:
    """What a reusing step's copy needs of each origin output: its stored object and its LetzAI ids."""
    results, outputs = origin.results or [], origin.outputs or []
    by_image = {r.get("image_id"): r for r in results}
    out = []
    for n, o in enumerate(outputs):
        paired = results[n] if len(results) == len(outputs) else None
        result = paired or by_image.get(o.get("image_id")) or {}
        out.append(
            {
                "url": result.get("url") or o.get("source_url"),
                "image_id": o.get("image_id"),
                "reuse_key": o["key"],
                "sha256": o["sha256"],
                "size": o["size"],
                "content_type": o["content_type"],
                "origin_batch": origin.batch_id,
                "origin_step": origin.id,
                "origin_remote_id": origin.remote_id or result.get("origin_remote_id"),
            }
        )
    return out
