"""The API route table and the helpers every route shares (body checks, lookups, lists)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from letzai.sim.jobs import Job
from letzai.sim.render import RENDERERS, edit_result_object
from letzai.sim.replies import Reply, SimError, json_reply
from letzai.sim.state import SimState
from letzai.sim.thin import KINDS as THIN_KINDS
from letzai.sim.thin import thinned


@dataclass
class Request:
    """One parsed API request.

    Attributes:
        method: GET, POST, ...
        path: the path without query; ``parts`` its segments.
        query: the query parameters (last value wins).
        body: the decoded JSON body (``{}`` when empty), or None when it was not JSON.
        base: the simulator's own URL as the client reached it (for media URLs).
        created_id: the id of the job a create route made (set by the route, read by the fault layer).
    """

    method: str
    path: str
    parts: list[str]
    query: dict[str, str]
    body: Any
    base: str
    headers: dict[str, str] = field(default_factory=dict)
    created_id: str | None = None


Handler = Callable[[SimState, Request, list[str]], Reply]


@dataclass(frozen=True)
class Route:
    """A method and a path pattern (``{id}`` segments are captured); ``create`` marks a billed POST."""

    method: str
    pattern: tuple[str, ...]
    handler: Handler
    create: bool = False

    def match(self, parts: list[str]) -> list[str] | None:
        """The captured ids when ``parts`` fit the pattern, else None."""
        if len(parts) != len(self.pattern):
            return None
        ids = []
        for want, got in zip(self.pattern, parts, strict=True):
            if want == "{id}":
                ids.append(got)
            elif want != got:
                return None
        return ids


def find_route(
    routes: Iterable[Route], method: str, parts: list[str]
) -> tuple[Route | None, list[str], bool]:
    """``(route, ids, path_known)``: path_known tells a 405 (path exists) from a 404."""
    path_known = False
    for route in routes:
        ids = route.match(parts)
        if ids is None:
            continue
        path_known = True
        if route.method == method:
            return route, ids, True
    return None, [], path_known


def body_of(req: Request, check: Callable[[dict[str, Any]], list[str]]) -> dict[str, Any]:
    """The request body after ``check``.

    Raises:
        SimError: 400 with the list of validation messages.
    """
    if req.body is None:
        raise SimError(400, "Unexpected token in JSON body")
    if not isinstance(req.body, dict):
        raise SimError(400, ["request body must be a JSON object"])
    messages = check(req.body)
    if messages:
        raise SimError(400, messages)
    return dict(req.body)


def recorded_body(req: Request) -> dict[str, Any]:
    """A deep copy of the request body as sent, ``mask`` (a large base64 image) left out."""
    body = req.body if isinstance(req.body, dict) else {}
    return copy.deepcopy({name: value for name, value in body.items() if name != "mask"})


def resolver(sim: SimState, base: str, now: float) -> Callable[[str], dict[str, Any] | None]:
    """Look an image id up among generated images and edit results (for nested objects)."""

    def resolve(image_id: str) -> dict[str, Any] | None:
        job = sim.by_kind["image"].get(image_id)
        if job is not None:
            return RENDERERS["image"](job, now, base, resolve)
        owner = sim.children.get(image_id)
        if owner is not None and owner[0] in sim.jobs:
            return edit_result_object(sim.jobs[owner[0]], owner[1], now, base, resolve)
        return None

    return resolve


def image_info(sim: SimState, image_id: str, now: float) -> tuple[int, int, str] | None:
    """``(width, height, phase)`` of a LetzAI image (generated or edit result), or None."""
    job = sim.by_kind["image"].get(image_id)
    if job is not None:
        return job.width, job.height, job.state(now)[0]
    owner = sim.children.get(image_id)
    if owner is not None and owner[0] in sim.jobs:
        edit = sim.jobs[owner[0]]
        return edit.width, edit.height, edit.state(now)[0]
    return None


def source_image(sim: SimState, field_name: str, image_id: str, now: float) -> tuple[int, int]:
    """The size of a referenced source image, which must exist and be ready.

    Raises:
        SimError: 400 when the image is unknown or not ready.
    """
    info = image_info(sim, image_id, now)
    if info is None:
        raise SimError(400, [f"{field_name}: image {image_id} not found"])
    if info[2] != "ready":
        raise SimError(400, [f"{field_name}: image {image_id} is not ready"])
    return info[0], info[1]


def render(sim: SimState, req: Request, kind: str, job_id: str, what: str, *, poll: bool = True) -> Reply:
    """``GET /x/{id}``: the job's object now (counted as a poll; thinned by ``thin_get_fields``)."""
    with sim.lock:
        job = sim.get(kind, job_id, what)
        if poll:
            sim.counters.poll(job_id)
        return json_reply(200, job_object(sim, job, req.base, time.monotonic()))


def job_object(sim: SimState, job: Job, base: str, now: float) -> dict[str, Any]:
    """What ``GET /x/{id}`` answers for ``job`` at ``now`` (thinned by ``thin_get_fields``).

    The webhook sender sends the same object, so thin-answer knobs shape both alike. The caller holds
    the lock.
    """
    obj = RENDERERS[job.kind](job, now, base, resolver(sim, base, now))
    if job.kind in THIN_KINDS:
        config = sim.config
        obj = thinned(obj, config.thin_get_fields, job.kind, job.thin_roll, config.thin_rate)
    return obj


def page_params(req: Request, max_limit: int, default_limit: int) -> tuple[int, int]:
    """``(page, limit)`` from the query.

    Raises:
        SimError: 400 for a non-integer or out-of-range value.
    """
    values = []
    for name, default, hi in (("page", 1, 10**9), ("limit", default_limit, max_limit)):
        raw = req.query.get(name)
        try:
            value = default if raw in (None, "") else int(str(raw))
        except ValueError:
            raise SimError(400, [f"{name} must be an integer number"]) from None
        if value < 1:
            raise SimError(400, [f"{name} must not be less than 1"])
        if value > hi:
            raise SimError(400, [f"{name} must not be greater than {hi}"])
        values.append(value)
    return values[0], values[1]


def paginate(
    items: list[tuple[float, Any]], req: Request, max_limit: int, default_limit: int
) -> tuple[list[Any], dict[str, int]]:
    """Sort ``(created, item)`` pairs by ``sortOrder`` (default DESC) and cut one page.

    Returns:
        the page's items and the ``pagination`` object ``{page, limit, total, totalPages}``.
    """
    page, limit = page_params(req, max_limit, default_limit)
    order = (req.query.get("sortOrder") or "DESC").upper()
    if order not in ("ASC", "DESC"):
        raise SimError(400, ["sortOrder must be one of the following values: ASC, DESC"])
    items.sort(key=lambda pair: pair[0], reverse=order == "DESC")
    total = len(items)
    chosen = [item for _, item in items[(page - 1) * limit : page * limit]]
    return chosen, {"page": page, "limit": limit, "total": total, "totalPages": math.ceil(total / limit)}
