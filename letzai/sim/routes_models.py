"""Routes of models (catalogue and enterprise training) and of ``POST /user-assets`` (presigned uploads)."""

from __future__ import annotations

import mimetypes
import re
import time
from typing import Any

from letzai.sim import schemas
from letzai.sim.jobs import now_iso
from letzai.sim.render import model_object
from letzai.sim.replies import Reply, SimError, json_reply, no_content, not_found
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

_STOCK_CREATED = now_iso(1_700_000_000)


def _stock(model_id: str, name: str, model_class: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": name,
        "class": model_class,
        "type": None,
        "description": f"A catalogue {model_class} model of the simulator",
        "status": "available",
        "progress": 100,
        "privacy": "public",
        "usages": 1000,
        "likes": 10,
        "version": 1,
        "thumbnail": None,
        "isActive": True,
        "createdAt": _STOCK_CREATED,
        "systemVersions": ["3"],
        "versions": [{"id": model_id, "version": 1, "status": "available", "systemVersions": ["3"]}],
    }


#: Public catalogue models every account sees (read-only).
STOCK_MODELS = {
    m["id"]: m
    for m in (
        _stock("5f0c1e9a-7b51-4f0e-9d43-6f1e2b7c0a01", "letzai_portrait", "person"),
        _stock("5f0c1e9a-7b51-4f0e-9d43-6f1e2b7c0a02", "studio_product", "object"),
        _stock("5f0c1e9a-7b51-4f0e-9d43-6f1e2b7c0a03", "watercolor", "style"),
    )
}


def create_model(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``POST /models``: 200; the model trains (new, training) until ``available``."""
    params = body_of(req, schemas.check_model)
    params["class"] = str(params["class"]).lower()
    with sim.lock:
        taken = {m["name"] for m in STOCK_MODELS.values()} | {
            j.params.get("name") for j in sim.by_kind["model"].values()
        }
        if params["name"] in taken:
            raise SimError(400, [f"a model named {params['name']} already exists"])
        privacy = params.get("privacy", "private")
        job = sim.create(
            "model", "/models", params, privacy=privacy, request=recorded_body(req), base=req.base
        )
        req.created_id = job.id
        now = time.monotonic()
        return json_reply(200, model_object(job, now, req.base, resolver(sim, req.base, now)))


def list_models(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /models``: per call either a bare array with ``X-Total-Count``-style headers or ``{data, …}``."""
    model_class = (req.query.get("class") or "").lower()
    search = (req.query.get("search") or "").lower()
    with sim.lock:
        sim.counters.list_calls["/models"] += 1
        now = time.monotonic()
        resolve = resolver(sim, req.base, now)
        pairs: list[tuple[float, Any]] = [(-1.0, m) for m in STOCK_MODELS.values()]
        pairs += [(j.created, model_object(j, now, req.base, resolve)) for j in sim.by_kind["model"].values()]
        pairs = [
            (created, m)
            for created, m in pairs
            if (not model_class or m["class"] == model_class) and search in str(m["name"]).lower()
        ]
        models, pagination = paginate(pairs, req, 50, 20)
        envelope = sim.next_list_rng().random() < 0.5
    if envelope:
        return json_reply(200, {"data": models, "pagination": pagination})
    headers = {
        "X-Total-Count": str(pagination["total"]),
        "X-Current-Page": str(pagination["page"]),
        "X-Per-Page": str(pagination["limit"]),
        "X-Total-Pages": str(pagination["totalPages"]),
    }
    return json_reply(200, models, headers)


def _own_model(sim: SimState, model_id: str) -> Any:
    if model_id in STOCK_MODELS:
        raise SimError(403, "You can only change your own models")
    return sim.get("model", model_id, "Model")


def get_model(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``GET /models/{id}``: 200 or 404."""
    if ids[0] in STOCK_MODELS:
        return json_reply(200, STOCK_MODELS[ids[0]])
    return render(sim, req, "model", ids[0], "Model")


def patch_model(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``PATCH /models/{id}``: 200 with the updated model."""
    params = body_of(req, schemas.check_model_patch)
    with sim.lock:
        job = _own_model(sim, ids[0])
        if "privacy" in params:
            job.privacy = params.pop("privacy")
        job.params.update(params)
    return render(sim, req, "model", ids[0], "Model", poll=False)


def delete_model(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``DELETE /models/{id}``: 204."""
    with sim.lock:
        _own_model(sim, ids[0])
        sim.remove(ids[0])
    return no_content()


def model_thumbnail(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``PUT /models/{id}/thumbnail``: 200, or 404 when the model or the image is unknown."""
    params = body_of(req, schemas.check_thumbnail)
    with sim.lock:
        job = _own_model(sim, ids[0])
        try:
            source_image(sim, "imageCompletionId", params["imageCompletionId"], time.monotonic())
        except SimError:
            raise not_found("Image completion") from None
        job.thumbnail_id = params["imageCompletionId"]
    return render(sim, req, "model", ids[0], "Model", poll=False)


def _safe_filename(name: str, extension: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rsplit("/", 1)[-1]).strip("._") or "upload"
    return stem if stem.lower().endswith(f".{extension}") else f"{stem}.{extension}"


def create_user_asset(sim: SimState, req: Request, ids: list[str]) -> Reply:
    """``POST /user-assets``: a presigned-style ``uploadUrl`` (PUT, no auth) and the public ``imageUrl``."""
    params = body_of(req, schemas.check_asset)
    extension = str(params["extension"]).lstrip(".").lower()
    filename = _safe_filename(str(params.get("originalFilename") or "upload"), extension)
    content_type = params.get("mimeType") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    asset = sim.new_asset(filename, str(content_type))
    upload = (
        f"{req.base}/_uploads/{asset.token}/{filename}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Expires=3600&X-Amz-Signature={asset.signature}"
    )
    return json_reply(
        201, {"uploadUrl": upload, "imageUrl": f"{req.base}/media/assets/{asset.token}/{filename}"}
    )


MODEL_ROUTES = (
    Route("GET", ("models",), list_models),
    Route("POST", ("models",), create_model, create=True),
    Route("GET", ("models", "{id}"), get_model),
    Route("PATCH", ("models", "{id}"), patch_model),
    Route("DELETE", ("models", "{id}"), delete_model),
    Route("PUT", ("models", "{id}", "thumbnail"), model_thumbnail),
    Route("POST", ("user-assets",), create_user_asset),
)
