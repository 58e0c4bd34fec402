"""``/images``: text-to-image generation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from letzai.resource import Resource
from letzai.responses import Job, Kind


class Images(Resource):
    """Create, read, list, interrupt and re-publish generated images."""

    endpoint = "images"
    path = "/images"
    kind: Kind = "image"

    def create(self, *, skip_checks: Iterable[str] = (), **fields: Any) -> Job:
        """Start an image; ``fields`` use the API's names (``prompt``, ``width``, ``baseModel``, …).

        Documented fields are checked against :mod:`letzai.limits` unless named in ``skip_checks``; others
        are sent as given; None values are dropped.

        Raises:
            ValidationError: a documented field is out of range (nothing was sent).
            APIError, TransportError: the API refused or could not be reached.
        """
        return self._create(skip_checks, fields)

    def interrupt(self, id: str) -> None:
        """Stop a running image (``PUT /images/{id}/interruption``)."""
        self._client.call("PUT", f"{self.path}/{id}/interruption")

    def set_privacy(self, id: str, privacy: Literal["private", "public", "licensed"] | str) -> None:
        """Make an image private or public."""
        self._client.call("PUT", f"{self.path}/{id}/privacy", json={"privacy": privacy})
