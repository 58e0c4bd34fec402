"""Batch bookkeeping: feeding items in windows, the fan-in barrier, and the manifest written once."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import timedelta
from typing import Any

from letzflow.spec import BatchSpec
from storage import lanes
from storage.layout import manifest_key
from storage.models import Batch, Step, utcnow
from tasks import messages, runtime
from tasks.batch_start import record_spec
from tasks.catalog import PhotoIdentities
from tasks.pipelines import enqueue_claimed

log = logging.getLogger(__name__)


#: Items in flight per batch: enough to keep every in-flight slot busy, bounded for Redis and the producer.
def window() -> int:
    return max(50, 3 * runtime.settings().letzai_max_inflight)


FEED_EVERY = 1.0


def claim_pending(batch_id: str, count: int) -> list[int]:
    """Atomically move up to ``count`` pending items (in order) to queued; their ids."""
    return runtime.ledger().claim_pending(batch_id, count)


def feed(batch_id: str) -> float | None:
    """Enqueue the next window of a running batch's items; seconds until the next feed, or None when done."""

    ledger = runtime.ledger()
    batch = ledger.batch(batch_id)
    if batch is None or batch.state != "running":
        return None
    counts = ledger.item_counts(batch_id)
    room = window() - counts.get("queued", 0)
    if counts.get("pending", 0) == 0:
        ledger.update_batch(batch_id, feeder_next_at=None)
        check_batch_done(batch_id)
        return None
    if room > 0:
        enqueue_claimed(claim_pending(batch_id, room))
    ledger.update_batch(batch_id, feeder_next_at=utcnow() + timedelta(seconds=FEED_EVERY + 60))
    return FEED_EVERY


def finish(item_id: int) -> str | None:
    """The item's fan-in: settle it once its steps are all terminal, then check the batch barrier."""
    ledger = runtime.ledger()
    state = ledger.settle_item(item_id)
    if state is not None:
        batch_id = ledger.batch_id_of_item(item_id)
        assert batch_id is not None
        check_batch_done(batch_id)
    return state


def gather_branches(step_id: int) -> dict[str, Any]:
    """A split's fan-in: every branch run on the images of ``step_id`` has ended; what each ended as.

    The answer (per branch label: the last step's state and its stored keys) is logged and becomes this
    chord member's result; the item's own fan-in (:func:`finish`) reads the ledger, not this.
    """
    started = utcnow()
    ledger = runtime.ledger()
    split = ledger.step(step_id)
    if split is None:
        return {}
    steps = [
        st
        for st in ledger.item_steps(split.item_id)
        if st.variant == split.variant and st.index > split.index and lanes.is_under(st.branch, split.branch)
    ]
    last = max((st.index for st in steps), default=split.index)
    gathered = {
        lanes.label(st.branch): {"state": st.state, "keys": [o["key"] for o in st.outputs or []]}
        for st in steps
        if st.index == last
    }
    counts = Counter(str(v["state"]) for v in gathered.values())
    summary = f"{len(gathered)} branches: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    ledger.record_attempt(step_id, "gather", summary[:40], started)
    log.info("item %s step %s (%s): %s", split.item_id, split.index + 1, split.kind, summary)
    return gathered


def check_batch_done(batch_id: str) -> bool:
    """When every item is terminal, move the batch to finalizing once and send the finalizer."""

    ledger = runtime.ledger()
    if not ledger.batch_settled(batch_id):  # first: false for every item but the last, and a cheaper read
        return False
    batch = ledger.batch(batch_id)
    if batch is None or batch.state != "running":
        return False
    if ledger.item_counts(batch_id).get("pending"):
        return False
    if ledger.set_batch_state(batch_id, ("running",), "finalizing"):
        messages.send(messages.FINALIZE_BATCH, batch_id)
        return True
    return False


def manifest(batch: Batch) -> dict[str, Any]:
    """The manifest: every item, its status, every output and every error.

    Each output names its step, LetzAI id, storage key, sha256, size and content type.
    """
    items = []
    for item, steps in runtime.ledger().iter_items_with_steps(batch.id):
        items.append(
            {
                "id": item.key,
                "status": item.state,
                "prompt": item.fields.get("prompt"),
                "outputs": [_manifest_output(st, out) for st in steps for out in st.outputs or []],
                "errors": [_manifest_error(st) for st in steps if _shows_error(st)],
                "error": item.error,
                "finished_at": item.finished_at.isoformat() if item.finished_at else None,
            }
        )
    counts: dict[str, int] = {}
    for it in items:
        status = str(it["status"])
        counts[status] = counts.get(status, 0) + 1
    return {
        "batch": {
            "id": batch.id,
            "name": batch.name,
            "state": batch.state,
            "created_at": batch.created_at.isoformat(),
            "jobs_submitted": batch.jobs_submitted,
            "steps": batch.steps,
            "counts": counts,
        },
        "items": items,
    }


def _manifest_output(st: Step, out: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": st.index + 1,
        "kind": st.kind,
        "variant": st.variant + 1,
        "branch": lanes.label(st.branch),
        "letzai_id": st.remote_id or (out.get("reused_from") or {}).get("letzai_id"),
        "image_id": out.get("image_id"),
        "key": out["key"],
        "sha256": out["sha256"],
        "size": out["size"],
        "content_type": out["content_type"],
        **({"reused_from": out["reused_from"]} if out.get("reused_from") else {}),
    }


def _shows_error(st: Step) -> bool:
    return st.state in ("failed", "skipped", "cancelled") or bool(st.error_message and st.state != "done")


def _manifest_error(st: Step) -> dict[str, Any]:
    return {
        "step": st.index + 1,
        "kind": st.kind,
        "variant": st.variant + 1,
        "branch": lanes.label(st.branch),
        "state": st.state,
        "error": st.error_message,
        "class": st.error_class,
        "http_status": st.error_status,
    }


def finalize(batch_id: str) -> bool:
    """Write manifest.json to storage and close the batch.

    Only the caller that wins the guarded update counts: the batch callback runs exactly once.
    """
    ledger = runtime.ledger()
    batch = ledger.batch(batch_id)
    if batch is None or batch.state != "finalizing":
        return False
    doc = manifest(batch)
    doc["batch"]["state"] = "done"
    key = manifest_key(batch.name, batch.id)
    stored = runtime.store().put_bytes(key, json.dumps(doc, indent=2).encode(), "application/json")
    finished = ledger.finish_batch(batch_id, stored.key)
    log.info("batch %s finished: manifest at %s", batch_id, stored.key)
    return finished


def start_spec(
    spec: BatchSpec,
    *,
    name: str | None = None,
    schedule: str | None = None,
    fresh: bool = False,
    photos: PhotoIdentities | None = None,
    priority: int | None = None,
) -> Batch:
    """Record a validated spec as a new batch (items and planned steps, each with its content key), mark
    the steps an earlier batch already rendered as reused (unless ``fresh`` or the spec says
    ``reuse: false``), and start its feeder.

    Raises:
        StorageError: the bucket is missing or the endpoint refuses (nothing is recorded or sent).
    """
    # a missing bucket is a clear error now, not a failed copy after paying
    runtime.store().check()
    batch = record_spec(
        runtime.ledger(),
        spec,
        photos or PhotoIdentities(open_store=runtime.store),
        name=name,
        schedule=schedule,
        fresh=fresh,
        priority=priority,
    )
    messages.send(messages.FEED_BATCH, batch.id)
    return batch
