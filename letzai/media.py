"""Downloading finished media: streamed, never with the Authorization header."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import requests

from letzai.client import MEDIA_TIMEOUT, media_session, parse_retry_after
from letzai.errors import AnswerLostError, ConnectError, error_for_status


@dataclass
class MediaStream:
    """An open media download: its headers' content type and length, and the body in chunks."""

    url: str
    content_type: str
    length: int | None
    response: requests.Response

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        try:
            yield from self.response.iter_content(size)
        except requests.exceptions.RequestException as exc:
            raise AnswerLostError(f"media download broke off ({type(exc).__name__})") from exc
        finally:
            self.response.close()

    def close(self) -> None:
        self.response.close()


def open_media(url: str) -> MediaStream:
    """Start a streamed GET of a media URL (a fresh, unauthenticated session per thread).

    Raises:
        ConnectError / AnswerLostError: transport failures (retryable).
        APIError: an HTTP error status (404 = the media is gone; a 429's ``retry_after`` is the host's
            Retry-After, which the copy policy waits at least).
    """
    try:
        response = media_session().get(url, stream=True, timeout=MEDIA_TIMEOUT)
    except requests.exceptions.ConnectionError as exc:
        raise ConnectError(f"media host unreachable ({type(exc).__name__})") from exc
    except requests.exceptions.RequestException as exc:
        raise AnswerLostError(f"media download failed ({type(exc).__name__})") from exc
    if response.status_code >= 400:
        response.close()
        raise error_for_status(
            response.status_code,
            f"media download failed: HTTP {response.status_code}",
            parse_retry_after(response.headers.get("Retry-After")),
        )
    length = response.headers.get("Content-Length")
    content_type = response.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()
    return MediaStream(url, content_type, int(length) if length and length.isdigit() else None, response)
