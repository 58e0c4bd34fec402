"""The simulator's own routes under ``/_sim`` (no auth, no faults): config, counters, reset, jobs,
webhooks."""

from __future__ import annotations

import time
from typing import Any

from letzai.sim.jobs import Job
from letzai.sim.replies import Reply, error_body, json_reply
from letzai.sim.state import SimState

#: The request fields naming a source by URL, in the order ``source_url`` looks for them.
_SOURCE_URL_FIELDS = ("imageUrl", "inputImageUrls", "imageUrls")


def admin(sim: SimState, method: str, parts: list[str], query: dict[str, str], body: Any) -> Reply:
    """Answer one ``/_sim/...`` request.

    ``GET /_sim/config``, ``POST /_sim/config`` (JSON knob values, applied live), ``GET /_sim/counters``
    (``?by_job=0`` leaves out the per-job poll counts), ``POST /_sim/reset``, ``GET /_sim/jobs``
    (``?kind=image``), ``GET /_sim/webhooks`` (``?job_id=…``), ``GET /_sim/health``.
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
    if route == ("GET", "webhooks"):
        return json_reply(200, webhooks_listing(sim, query.get("job_id")))
    return json_reply(404, error_body(404, "unknown simulator route"))


def jobs_listing(sim: SimState, kind: str | None = None) -> list[dict[str, Any]]:
    """Every job (oldest first), one row each::

        {"id", "kind", "endpoint", "status", "progress", "created_at", "created_mono", "finished",
         "outcome", "duration", "children", "outputs", "request", "source_id", "source_url",
         "lost_answer"}

    ``request`` is the body the job was created with, as sent (an edit's ``mask`` left out);
    ``source_id`` the LetzAI image it worked on (``originalImageCompletionId``, the first of
    ``originalImageCompletionIds``, or an upscale's ``imageId``), ``source_url`` the ``imageUrl``,
    ``inputImageUrls`` or ``imageUrls`` value sent (a string or a list, as sent), each None when absent;
    ``children`` an edit's result image ids; ``outputs`` the ids a client reads as the job's result (an
    edit's result images, else the job itself); ``lost_answer`` how its create answer was lost (``502``,
    ``reset``, ``timeout``) or None.
    """
    with sim.lock:
        now = time.monotonic()
        jobs = sim.by_kind.get(kind, {}) if kind else sim.jobs
        return [_row(job, now) for job in jobs.values()]


def webhooks_listing(sim: SimState, job_id: str | None = None) -> list[dict[str, Any]]:
    """Every webhook POST and every lost delivery (oldest first, the last 20,000), one row each::

        {"job_id", "kind", "status", "url_ok", "url", "shape", "copy", "lost", "code", "error",
         "ended_mono", "sent_mono"}

    ``status`` is the job status the body carries; ``url_ok`` whether it went to the job's own
    ``webhookUrl`` (False: a wrong token, ``url`` is where it went); ``shape`` ``object`` or ``event``;
    ``copy`` 1, or 2 for a duplicate; ``lost`` True for a delivery dropped by ``webhook_lost_rate``
    (nothing sent, ``code`` None); ``code`` the receiver's HTTP status (None when nothing answered);
    ``error`` None, ``lost``, ``HTTP <code>`` or the transport error; ``ended_mono`` the job's end it
    announces and ``sent_mono`` when it was sent (or dropped), both ``time.monotonic()`` of the simulator.
    """
    with sim.lock:
        rows = sim.counters.webhook_log
        return [dict(row) for row in rows if job_id is None or row["job_id"] == job_id]


def _row(job: Job, now: float) -> dict[str, Any]:
    status, progress = job.status(now)
    request = job.request
    source_url = next((request[name] for name in _SOURCE_URL_FIELDS if request.get(name)), None)
    children = list(job.children)
    return {
        "id": job.id,
        "kind": job.kind,
        "endpoint": job.endpoint,
        "status": status,
        "progress": progress,
        "created_at": job.created_at,
        "created_mono": round(job.created, 4),
        "finished": job.finished(now),
        "outcome": job.outcome,
        "duration": round(job.duration, 3),
        "children": children,
        "outputs": list(children) if job.kind == "image_edit" else [job.id],
        "request": dict(request),
        "source_id": job.source_id,
        "source_url": source_url,
        "lost_answer": job.lost_answer,
    }
