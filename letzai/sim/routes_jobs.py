"""Routes of the job resources: images, image edits, upscales and videos."""

from __future__ import annotations

import time
from typing import Any

from letzai.sim import schemas
from letzai.sim.media import fit_size
from letzai.sim.render import RENDERERS, edit_result_object
from letzai.sim.replies import Reply, SimError, json_reply, no_content
from letzai.sim.routes import (
    Request,
    Route,
    body_of,
    paginate,
    recorded_body,
    render,
    resolver,
    source_image,
)
from letzai.sim.state import SimState
from letzai.sim.thin import thinned

MAX_SIDE = 2160
_EDIT_LONG_SIDE = {"1k": 1024, "2k": 2048, "4k": MAX_SIDE}


def _created(
    sim: SimState, req: Request, kind: str, endpoint: str, params: dict[str, Any], **attrs: Any
) -> Reply:
    """Create the job (recording the body as sent) and answer its object, never thinned."""
    params.pop("mask", None)
    with sim.lock:
        job = sim.create(kind, endpoint, params, request=recorded_body(req), base=req.base, **attrs)
        req.created_id = job.id
        now = time.monotonic()
        payload = RENDERERS[kind](job, now, req.base, resolver(sim, req.base, now))
        return json_reply(job.variant["create_status"], payload)


def _aspect_size(aspect: float, long_side: int) -> tuple[int, int]:
    if aspect >= 1:
        return long_side, max(1, round(long_side / aspect))
    return max(1, round(long_side * aspect)), long_side


def _list(sim: SimState, req: Request, kinds: tuple[str, ...], endpoint: str, default_limit: int) -> Any:
    status_filter = req.query.get("status")
    with sim.lock:
        sim.counters.list_calls[endpoint] += 1
        now = time.monotonic()
        resolve = resolver(sim, req.base, now)
        pairs: list[tuple[float, tuple[str, Any, int]]] = []
        for kind in kinds:
            for job in sim.by_kind[kind].values():
                if status_filter and job.status(now)[0] != status_filter:
                    continue
                if kind == "image_edit" and endpoint == "/images":
                    pairs.extend((job.created, ("child", job, i)) for i in range(len(job.children)))
                else:
                    pairs.append((job.created, (kind, job, 0)))
        page, pagination = paginate(pairs, req, 100 if endpoint != "/image-edits" else 50, default_limit)
        fields, rate = sim.config.thin_list_fields, sim.config.thin_rate
        objects = []
        for kind, job, index in page:
            if kind == "child":
                obj, shown_as = edit_result_object(job, index, now, req.base, resolve), "image"
            else:
                obj, shown_as = RENDERERS[kind](job, now, req.base, resolve), kind
            objects.append(thinned(obj, fields, shown_as, job.thin_roll, rate))
    return objects, pagination


