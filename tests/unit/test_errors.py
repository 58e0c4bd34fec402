"""HTTP and transport errors are translated once, by status class; the API key never shows."""

from __future__ import annotations

import pytest
import requests
import responses

from letzai.client import LetzAIClient, parse_retry_after
from letzai.errors import (
    AnswerLostError,
    APIError,
    BadRequest,
    ConnectError,
    Forbidden,
    InsufficientCredits,
    LetzAIError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    error_for_status,
)

BASE = "http://api.test"
KEY = "sk-live-Zq81xYsecretKEY"


@pytest.fixture
def client() -> LetzAIClient:
    return LetzAIClient(KEY, base_url=BASE)


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequest, False),
        (401, Unauthorized, False),
        (402, InsufficientCredits, False),
        (403, Forbidden, False),
        (404, NotFound, False),
        (409, BadRequest, False),
        (422, BadRequest, False),
        (429, RateLimited, True),
        (500, ServerError, True),
        (502, ServerError, True),
        (503, ServerError, True),
        (504, ServerError, True),
    ],
)
def test_every_status_class_maps_to_its_error(client, api, status, cls, retryable):
    api.get(f"{BASE}/images/x", status=status, json={"message": "nope"})
    with pytest.raises(cls) as info:
        client.images.get("x")
    assert type(info.value) is cls
    assert info.value.status == status and info.value.api_message == "nope"
    assert info.value.retryable is retryable
    assert str(info.value) == f"HTTP {status}: nope"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"json": {"message": "prompt should not be empty"}}, "prompt should not be empty"),
        (
            {"json": {"message": ["width must be >= 480", "seed is not allowed"]}},
            "width must be >= 480; seed is not allowed",
        ),
        ({"json": {"error": "Payment Required"}}, "Payment Required"),
        ({"json": {"message": "", "error": "Bad Request"}}, "Bad Request"),
        ({"body": "upstream exploded"}, "upstream exploded"),
        ({"json": {"statusCode": 400}}, "{'statusCode': 400}"),
    ],
)
def test_error_message_sources(client, api, kwargs, expected):
    api.post(f"{BASE}/images", status=400, **kwargs)
    with pytest.raises(BadRequest) as info:
        client.images.create(prompt="x")
    assert info.value.api_message == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0", 0.0), ("2.5", 2.5), (None, None), ("soon", None), ("-3", 0.0)],
)
def test_rate_limited_carries_retry_after_seconds(client, api, header, expected):
    headers = {"Retry-After": header} if header is not None else {}
    api.get(f"{BASE}/videos/v", status=429, json={"message": "slow down"}, headers=headers)
    with pytest.raises(RateLimited) as info:
        client.videos.get("v")
    assert info.value.retry_after == expected


def test_retry_after_http_date_form_is_seconds_from_now():
    seconds = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT")
    assert seconds == 0.0
    later = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert later is not None and later > 1e9


def test_refused_connection_is_connect_error(client, api):
    api.post(
        f"{BASE}/images", body=requests.exceptions.ConnectionError("NewConnectionError: Connection refused")
    )
    with pytest.raises(ConnectError):
        client.images.create(prompt="x")


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("Connection reset by peer"),
        requests.exceptions.ChunkedEncodingError("broken"),
    ],
)
def test_a_sent_request_without_answer_is_answer_lost(client, api, exc):
    api.post(f"{BASE}/images", body=exc)
    with pytest.raises(AnswerLostError) as info:
        client.images.create(prompt="x")
    assert info.value.retryable


def test_connect_timeout_is_connect_error(client, api):
    api.get(f"{BASE}/images/x", body=requests.exceptions.ConnectTimeout("connect timeout"))
    with pytest.raises(ConnectError):
        client.images.get("x")


def test_non_json_success_answer_is_answer_lost(client, api):
    api.get(f"{BASE}/images/x", body="<html>gateway</html>", status=200)
    with pytest.raises(AnswerLostError):
        client.images.get("x")


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
def test_api_key_never_appears_in_messages_or_reprs_even_when_echoed(client, api, status):
    echo = {"message": f"invalid token Bearer {KEY}", "error": KEY}
    api.get(f"{BASE}/images/x", status=status, json=echo)
    with pytest.raises(APIError) as info:
        client.images.get("x")
    err = info.value
    for text in (str(err), repr(err), err.message, err.api_message, repr(err.args)):
        assert KEY not in text
    assert "***" in err.api_message


def test_api_key_not_in_client_repr_or_transport_errors(client, api):
    assert KEY not in repr(client) and KEY not in str(vars(client).get("base_url"))
    api.get(f"{BASE}/images/x", body=requests.exceptions.ReadTimeout(f"timeout for {BASE}"))
    with pytest.raises(LetzAIError) as info:
        client.images.get("x")
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_empty_key_is_refused_with_the_variable_name():
    with pytest.raises(ValueError, match="LETZAI_API_KEY"):
        LetzAIClient("")


def test_error_for_status_unknown_codes():
    assert isinstance(error_for_status(418, "teapot"), BadRequest)
    assert isinstance(error_for_status(599, "odd"), ServerError)
    limited = error_for_status(429, "x", 3.0)
    assert isinstance(limited, RateLimited) and limited.retry_after == 3.0
