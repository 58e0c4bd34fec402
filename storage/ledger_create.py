"""Creating a batch: its items and planned steps (with their branches) in bulk, one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import col

from storage import lanes
from storage.ledger_base import (
    INSERT_CHUNK,
    ITEM_TABLE,
    STEP_TABLE,
    LedgerBase,
    _row_defaults,
    chunked,
    idempotency_key,
    new_batch_id,
)
from storage.models import (
    Batch,
    Item,
    Step,
    utcnow,
)


class Creation(LedgerBase):
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
        reuse: bool = True,
        lane: tuple[int, float, int | None] = (5, 1.0, None),
        content_keys: Callable[[str, dict[str, Any]], dict[tuple[int, int, str], str]] | None = None,
    ) -> Batch:
        """Write a batch, its items and every planned step, in chunks (bounded memory).

        ``steps`` are dicts with at least ``kind``, ``remote_kind`` and ``variants``. ``content_keys(item
        key, fields)`` gives each planned step's content key by ``(variant, index, branch)``.
        """
        batch = Batch(
            id=batch_id or new_batch_id(),
            name=name,
            spec_hash=spec_hash,
            steps=steps,
            max_jobs=max_jobs,
            spec_path=spec_path,
            schedule=schedule,
            reuse=reuse,
            priority=lane[0],
            weight=lane[1],
            max_inflight=lane[2],
            state="creating",
        )
        with self.session() as s:
            s.add(batch)
            s.commit()
        total = 0
        for chunk in chunked(items, INSERT_CHUNK):
            self._insert_chunk(batch.id, steps, chunk, total, content_keys)
            total += len(chunk)
        with self.session() as s:
            s.exec(update(Batch).where(col(Batch.id) == batch.id).values(items_total=total, state="running"))
            s.commit()
        batch.items_total = total
        batch.state = "running"
        return batch

    def _insert_chunk(
        self,
        batch_id: str,
        steps: list[dict[str, Any]],
        chunk: Sequence[tuple[str, dict[str, Any]]],
        first_seq: int,
        content_keys: Callable[[str, dict[str, Any]], dict[tuple[int, int, str], str]] | None,
    ) -> None:
        """One chunk of items and every planned step of each, in one transaction."""
        now = utcnow()
        item_defaults, step_defaults = _row_defaults(Item), _row_defaults(Step)
        rows = [
            {**item_defaults, "batch_id": batch_id, "seq": first_seq + n, "key": key, "fields": fields}
            for n, (key, fields) in enumerate(chunk)
        ]
        add_items = insert(ITEM_TABLE).returning(ITEM_TABLE.c.id, sort_by_parameter_order=True)
        plan = lanes.plan(steps)
        rows_of_steps: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            ids = [row[0] for row in conn.execute(add_items, [{**r, "created_at": now} for r in rows])]
            for item_id, row in zip(ids, rows, strict=True):
                keys = content_keys(row["key"], row["fields"]) if content_keys else {}
                rows_of_steps.extend(
                    {
                        **step_defaults,
                        "batch_id": batch_id,
                        "item_id": item_id,
                        "idempotency_key": idempotency_key(
                            batch_id, row["key"], index, kind, variant, branch
                        ),
                        "index": index,
                        "kind": kind,
                        "variant": variant,
                        "branch": branch,
                        "remote_kind": steps[index]["remote_kind"],
                        "content_key": keys.get((variant, index, branch)),
                        "updated_at": now,
                    }
                    for variant, index, branch in plan
                    for kind in [steps[index]["kind"]]
                )
            conn.execute(insert(STEP_TABLE), rows_of_steps)
