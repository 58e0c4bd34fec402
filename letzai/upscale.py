"""``/upscale`` (singular route): upscaling a LetzAI image or a public image URL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from letzai.resource import Resource
from letzai.responses import Job, Kind


class Upscales(Resource):
    """Create, read, list and delete upscales."""

    endpoint = "upscale"
    path = "/upscale"
    kind: Kind = "upscale"

    def create(self, *, skip_checks: Iterable[str] = (), **fields: Any) -> Job:
        """Start an upscale of ``imageId`` or ``imageUrl`` (``strength`` 1-5, ``size`` 2-12).

        Raises:
            ValidationError: no source, or a documented field out of range (nothing was sent).
            APIError, TransportError: the API refused or could not be reached.
        """
        return self._create(skip_checks, fields)

    def delete(self, id: str) -> None:
        """Delete an upscale."""
        self._client.call("DELETE", f"{self.path}/{id}")
