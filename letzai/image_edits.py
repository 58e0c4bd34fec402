"""``/image-edits``: context edits, skin fixes, inpainting and outpainting."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from letzai.resource import Resource
from letzai.responses import Job, Kind


class ImageEdits(Resource):
    """Create, read and list image edits; the result is ``generatedImageCompletion`` (and choices)."""

    endpoint = "image_edits"
    path = "/image-edits"
    kind: Kind = "image_edit"

    def create(self, *, skip_checks: Iterable[str] = (), **fields: Any) -> Job:
        """Start an edit; ``mode`` (context, skin, in, out) and a source are required.

        Sources: ``originalImageCompletionId``, ``originalImageCompletionIds``, ``imageUrl`` or
        ``inputImageUrls`` (at most 9). Fields use the API's names; None values are dropped.

        Raises:
            ValidationError: a documented field is missing or out of range (nothing was sent).
            APIError, TransportError: the API refused or could not be reached.
        """
        return self._create(skip_checks, fields)
