"""The simulator's own routes under ``/_sim`` (no auth, no faults): config, counters, reset, jobs."""

from __future__ import annotations

import time
from typing import Any

from letzai.sim.replies import Reply, error_body, json_reply
from letzai.sim.state import SimState


def admin(sim: SimState, method: str, parts: list[str], query: dict[str, str], body: Any) -> Reply:
    """Answer one ``/_sim/...`` request.

    ``GET /_sim/config``, ``POST /_sim/config`` (JSON knob values, applied live), ``GET /_sim/counters``
    (``?by_job=0`` leaves out the per-job poll counts), ``POST /_sim/reset``, ``GET /_sim/jobs``
    (``?kind=image``), ``GET /_sim/health``.
    """
    route = (method, parts[1] if len(parts) == 2 else "")
    if route == ("GET", "health"):
        return json_reply(200, {"ok": True})
    if route == ("GET", "config"):
        with sim.lock:
            return json_reply(200, {**sim.config.to_dict(), "effective_seed": sim.seed})
    if route == ("POST", "config"):
        if not isinstance(body, dict):
            return json_reply(400, error_body(400, "body must be a JSON object of knob values"))
        try:
            config = sim.configure(body)
        except ValueError as exc:
            return json_reply(400, error_body(400, str(exc)))
        return json_reply(200, config.to_dict())
    if route == ("GET", "counters"):
        return json_reply(200, sim.counters_snapshot(by_job=query.get("by_job", "1") not in ("0", "false")))
    if route == ("POST", "reset"):
        sim.reset()
        return json_reply(200, {"ok": True})
    if route == ("GET", "jobs"):
        return json_reply(200, jobs_listing(sim, query.get("kind")))
    return json_reply(404, error_body(404, "unknown simulator route"))


def jobs_listing(sim: SimState, kind: str | None = None) -> list[dict[str, Any]]:
    """Every job (oldest first): id, kind, status, progress, created_at, finished, outcome, children."""
    with sim.lock:
        now = time.monotonic()
        rows = []
        for job in sim.jobs.values():
            if kind and job.kind != kind:
                continue
            status, progress = job.status(now)
            rows.append(
                {
                    "id": job.id,
                    "kind": job.kind,
                    "status": status,
                    "progress": progress,
                    "created_at": job.created_at,
                    "created_mono": round(job.created, 4),
                    "finished": job.finished(now),
                    "outcome": job.outcome,
                    "duration": round(job.duration, 3),
                    "children": list(job.children),
                }
            )
        return rows
