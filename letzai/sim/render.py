"""The JSON objects the simulator answers, one builder per resource, at a given moment.

A ready job always carries its media URL (absolute, on the simulator's host, no auth needed); a working
job carries a small ``previewImage`` but never a media URL, so "preview only" can never pass for success.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from letzai.sim.jobs import Job
from letzai.sim.media import color_for, image_versions, preview_data_uri

#: Resolves a LetzAI image id (a generated image or an edit's result) to its object, or None.
ImageResolver = Callable[[str], "dict[str, Any] | None"]

_SIM_USER = {"id": "00000000-0000-4000-8000-00000000517e", "name": "Simulator", "username": "letzflow-sim"}


def _progress_fields(job: Job, now: float, working_message: str) -> tuple[str, int, dict[str, Any]]:
    phase, _ = job.state(now)
    status, progress = job.status(now)
    working = phase in ("new", "working")
    if working:
        message, detail = ("Queued" if phase == "new" else working_message), None
    elif phase == "ready":
        message, detail = "Done", None
    elif phase == "interrupted":
        message = detail = "Interrupted by user"
    else:
        message = detail = job.reason or "Generation failed"
    fields: dict[str, Any] = {
        "status": status,
        "progress": progress,
        "progressMessage": message,
        "statusDetail": detail,
        "previewImage": preview_data_uri(color_for(job.id)) if working else None,
    }
    return phase, progress, fields


def image_object(job: Job, now: float, base: str, resolve: ImageResolver) -> dict[str, Any]:
    """``GET /images/{id}`` of a generated image."""
    phase, _, fields = _progress_fields(job, now, "Generating image")
    params = job.params
    return {
        "id": job.id,
        **fields,
        "imageVersions": image_versions(base, job.id, job.width, job.height) if phase == "ready" else {},
        "prompt": params.get("prompt"),
        "privacy": job.privacy,
        "hasWatermark": params.get("hasWatermark", True),
        "isNsfw": False,
        "isUnsafe": False,
        "isHot": False,
        "likes": 0,
        "regenerations": 0,
        "createdAt": job.created_at,
        "models": [],
        "systemVersion": params.get("systemVersion", 3),
        "baseModel": params.get("baseModel"),
        "originalImageCompletion": None,
        "webhookUrl": params.get("webhookUrl"),
        "hidePrompt": False,
        "generationSettings": {
            "width": job.width,
            "height": job.height,
            "quality": params.get("quality", 2),
            "creativity": params.get("creativity", 2),
            "mode": params.get("mode", "default"),
        },
        "user": _SIM_USER,
    }


def edit_result_object(
    edit: Job, index: int, now: float, base: str, resolve: ImageResolver
) -> dict[str, Any]:
    """An image made by an edit (``generatedImageCompletion`` or a choice; also ``GET /images/{id}``)."""
    image_id = edit.children[index]
    phase, _, fields = _progress_fields(edit, now, "Editing image")
    if fields["previewImage"]:
        fields["previewImage"] = preview_data_uri(color_for(image_id))
    params = edit.params
    return {
        "id": image_id,
        **fields,
        "imageVersions": image_versions(base, image_id, edit.width, edit.height) if phase == "ready" else {},
        "prompt": params.get("prompt") or "",
        "privacy": "private",
        "hasWatermark": False,
        "isNsfw": False,
        "isUnsafe": False,
        "createdAt": edit.created_at,
        "models": [],
        "systemVersion": 3,
        "baseModel": params.get("baseModel"),
        "imageEdit": {"id": edit.id, "mode": params.get("mode")},
        "originalImageCompletion": edit.source_id,
        "webhookUrl": params.get("webhookUrl"),
        "hidePrompt": bool(params.get("hidePrompt", False)),
        "generationSettings": {"width": edit.width, "height": edit.height},
    }


def edit_object(job: Job, now: float, base: str, resolve: ImageResolver) -> dict[str, Any]:
    """``GET /image-edits/{id}``: the result lives in ``generatedImageCompletion``."""
    status, _ = job.status(now)
    params = job.params
    choices = list(job.children) if len(job.children) > 1 else []
    return {
        "id": job.id,
        "status": status,
        "mode": params.get("mode"),
        "prompt": params.get("prompt") or "",
        "settings": params.get("settings") or {},
        "width": job.width,
        "height": job.height,
        "imageCompletionsCount": len(job.children),
        "inputImageUrls": params.get("inputImageUrls") or params.get("imageUrl"),
        "webhookUrl": params.get("webhookUrl"),
        "hidePrompt": bool(params.get("hidePrompt", False)),
        "models": [],
        "originalImageCompletion": resolve(job.source_id) if job.source_id else None,
        "originalImageEdit": None,
        "generatedImageCompletion": edit_result_object(job, 0, now, base, resolve),
        "imageCompletionChoices": choices,
        "createdAt": job.created_at,
    }


def upscale_object(job: Job, now: float, base: str, resolve: ImageResolver) -> dict[str, Any]:
    """``GET /upscale/{id}``."""
    phase, _, fields = _progress_fields(job, now, "Upscaling image")
    params = job.params
    ready = phase == "ready"
    return {
        "id": job.id,
        **fields,
        "imageVersions": {"original": f"{base}/media/{job.id}/original.png"} if ready else {},
        "imageId": params.get("imageId"),
        "imageUrl": params.get("imageUrl") or params.get("imageUrls"),
        "strength": params.get("strength", 1),
        "mode": params.get("mode", "sharp"),
        "size": params.get("size"),
        "prompt": params.get("prompt"),
        "width": job.width,
        "height": job.height,
        "createdAt": job.created_at,
    }


def _video_location(job: Job, url: str) -> dict[str, Any]:
    shape = job.variant["video_shape"]
    if shape == "versions_object":
        return {"videoVersions": {"original": url}}
    if shape == "paths":
        return {"videoPaths": {"mp4": url}}
    if job.variant["video_item"] == "string":
        return {"videoVersions": [url]}
    return {"videoVersions": [{"url": url, "format": "mp4", "width": job.width, "height": job.height}]}


def video_object(job: Job, now: float, base: str, resolve: ImageResolver) -> dict[str, Any]:
    """``GET /videos/{id}``; a ready video's URL is in one of the three disputed places (per job)."""
    phase, _, fields = _progress_fields(job, now, "Generating video")
    params = job.params
    settings = {"mode": "default", "withSound": False, "highQuality": False, "duration": 5}
    settings.update(params.get("settings") or {})
    obj = {
        "id": job.id,
        **fields,
        "prompt": params.get("prompt"),
        "width": job.width,
        "height": job.height,
        "settings": settings,
        "originalImageCompletion": resolve(job.source_id) if job.source_id else None,
        "privacy": job.privacy,
        "isHot": False,
        "likes": 0,
        "hasWatermark": False,
        "isNsfw": False,
        "isUnsafe": False,
        "hidePrompt": bool(params.get("hidePrompt", False)),
        "webhookUrl": params.get("webhookUrl"),
        "createdAt": job.created_at,
        "user": _SIM_USER,
    }
    if phase == "ready":
        obj.update(_video_location(job, f"{base}/media/{job.id}/original.mp4"))
    return obj


