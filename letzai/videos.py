"""``/videos``: image-to-video and text-to-video."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from letzai.resource import Resource
from letzai.responses import Job, Kind


class Videos(Resource):
    """Create, read, list and re-publish videos (there is no public interruption)."""

    endpoint = "videos"
    path = "/videos"
    kind: Kind = "video"

    def create(self, *, skip_checks: Iterable[str] = (), **fields: Any) -> Job:
        """Start a video; ``prompt`` is required, a source optional, ``settings`` passed through.

        Sources: ``originalImageCompletionId``, ``imageUrl`` or up to 2 ``imageUrls`` (first, last frame).

        Raises:
            ValidationError: a documented field is missing or out of range (nothing was sent).
            APIError, TransportError: the API refused or could not be reached.
        """
        return self._create(skip_checks, fields)

    def set_privacy(self, id: str, privacy: str) -> None:
        """Make a video private or public."""
        self._client.call("PUT", f"{self.path}/{id}/privacy", json={"privacy": privacy})
