"""The models resource: pagination in headers or body, raw reads, update, thumbnail, training jobs."""

from __future__ import annotations

import json

import pytest
import responses

from letzai.client import LetzAIClient
from letzai.errors import ValidationError

BASE = "http://api.test"


@pytest.fixture
def client() -> LetzAIClient:
    return LetzAIClient("key-1", base_url=BASE)


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def test_list_with_pagination_in_headers(client, api):
    headers = {"X-Total-Count": "41", "X-Current-Page": "2", "X-Per-Page": "20", "X-Total-Pages": "3"}
    api.get(f"{BASE}/models", json=[{"id": "m1"}, {"id": "m2"}], headers=headers)
    models, info = client.models.page(page=2, limit=20)
    assert [m["id"] for m in models] == ["m1", "m2"]
    assert info == {"total": 41, "page": 2, "limit": 20, "totalPages": 3}


def test_list_with_pagination_in_the_body(client, api):
    body = {"data": [{"id": "m3"}], "pagination": {"page": 1, "limit": 20, "total": 1, "totalPages": 1}}
    api.get(f"{BASE}/models", json=body)
    assert client.models.list(**{"class": "person"}) == [{"id": "m3"}]
    assert api.calls[0].request.params == {"class": "person"}


def test_get_raw_and_get_as_training_job(client, api):
    raw = {"id": "m1", "name": "my_bag", "class": "object", "status": "available", "thumbnail": "https://t"}
    api.get(f"{BASE}/models/m1", json=raw)
    api.get(f"{BASE}/models/m1", json=raw)
    assert client.models.get_raw("m1") == raw
    job = client.models.get("m1")
    assert job.kind == "model" and job.phase == "success" and job.done


def test_training_job_is_not_done_while_training(client, api):
    api.get(f"{BASE}/models/m1", json={"id": "m1", "status": "training", "progress": 30})
    job = client.models.get("m1")
    assert job.phase == "working" and not job.done


def test_update_patches_only_given_fields(client, api):
    api.patch(f"{BASE}/models/m1", json={"id": "m1", "privacy": "public"})
    assert client.models.update("m1", privacy="public", description=None) == {"id": "m1", "privacy": "public"}
    assert json.loads(api.calls[0].request.body) == {"privacy": "public"}


def test_set_thumbnail(client, api):
    api.put(f"{BASE}/models/m1/thumbnail", json={"id": "m1"})
    client.models.set_thumbnail("m1", imageCompletionId="img-9")
    assert json.loads(api.calls[0].request.body) == {"imageCompletionId": "img-9"}


def test_create_validates_the_model_name_before_sending(client, api):
    with pytest.raises(ValidationError) as info:
        client.models.create(name="my bag!", **{"class": "object"}, trainingDataUrls=["https://i/1"])
    assert info.value.field == "name"