def model_object(job: Job, now: float, base: str, resolve: ImageResolver) -> dict[str, Any]:
    """``GET /models/{id}`` of a model trained on the simulator."""
    phase, progress = job.state(now)
    status, _ = job.status(now)
    params = job.params
    thumbnail = None
    if job.thumbnail_id:
        image = resolve(job.thumbnail_id)
        thumbnail = ((image or {}).get("imageVersions") or {}).get("original")
    return {
        "id": job.id,
        "userId": _SIM_USER["id"],
        "user": _SIM_USER,
        "username": _SIM_USER["username"],
        "name": params.get("name"),
        "class": str(params.get("class", "")).lower(),
        "type": params.get("type"),
        "description": params.get("description"),
        "website": params.get("website"),
        "status": status,
        "statusDetail": job.reason or None,
        "progress": progress,
        "privacy": job.privacy,
        "trainingMode": params.get("trainingMode", "default"),
        "usages": 0,
        "imagesAvailable": 0,
        "likes": 0,
        "version": 1,
        "thumbnail": thumbnail,
        "thumbnailOptions": {},
        "settings": params.get("settings", []),
        "images": {},
        "isActive": phase == "ready",
        "blockedAt": None,
        "createdAt": job.created_at,
        "systemVersions": ["3"],
        "versions": [
            {
                "id": job.id,
                "version": 1,
                "storagePath": f"models/{job.id}/v1",
                "systemVersions": ["3"],
                "status": status,
                "createdAt": job.created_at,
                "trainedAt": job.created_at if phase == "ready" else None,
            }
        ],
    }


RENDERERS: dict[str, Callable[[Job, float, str, ImageResolver], dict[str, Any]]] = {
    "image": image_object,
    "image_edit": edit_object,
    "upscale": upscale_object,
    "video": video_object,
    "model": model_object,
}
