"""The one exception tree of the LetzAI client.

Every failure the client can raise derives from :class:`LetzAIError`. HTTP and transport errors are
translated exactly once, in :mod:`letzai.client`, with ``raise ... from exc``::

    LetzAIError
    ├── ValidationError          a request was refused locally, before anything was sent (field, value, range)
    ├── TransportError           no usable HTTP answer                                  retryable
    │   ├── ConnectError         the request never reached the server (safe to re-send a POST)
    │   └── AnswerLostError      the request may have been sent but its answer was lost (timeout, reset)
    └── APIError                 the API answered with an error status (``status``, ``message``)
        ├── BadRequest           400: bad or unknown field; the API's message is kept
        ├── AuthError            401 / 403
        │   ├── Unauthorized     401: bad key, or not a member of the organization
        │   └── Forbidden        403: not allowed for the subscription
        ├── InsufficientCredits  402: out of credits (the batch pauses)
        ├── NotFound             404: unknown id (while polling: removed or expired)
        ├── RateLimited          429: ``retry_after`` seconds when the API said        retryable
        └── ServerError          5xx                                                    retryable

Messages never contain the API key: the client builds them from the response body only.
"""

from __future__ import annotations

from typing import Any


class LetzAIError(Exception):
    """Root of every error the LetzAI client raises."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(LetzAIError, ValueError):
    """A request parameter is outside what the API documents; nothing was sent.

    Attributes:
        field: the request field (dotted for nested settings, e.g. ``settings.intensity``).
        value: the offending value.
        allowed: a human description of what is allowed.
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}={shown} is invalid: {allowed}")
        self.field = field
        self.value = value
        self.allowed = allowed


class TransportError(LetzAIError):
    """No usable HTTP answer was received."""

    retryable = True


class ConnectError(TransportError):
    """The connection could not be made: the request certainly did not reach the API."""


class AnswerLostError(TransportError):
    """The request may have reached the API, but no answer came back (timeout, reset, broken body).

    For a POST this means the job may exist and be billed: reconcile before re-sending.
    """


class APIError(LetzAIError):
    """The API answered with an HTTP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.api_message = message


class BadRequest(APIError):
    """400: the API refused the request body (bad or unknown field)."""


class AuthError(APIError):
    """401 or 403: the key or the account may not do this; stop the batch."""


class Unauthorized(AuthError):
    """401: bad API key, or not a member of the given organization."""


class Forbidden(AuthError):
    """403: the subscription does not allow this."""


class InsufficientCredits(APIError):
    """402: the user or organization is out of credits; pause and resume later."""


class NotFound(APIError):
    """404: unknown id; while polling it means the job was removed or expired."""


class RateLimited(APIError):
    """429: too many requests. ``retry_after`` is the server's hint in seconds, or None."""

    retryable = True

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(status, message)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: a transient failure on LetzAI's side."""

    retryable = True


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    402: InsufficientCredits,
    403: Forbidden,
    404: NotFound,
}


def error_for_status(status: int, message: str, retry_after: float | None = None) -> APIError:
    """Build the right :class:`APIError` subclass for an HTTP error status."""
    if status == 429:
        return RateLimited(status, message, retry_after)
    if status >= 500:
        return ServerError(status, message)
    return _BY_STATUS.get(status, BadRequest if 400 <= status < 500 else ServerError)(status, message)
