"""Shared HTTP plumbing of the LetzAI client: one pooled session, timeouts, error translation.

The client never reads the environment; :mod:`config` passes plain values in. The API key lives only in
the session's default headers and is never put in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from letzai.errors import AnswerLostError, ConnectError, error_for_status

if TYPE_CHECKING:
    from letzai.image_edits import ImageEdits
    from letzai.images import Images
    from letzai.models import Models
    from letzai.upscale import Upscales
    from letzai.user_assets import UserAssets
    from letzai.videos import Videos

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.letz.ai"
#: (connect, read) seconds for API calls.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
#: Media downloads: slower reads are normal for large videos.
MEDIA_TIMEOUT: tuple[float, float] = (10.0, 120.0)

_local = threading.local()


def _pooled_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def media_session() -> requests.Session:
    """A per-thread session for media downloads: no Authorization header, ever."""
    session = getattr(_local, "media", None)
    if session is None:
        session = _pooled_session(8)
        _local.media = session
    return session


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form); None when absent or unparsable."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        from datetime import datetime
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_message(response: requests.Response) -> str:
    """The API's error text: ``message`` (string or list), else ``error``, else the raw body."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:500]
    if isinstance(body, dict):
        message = body.get("message") or body.get("error")
        if isinstance(message, list):
            return "; ".join(str(m) for m in message)
        if message:
            return str(message)
    return str(body)[:500]


class LetzAIClient:
    """A client for the LetzAI API.

    Args:
        api_key: the Bearer token.
        base_url: the API root (default ``https://api.letz.ai``; the simulator's URL in tests).
        timeout: (connect, read) seconds for every API call.
        session: an injected :class:`requests.Session` (the only I/O seam); one pooled session otherwise.
        organization_id: bill this organization on every create call unless a call names another.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        organization_id: str | None = None,
        pool_size: int = 16,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required (set LETZAI_API_KEY)")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.organization_id = organization_id
        self._session = session or _pooled_session(pool_size)
        self._session.headers["Authorization"] = f"Bearer {api_key}"
        self._session.headers.setdefault("Accept", "application/json")

    def __repr__(self) -> str:
        return f"LetzAIClient(base_url={self.base_url!r})"

    # -- resources -------------------------------------------------------------------------------
    @property
    def images(self) -> Images:
        from letzai.images import Images

        return Images(self)

    @property
    def image_edits(self) -> ImageEdits:
        from letzai.image_edits import ImageEdits

        return ImageEdits(self)

    @property
    def upscale(self) -> Upscales:
        from letzai.upscale import Upscales

        return Upscales(self)

    @property
    def videos(self) -> Videos:
        from letzai.videos import Videos

        return Videos(self)

    @property
    def user_assets(self) -> UserAssets:
        from letzai.user_assets import UserAssets

        return UserAssets(self)

    @property
    def models(self) -> Models:
        from letzai.models import Models

        return Models(self)

    # -- plumbing --------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """Send one request; return the 2xx response or raise a :class:`LetzAIError` subclass.

        Raises:
            ConnectError: the connection could not be made (nothing was sent).
            AnswerLostError: sent, but the answer timed out or broke off.
            APIError: a subclass by status (400, 401, 402, 403, 404, 429, 5xx).
        """
        url = f"{self.base_url}{path}"
        clean_params = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self._session.request(
                method, url, json=json, params=clean_params, timeout=self.timeout
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise ConnectError(f"{method} {path}: connect timeout") from exc
        except requests.exceptions.ConnectionError as exc:
            # A refused connection never reached the server; a reset mid-request may have.
            if _is_refused(exc):
                raise ConnectError(f"{method} {path}: connection refused") from exc
            raise AnswerLostError(f"{method} {path}: connection broken ({type(exc).__name__})") from exc
        except requests.exceptions.Timeout as exc:
            raise AnswerLostError(f"{method} {path}: no answer within {self.timeout[1]}s") from exc
        except requests.exceptions.RequestException as exc:
            raise AnswerLostError(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                self._redact(error_message(response)),
                parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _redact(self, text: str) -> str:
        """``text`` with the API key blanked out, should a server ever echo it back."""
        auth = str(self._session.headers.get("Authorization", ""))
        key = auth.removeprefix("Bearer ").strip()
        return text.replace(key, "***") if len(key) >= 4 else text

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request` but return the decoded JSON body (None for 204 or an empty body)."""
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise AnswerLostError(f"{method} {path}: answer was not JSON") from exc

    def with_common(
        self, body: dict[str, Any], organization_id: str | None, webhook_url: str | None
    ) -> dict[str, Any]:
        """Add ``organizationId`` and ``webhookUrl`` to a create body where set."""
        org = organization_id or self.organization_id
        if org:
            body["organizationId"] = org
        if webhook_url:
            body["webhookUrl"] = webhook_url
        return body

    def download(self, url: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Stream a media URL, **without** the Authorization header; yields chunks."""
        with media_session().get(url, stream=True, timeout=MEDIA_TIMEOUT) as response:
            if response.status_code >= 400:
                raise error_for_status(response.status_code, f"media download failed ({response.reason})")
            yield from response.iter_content(chunk_size)


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return value


def _is_refused(exc: BaseException) -> bool:
    text = repr(exc)
    return "Connection refused" in text or "NewConnectionError" in text or "Name or service not known" in text
