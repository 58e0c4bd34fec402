"""Which LetzAI resource answers for a step's job: one table from remote kind to endpoint to resource."""

from __future__ import annotations

from letzai.client import LetzAIClient
from letzai.resource import Resource

#: The endpoint (``letzflow.spec.requests.ENDPOINTS``' values) whose jobs a step of each remote kind runs.
ENDPOINT_OF_KIND = {"image": "images", "image_edit": "image_edits", "upscale": "upscale", "video": "videos"}


def resource_of(client: LetzAIClient, endpoint: str) -> Resource:
    """The client's resource for ``endpoint`` (``images``, ``image_edits``, ``upscale``, ``videos``)."""
    return {
        "images": client.images,
        "image_edits": client.image_edits,
        "upscale": client.upscale,
        "videos": client.videos,
    }[endpoint]
