"""What a simulator route answers: a :class:`Reply`, or a raised :class:`SimError` (the API's error body)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


@dataclass
class Reply:
    """An HTTP answer: status, raw body bytes, content type and extra headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Reply(status, body, headers=dict(headers or {}))


def no_content() -> Reply:
    """A 204 (no body, no content type)."""
    return Reply(204, b"", content_type="")


def error_body(status: int, message: str | list[str]) -> dict[str, Any]:
    """The API's error object: ``{statusCode, message, error}``; ``message`` may be a list."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"statusCode": status, "message": message, "error": phrase}


class SimError(Exception):
    """Raised by a route to answer an API error (``message`` is a string or a list of strings)."""

    def __init__(self, status: int, message: str | list[str], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def reply(self) -> Reply:
        """The error as an answer."""
        return json_reply(self.status, error_body(self.status, self.message), self.headers)


def not_found(what: str) -> SimError:
    """A 404 for an unknown id."""
    return SimError(404, f"{what} not found")


def retry_after_header(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header (whole seconds, at least 0)."""
    return {"Retry-After": str(max(0, round(seconds)))}
