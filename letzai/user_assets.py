"""``/user-assets``: uploading a local file to get a public source URL for edits, upscales and videos."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from letzai.errors import AnswerLostError, ConnectError, error_for_status
from letzai.limits import check_request

if TYPE_CHECKING:
    from letzai.client import LetzAIClient

#: (connect, read) seconds for the presigned PUT.
UPLOAD_TIMEOUT: tuple[float, float] = (10.0, 300.0)


class UserAssets:
    """Upload inputs: ``POST /user-assets`` for a presigned URL, then PUT the bytes there."""

    def __init__(self, client: LetzAIClient) -> None:
        self._client = client

    def upload(self, path: str | Path, *, mime_type: str | None = None) -> str:
        """Upload a file and return its public ``imageUrl``.

        The bytes go to the presigned ``uploadUrl`` with the file's Content-Type and without the
        Authorization header (a plain request, not the client's session).

        Raises:
            ValidationError: the extension is not one LetzAI accepts.
            APIError, TransportError: the API or the upload host refused or could not be reached.
        """
        file = Path(path)
        mime = mime_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        body = {
            "extension": file.suffix.lstrip(".").lower(),
            "originalFilename": file.name,
            "mimeType": mime,
            "fileSize": file.stat().st_size,
        }
        check_request("user_assets", body)
        answer = self._client.call("POST", "/user-assets", json=body) or {}
        upload_url, image_url = answer.get("uploadUrl"), answer.get("imageUrl")
        if not upload_url or not image_url:
            raise AnswerLostError(f"POST /user-assets: no uploadUrl/imageUrl (keys: {sorted(answer)})")
        _put(upload_url, file, mime)
        return str(image_url)


def _put(url: str, file: Path, mime: str) -> None:
    try:
        with file.open("rb") as data:
            response = requests.put(url, data=data, headers={"Content-Type": mime}, timeout=UPLOAD_TIMEOUT)
    except requests.exceptions.ConnectionError as exc:
        raise ConnectError(f"upload host unreachable ({type(exc).__name__})") from exc
    except requests.exceptions.RequestException as exc:
        raise AnswerLostError(f"upload failed ({type(exc).__name__})") from exc
    if response.status_code >= 400:
        raise error_for_status(response.status_code, f"upload to the presigned URL failed: {response.reason}")
