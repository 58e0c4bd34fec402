"""Webhook tokens: random per POST, only the hash kept, and an exact identity for a lost answer's job."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import fakeredis
import pytest

from letzai.identity import Verdict, judge
from letzai.webhook_tokens import TOKEN_RE, hook_url, new_token, same_hash, token_hash, token_of
from tasks.recovery import Found, find_created_job
from tasks.waker import Waker

SINCE = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
LATER = "2026-12-01T12:00:01.000Z"
BASE = "https://hooks.example.com/letzflow"


def test_tokens_are_random_urlsafe_and_only_their_hash_is_compared() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    token = tokens.pop()
    assert TOKEN_RE.match(token) and len(token) * 6 >= 128
    url = hook_url(BASE + "/", token)
    assert url == f"{BASE}/{token}" and token_of(url) == token and token_of(url + "/") == token
    assert token_of(f"{BASE}/short") is None and token_of(None) is None and token_of(42) is None
    digest = token_hash(token)
    assert len(digest) == 64 and token not in digest
    assert same_hash(digest, token) and not same_hash(digest, new_token()) and not same_hash(None, token)


def _hooked(token: str) -> dict[str, str]:
    return {"webhookUrl": hook_url(BASE, token), "createdAt": LATER}


@pytest.mark.parametrize(
    ("endpoint", "body", "shown", "verdict"),
    [
        # the token is enough, however thin the object: upscale objects echo no source, videos no URL
        ("upscale", {"imageUrl": "https://cdn/x.png"}, {}, Verdict.MATCH),
        ("videos", {"prompt": "orbit", "imageUrl": "https://cdn/x.png"}, {}, Verdict.MATCH),
        ("images", {"prompt": "red bag"}, {"prompt": "blue bag"}, Verdict.MATCH),
        ("images", {"prompt": "red bag"}, {"createdAt": "2020-01-01T00:00:00Z"}, Verdict.MATCH),
    ],
)
def test_an_object_echoing_the_posts_token_is_an_exact_match(
    endpoint: str, body: dict[str, str], shown: dict[str, str], verdict: Verdict
) -> None:
    token = new_token()
    got = judge(endpoint, body, {**_hooked(token), **shown}, SINCE, hook_hash=token_hash(token))
    assert got.verdict is verdict and got.exact


def test_another_token_is_another_posts_job_and_no_echo_falls_back_to_the_fields() -> None:
    ours, theirs = new_token(), new_token()
    body = {"prompt": "red bag"}
    other = judge("images", body, {"prompt": "red bag", **_hooked(theirs)}, SINCE, hook_hash=token_hash(ours))
    assert other.verdict is Verdict.DIFFERENT and not other.exact
    bare = {"prompt": "red bag", "createdAt": LATER}
    fields = judge("images", body, bare, SINCE, hook_hash=token_hash(ours))
    assert fields.verdict is Verdict.MATCH and not fields.exact
    thin = judge(
        "upscale", {"imageUrl": "https://cdn/x.png"}, {"createdAt": LATER}, SINCE, hook_hash=token_hash(ours)
    )
    assert thin.verdict is Verdict.UNKNOWN  # a missing field still proves nothing


class _Listing:
    def __init__(self, objects: list[dict[str, str]]) -> None:
        self.objects = objects

    def list(self, **params: object) -> list[dict[str, str]]:
        return self.objects if params.get("page") == 1 else []

    def fetch(self, id: str) -> dict[str, str]:
        return next(o for o in self.objects if o["id"] == id)


def test_recovery_adopts_by_token_even_beside_an_unsettled_twin() -> None:
    ours, twin = new_token(), new_token()
    listing = _Listing(
        [
            {"id": "job-twin", "status": "generating", **_hooked(twin)},
            {"id": "job-ours", "status": "generating", **_hooked(ours)},
        ]
    )
    body = {"imageUrl": "https://cdn/x.png"}
    found = find_created_job(
        "upscale",
        body,
        SINCE,
        listing,
        claimed=lambda ids: set(),
        twins=lambda: 1,
        hook_hash=token_hash(ours),
    )
    assert found.found is Found.ADOPT and found.remote_id == "job-ours"
    nothing = find_created_job(
        "upscale",
        body,
        SINCE,
        listing,
        claimed=lambda ids: set(),
        twins=lambda: 1,
        hook_hash=token_hash(new_token()),
    )
    assert nothing.found is Found.ABSENT  # both listed jobs carry other POSTs' tokens: proven absent


def test_baton_lets_exactly_one_message_of_a_look_go_on() -> None:
    waker = Waker(fakeredis.FakeRedis())
    first = waker.claim(7, None)
    assert first is not None and not waker.stale(7, first)
    second = waker.claim(7, first)  # one message of the look goes on
    assert second is not None and second != first
    assert waker.stale(7, first) and waker.claim(7, first) is None  # its twin is dropped
    assert waker.claim(7, None) is not None  # a message from before any parking always goes on


def test_a_parked_look_is_taken_once_by_its_webhook_or_by_the_sweep_past_its_fallback() -> None:
    waker = Waker(fakeredis.FakeRedis())
    assert waker.wake(3) is None and waker.take_hint(3) and not waker.take_hint(3)  # too early: a hint
    now = time.time()
    waker.park(3, "look-3", fallback_at=now + 30)
    assert waker.due(now) == []  # not yet due
    assert waker.wake(3) == "look-3" and waker.wake(3) is None  # the duplicate finds nothing to wake
    assert waker.due(now + 60) == []  # taken by the webhook: the sweep finds nothing either
    waker.park(4, "look-4", fallback_at=now + 1)
    waker.park(5, "look-5", fallback_at=now + 100)
    assert waker.due(now + 2) == ["look-4"] and waker.due(now + 2) == []  # the webhook was lost
    assert waker.unpark(4) is None and waker.wake(4) is None
    waker.done(5)
    assert waker.unpark(5) is None and waker.due(now + 200) == [] and not waker.take_hint(5)
