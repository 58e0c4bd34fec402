"""``/models``: listing trained models and enterprise training (create, update, delete, thumbnail)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from letzai.resource import Resource
from letzai.responses import Job, Kind, parse_job, unwrap_list

#: Headers in which ``GET /models`` may report pagination.
PAGINATION_HEADERS = ("X-Total-Count", "X-Current-Page", "X-Per-Page", "X-Total-Pages")


class Models(Resource):
    """Trained models (``@name`` in prompts). A training job is a Job of kind ``model``."""

    endpoint = "models"
    path = "/models"
    kind: Kind = "model"

    def list(self, **params: Any) -> builtins.list[dict[str, Any]]:
        """Raw models of one page (``sortBy``, ``page``, ``limit``, ``search``, ``class``, …).

        Pagination may come in headers or in a ``{data, …}`` body; either way the list is returned.
        """
        return self.page(**params)[0]

    def page(self, **params: Any) -> tuple[builtins.list[dict[str, Any]], dict[str, int]]:
        """One page of raw models and its pagination (``total``, ``page``, ``limit``, ``totalPages``)."""
        response = self._client.request("GET", self.path, params=params)
        body = response.json() if response.content else None
        info: dict[str, int] = {}
        for header, key in zip(PAGINATION_HEADERS, ("total", "page", "limit", "totalPages"), strict=True):
            value = response.headers.get(header)
            if value and value.strip().isdigit():
                info[key] = int(value)
        if isinstance(body, dict) and isinstance(body.get("pagination"), dict):
            info.update({k: v for k, v in body["pagination"].items() if isinstance(v, int)})
        return unwrap_list(body), info

    def get_raw(self, id: str) -> dict[str, Any]:
        """The raw model object (``name``, ``class``, ``versions``, ``thumbnail``, …).

        Raises:
            NotFound: unknown model id.
        """
        return dict(self._client.call("GET", f"{self.path}/{id}") or {})

    def create(self, *, skip_checks: Iterable[str] = (), **fields: Any) -> Job:
        """Start a training: ``name``, ``class`` and 1-50 ``trainingDataUrls`` are required.

        Raises:
            ValidationError: a documented field is missing or invalid (nothing was sent).
            APIError, TransportError: the API refused or could not be reached.
        """
        return self._create(skip_checks, fields)

    def update(self, id: str, **fields: Any) -> dict[str, Any]:
        """Change ``privacy``, ``type``, ``description``, ``website`` or ``settings``; the raw model back."""
        body = {k: v for k, v in fields.items() if v is not None}
        return dict(self._client.call("PATCH", f"{self.path}/{id}", json=body) or {})

    def delete(self, id: str) -> None:
        """Delete a model."""
        self._client.call("DELETE", f"{self.path}/{id}")

    def set_thumbnail(self, id: str, imageCompletionId: str) -> dict[str, Any]:
        """Use a LetzAI image as the model's thumbnail; the raw answer back."""
        body = {"imageCompletionId": imageCompletionId}
        return dict(self._client.call("PUT", f"{self.path}/{id}/thumbnail", json=body) or {})

    def get(self, id: str) -> Job:
        """The model as a Job of kind ``model`` (``available`` = trained)."""
        return parse_job(self.kind, self.get_raw(id))
