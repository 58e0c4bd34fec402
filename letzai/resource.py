"""What every LetzAI resource shares: building a create body and the resource base class."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from letzai.limits import check_request
from letzai.responses import Job, Kind, parse_job, unwrap_list

if TYPE_CHECKING:
    from letzai.client import LetzAIClient


def drop_none(value: Any) -> Any:
    """``value`` with every None entry of every nested object removed."""
    if isinstance(value, Mapping):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    return value


def build_body(
    client: LetzAIClient, endpoint: str, fields: Mapping[str, Any], skip_checks: Iterable[str] = ()
) -> dict[str, Any]:
    """A validated create body: Nones dropped, the client's default organization added.

    Raises:
        ValidationError: a documented field is outside its documented limits (nothing was sent).
    """
    body: dict[str, Any] = drop_none(dict(fields))
    body = client.with_common(body, body.pop("organizationId", None), body.pop("webhookUrl", None))
    check_request(endpoint, body, skip_checks)
    return body


class Resource:
    """Base of the resource classes: ``path`` is the API route, ``kind`` the job kind it answers."""

    endpoint: str = ""
    path: str = ""
    kind: Kind = "image"

    def __init__(self, client: LetzAIClient) -> None:
        self._client = client

    def _create(self, skip_checks: Iterable[str], fields: Mapping[str, Any]) -> Job:
        body = build_body(self._client, self.endpoint, fields, skip_checks)
        return parse_job(self.kind, self._client.call("POST", self.path, json=body) or {})

    def get(self, id: str) -> Job:
        """The job with this id.

        Raises:
            NotFound: unknown id (removed or expired).
        """
        return parse_job(self.kind, self._client.call("GET", f"{self.path}/{id}") or {})

    def fetch(self, id: str) -> dict[str, Any]:
        """The raw object with this id (what lost-answer recovery compares field by field).

        Raises:
            NotFound: unknown id.
        """
        raw = self._client.call("GET", f"{self.path}/{id}")
        return raw if isinstance(raw, dict) else {}

    def list(self, **params: Any) -> builtins.list[dict[str, Any]]:
        """Raw objects of one list page; ``params`` are the API's query names (booleans and lists allowed)."""

        return unwrap_list(self._client.call("GET", self.path, params=params))
