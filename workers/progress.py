"""Live progress and status views of a batch, read from the ledger."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from storage.ledger import Ledger
from storage.models import Batch, as_utc

FINAL_BATCH = ("done", "paused", "stopped", "cancelled")


def step_rows(ledger: Ledger, batch: Batch) -> list[dict[str, Any]]:
    """Per step: jobs done, in flight, waiting, failed."""
    counts = ledger.step_counts(batch.id)
    rows = []
    for index, spec in enumerate(batch.steps):
        states = {st: n for (i, _k, st), n in counts.items() if i == index}
        rows.append(
            {
                "step": f"{index + 1:02d} {spec['kind']}",
                "done": states.get("done", 0),
                "in_flight": sum(
                    states.get(s, 0) for s in ("submitting", "submitted", "running", "ready", "copying")
                ),
                "waiting": states.get("planned", 0),
                "failed": sum(states.get(s, 0) for s in ("failed", "skipped", "cancelled")),
                "total": sum(states.values()),
            }
        )
    return rows


def eta_seconds(batch: Batch, item_counts: dict[str, int]) -> float | None:
    finished = sum(item_counts.get(s, 0) for s in ("done", "failed", "cancelled"))
    left = batch.items_total - finished
    if finished == 0 or left <= 0:
        return None
    elapsed = (datetime.now(UTC) - as_utc(batch.created_at)).total_seconds()
    return elapsed / finished * left


def lane_text(batch: Batch) -> str:
    """``priority 9 (high) · weight 1`` (and its own cap), as a batch's row in the lanes shows it."""
    names = {1: "low", 5: "normal", 9: "high"}
    name = f" ({names[batch.priority]})" if batch.priority in names else ""
    cap = f" · max_inflight {batch.max_inflight}" if batch.max_inflight else ""
    return f"priority {batch.priority}{name} · weight {batch.weight:g}{cap}"


def lanes_table(ledger: Ledger, cap: int) -> Table | None:
    """Every open batch's lane, weight, LetzAI jobs in flight and share of the global cap."""
    open_batches = ledger.batches_in(("running", "paused", "stopped"))
    if not open_batches:
        return None
    inflight: dict[str, int] = {}
    for step in ledger.inflight_steps():
        inflight[step.batch_id] = inflight.get(step.batch_id, 0) + 1
    table = Table(title=f"open batches (LETZAI_MAX_INFLIGHT {cap})", title_justify="left")
    for col in ("batch", "name", "state", "lane", "in flight", "share of cap"):
        table.add_column(col, justify="right" if col in ("in flight", "share of cap") else "left")
    for b in sorted(open_batches, key=lambda b: (-b.priority, b.created_at)):
        n = inflight.get(b.id, 0)
        table.add_row(b.id, b.name, b.state, lane_text(b), str(n), f"{100 * n / max(1, cap):.0f} %")
    return table


def status_table(ledger: Ledger, batch: Batch) -> Table:
    items = ledger.item_counts(batch.id)
    eta = eta_seconds(batch, items)
    title = (
        f"batch {batch.id} ({batch.name}): {batch.state} · items {items.get('done', 0)} done, "
        f"{items.get('failed', 0)} failed, {items.get('queued', 0) + items.get('pending', 0)} open of "
        f"{batch.items_total}" + (f" · ETA {eta:.0f}s" if eta else "") + f" · {lane_text(batch)}"
    )
    table = Table(title=title, title_justify="left")
    for col in ("step", "done", "in flight", "waiting", "failed", "total"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for row in step_rows(ledger, batch):
        table.add_row(
            row["step"],
            str(row["done"]),
            str(row["in_flight"]),
            str(row["waiting"]),
            str(row["failed"]),
            str(row["total"]),
        )
    return table


def failures(ledger: Ledger, batch_id: str, limit: int = 50) -> list[tuple[str, str]]:
    return [(i.key, i.error or i.state) for i in ledger.items(batch_id, ("failed", "cancelled"), limit=limit)]


def wait_for(
    ledger: Ledger, batch_id: str, console: Console, *, live: bool = True, timeout: float | None = None
) -> Batch:
    """Show progress until the batch ends (done, paused, stopped or cancelled); returns its last state."""
    from rich.live import Live

    start = time.monotonic()
    batch = ledger.batch(batch_id)
    assert batch is not None
    with Live(
        status_table(ledger, batch), console=console, refresh_per_second=4, transient=False, auto_refresh=live
    ) as view:
        while True:
            batch = ledger.batch(batch_id)
            assert batch is not None
            view.update(status_table(ledger, batch))
            if not live:
                view.refresh()
            if batch.state in FINAL_BATCH:
                return batch
            if timeout is not None and time.monotonic() - start > timeout:
                return batch
            time.sleep(0.5 if live else 1.0)
