"""Webhook URLs that identify one POST exactly: a random token per POST, of which only the hash is kept.

LetzAI accepts ``webhookUrl`` on every create call, calls it when the job ends (unsigned: no secret is
shared), and echoes it in the job's objects. letzflow sends ``<base>/<token>`` with a fresh token of
:data:`TOKEN_BYTES` random bytes for every POST, and stores only :func:`token_hash` of it. So:

- a call to the receiver proves nothing but knowledge of the URL; the token is the only credential, it is
  never stored or logged, and a ledger dump does not reveal it;
- a listed object whose ``webhookUrl`` ends in a token whose hash is a step's is that step's POST's job,
  whatever else the object shows or leaves out (:func:`letzai.identity.judge`).

Everything here is pure.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

#: Random bytes per token (192 bits; the issue asks for at least 128).
TOKEN_BYTES = 24
#: What a token looks like (``secrets.token_urlsafe``); anything else is refused before any lookup.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")


def new_token() -> str:
    """A fresh token (URL-safe base64 of :data:`TOKEN_BYTES` random bytes: 32 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The stored form of a token: sha256, hex (64 characters)."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def hook_url(base: str, token: str) -> str:
    """The ``webhookUrl`` of one POST."""
    return f"{base.rstrip('/')}/{token}"


def token_of(url: object) -> str | None:
    """The token at the end of a webhook URL (an echoed ``webhookUrl``, or a request path), or None."""
    if not isinstance(url, str):
        return None
    last = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return last if TOKEN_RE.match(last) else None


def same_hash(stored: str | None, token: str) -> bool:
    """Whether ``token`` hashes to ``stored``, compared in constant time."""
    if not stored:
        return False
    return hmac.compare_digest(stored.encode(), token_hash(token).encode())