def create_image(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``POST /images``."""
    params = body_of(req, schemas.check_image)
    width, height = int(params.get("width", 1600)), int(params.get("height", 1600))
    return _created(sim, req, "image", "/images", params, width=width, height=height)


def list_images(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /images``: a bare array (edit results included, carrying ``imageEdit``)."""
    objects, _ = _list(sim, req, ("image", "image_edit"), "/images", 10)
    return json_reply(200, objects)


def get_image(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /images/{id}``: a generated image or an edit's result."""
    with sim.lock:
        owner = sim.children.get(ids[0])
        if owner is not None and owner[0] in sim.jobs:
            sim.counters.poll(ids[0])
            now = time.monotonic()
            edit = sim.jobs[owner[0]]
            obj = edit_result_object(edit, owner[1], now, req.base, resolver(sim, req.base, now))
            config = sim.config
            return json_reply(
                200, thinned(obj, config.thin_get_fields, "image", edit.thin_roll, config.thin_rate)
            )
    return render(sim, req, "image", ids[0], "Image")


def interrupt_image(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``PUT /images/{id}/interruption``: 204, or 400 when the image is no longer generating."""
    with sim.lock:
        if ids[0] in sim.children:
            raise SimError(400, "Only generating images can be interrupted")
        job = sim.get("image", ids[0], "Image")
        if not sim.interrupt(job):
            raise SimError(400, "Only generating images can be interrupted")
    return no_content()


def _set_privacy(sim: SimState, req: Request, kind: str, job_id: str, what: str) -> Reply:
    params = body_of(req, schemas.check_privacy)
    with sim.lock:
        sim.get(kind, job_id, what).privacy = params["privacy"]
    return no_content()


def image_privacy(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``PUT /images/{id}/privacy``."""
    return _set_privacy(sim, req, "image", ids[0], "Image")


def create_edit(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``POST /image-edits``: one result image per ``imageCompletionsCount`` (skin: always one)."""
    params = body_of(req, schemas.check_edit)
    mode = params["mode"]
    count = (
        1
        if mode == "skin"
        else int(params.get("imageCompletionsCount") or (3 if mode in ("in", "out") else 1))
    )
    params["imageCompletionsCount"] = count
    now = time.monotonic()
    with sim.lock:
        source_id = (
            params.get("originalImageCompletionId") or (params.get("originalImageCompletionIds") or [None])[0]
        )
        for image_id in params.get("originalImageCompletionIds") or []:
            source_image(sim, "originalImageCompletionIds", image_id, now)
        size = source_image(sim, "originalImageCompletionId", source_id, now) if source_id else None
        settings = params.get("settings") or {}
        if params.get("width") and params.get("height"):
            size = (int(params["width"]), int(params["height"]))
        elif mode == "out" and size:
            zoom = float(settings.get("zoomSize") or 1.5)
            size = (min(MAX_SIDE, round(size[0] * zoom)), min(MAX_SIDE, round(size[1] * zoom)))
        elif size is None or (mode == "context" and settings.get("resolution")):
            ratio = str(settings.get("aspect_ratio") or "1:1").split(":")
            aspect = float(ratio[0]) / float(ratio[1])
            size = _aspect_size(aspect, _EDIT_LONG_SIDE.get(str(settings.get("resolution")), 1024))
        return _created(
            sim, req, "image_edit", "/image-edits", params, width=size[0], height=size[1], source_id=source_id
        )


def list_edits(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /image-edits``: the ``{data, pagination}`` envelope."""
    objects, pagination = _list(sim, req, ("image_edit",), "/image-edits", 10)
    return json_reply(200, {"data": objects, "pagination": pagination})


def get_edit(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /image-edits/{id}``."""
    return render(sim, req, "image_edit", ids[0], "Image edit")


def create_upscale(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``POST /upscale``: about ``size`` megapixels (default 4) in the source's aspect ratio."""
    params = body_of(req, schemas.check_upscale)
    with sim.lock:
        source = (1024, 1024)
        if params.get("imageId"):
            source = source_image(sim, "imageId", params["imageId"], time.monotonic())
        width, height = fit_size(float(params.get("size") or 4), source[0] / source[1])
        source_id = params.get("imageId")
        return _created(
            sim, req, "upscale", "/upscale", params, width=width, height=height, source_id=source_id
        )


def list_upscales(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /upscale``: a bare array, or a 404 with ``upscale_list_404`` (the guide says it may)."""
    if sim.config.upscale_list_404:
        with sim.lock:
            sim.counters.list_calls["/upscale"] += 1
        raise SimError(404, "Cannot GET /upscale")
    objects, _ = _list(sim, req, ("upscale",), "/upscale", 10)
    return json_reply(200, objects)


def get_upscale(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /upscale/{id}``."""
    return render(sim, req, "upscale", ids[0], "Upscale")


def delete_upscale(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``DELETE /upscale/{id}``: 204; the upscale is gone afterwards."""
    with sim.lock:
        sim.get("upscale", ids[0], "Upscale")
        sim.remove(ids[0])
    return no_content()


def create_video(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``POST /videos`` (no source means text-to-video)."""
    params = body_of(req, schemas.check_video)
    with sim.lock:
        source_id = params.get("originalImageCompletionId")
        size = (1280, 720)
        if source_id:
            src_w, src_h = source_image(sim, "originalImageCompletionId", source_id, time.monotonic())
            size = _aspect_size(src_w / src_h, 1280)
        if params.get("width") and params.get("height"):
            size = (int(params["width"]), int(params["height"]))
        return _created(
            sim, req, "video", "/videos", params, width=size[0], height=size[1], source_id=source_id
        )


def list_videos(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /videos``: a bare array."""
    objects, _ = _list(sim, req, ("video",), "/videos", 10)
    return json_reply(200, objects)


def get_video(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /videos/{id}``."""
    return render(sim, req, "video", ids[0], "Video")


def video_privacy(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``PUT /videos/{id}/privacy``."""
    return _set_privacy(sim, req, "video", ids[0], "Video")


JOB_ROUTES = (
    Route("POST", ("images",), create_image, create=True),
    Route("GET", ("images",), list_images),
    Route("GET", ("images", "{id}"), get_image),
    Route("PUT", ("images", "{id}", "interruption"), interrupt_image),
    Route("PUT", ("images", "{id}", "privacy"), image_privacy),
    Route("POST", ("image-edits",), create_edit, create=True),
    Route("GET", ("image-edits",), list_edits),
    Route("GET", ("image-edits", "{id}"), get_edit),
    Route("POST", ("upscale",), create_upscale, create=True),
    Route("GET", ("upscale",), list_upscales),
    Route("GET", ("upscale", "{id}"), get_upscale),
    Route("DELETE", ("upscale", "{id}"), delete_upscale),
    Route("POST", ("videos",), create_video, create=True),
    Route("GET", ("videos",), list_videos),
    Route("GET", ("videos", "{id}"), get_video),
    Route("PUT", ("videos", "{id}", "privacy"), video_privacy),
)
