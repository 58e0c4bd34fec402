"""Request building of the LetzAI resources: paths, bodies, query params, defaults, local validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from responses import matchers

from letzai.client import LetzAIClient
from letzai.errors import ValidationError

BASE = "http://api.test"
KEY = "sk-secret-key-123"
UUID = "0b6f0d8e-8d2f-4f55-9c61-2c0a2e3b1a11"


@pytest.fixture
def client() -> LetzAIClient:
    return LetzAIClient(KEY, base_url=BASE)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def sent_json(api: responses.RequestsMock, index: int = -1) -> dict:
    body = api.calls[index].request.body
    assert body is not None
    return json.loads(body)


def test_image_create_posts_fields_with_api_names_and_drops_none(client, api):
    api.post(f"{BASE}/images", status=201, json={"id": UUID, "status": "new"})
    job = client.images.create(
        prompt="a red bag", width=1600, height=1600, quality=3, hasWatermark=False, baseModel="flux2",
        organizationId=None, webhookUrl=None,
    )  # fmt: skip
    assert job.kind == "image" and job.id == UUID and job.phase == "working"
    assert sent_json(api) == {
        "prompt": "a red bag", "width": 1600, "height": 1600, "quality": 3, "hasWatermark": False,
        "baseModel": "flux2",
    }  # fmt: skip
    request = api.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"


def test_client_default_organization_added_unless_the_call_names_one(api):
    client = LetzAIClient(KEY, base_url=BASE, organization_id="org-default")
    api.post(f"{BASE}/images", json={"id": "a", "status": "new"})
    client.images.create(prompt="x")
    client.images.create(prompt="x", organizationId="org-other", webhookUrl="https://hook.test/t")
    assert sent_json(api, 0)["organizationId"] == "org-default"
    assert sent_json(api, 1) == {
        "prompt": "x",
        "organizationId": "org-other",
        "webhookUrl": "https://hook.test/t",
    }


def test_invalid_field_raises_before_anything_is_sent(client, api):
    with pytest.raises(ValidationError) as info:
        client.images.create(prompt="x", width=4000)
    assert info.value.field == "width" and "4000" in str(info.value) and "480 to 2160" in str(info.value)
    assert len(api.calls) == 0


def test_skip_checks_turns_one_field_check_off(client, api):
    api.post(f"{BASE}/images", json={"id": "a", "status": "new"})
    client.images.create(prompt="x", width=4000, skip_checks=frozenset({"width"}))
    assert sent_json(api)["width"] == 4000


def test_undocumented_fields_pass_through_unvalidated(client, api):
    api.post(f"{BASE}/images", json={"id": "a", "status": "new"})
    client.images.create(prompt="x", brandNewField={"anything": [1, 2]})
    assert sent_json(api)["brandNewField"] == {"anything": [1, 2]}


def test_nested_none_values_are_dropped(client, api):
    api.post(f"{BASE}/image-edits", json={"id": "e", "status": "new"})
    client.image_edits.create(
        mode="skin", imageUrl="https://img.test/a.jpg", settings={"intensity": 3, "eyes": None}
    )
    assert sent_json(api)["settings"] == {"intensity": 3}


@pytest.mark.parametrize(
    ("resource", "path", "fields"),
    [
        (
            "image_edits",
            "/image-edits",
            {"mode": "context", "prompt": "on a beach", "inputImageUrls": ["https://i/a"]},
        ),
        ("upscale", "/upscale", {"imageId": UUID, "strength": 2, "size": 4}),
        (
            "videos",
            "/videos",
            {"prompt": "slow orbit", "imageUrl": "https://i/a", "settings": {"duration": 4}},
        ),
        ("models", "/models", {"name": "my_bag", "class": "object", "trainingDataUrls": ["https://i/1"]}),
    ],
)
def test_create_posts_to_the_resource_route(client, api, resource, path, fields):
    api.post(f"{BASE}{path}", status=201, json={"id": "r1", "status": "new"})
    job = getattr(client, resource).create(**fields)
    assert job.id == "r1"
    assert api.calls[0].request.method == "POST"
    assert sent_json(api) == fields


@pytest.mark.parametrize(
    ("resource", "path", "kind"),
    [
        ("images", "/images", "image"),
        ("image_edits", "/image-edits", "image_edit"),
        ("upscale", "/upscale", "upscale"),
        ("videos", "/videos", "video"),
        ("models", "/models", "model"),
    ],
)
def test_get_reads_the_job_by_id(client, api, resource, path, kind):
    api.get(f"{BASE}{path}/abc", json={"id": "abc", "status": "generating", "progress": 40})
    job = getattr(client, resource).get("abc")
    assert (job.kind, job.id, job.progress) == (kind, "abc", 40.0)


def test_list_sends_booleans_and_lists_as_query_strings(client, api):
    api.get(
        f"{BASE}/images",
        json=[{"id": "1"}, {"id": "2"}],
        match=[
            matchers.query_param_matcher(
                {
                    "isHot": "true",
                    "onlyFollowing": "false",
                    "modelIds": "m1,m2",
                    "page": "2",
                    "sortBy": "createdAt",
                }
            )
        ],
    )
    got = client.images.list(
        isHot=True, onlyFollowing=False, modelIds=["m1", "m2"], page=2, sortBy="createdAt"
    )
    assert [o["id"] for o in got] == ["1", "2"]


def test_list_drops_none_params_and_unwraps_the_envelope(client, api):
    api.get(
        f"{BASE}/image-edits",
        json={"data": [{"id": "e1"}], "pagination": {"page": 1, "limit": 10, "total": 1, "totalPages": 1}},
        match=[matchers.query_param_matcher({"limit": "10"})],
    )
    assert client.image_edits.list(limit=10, status=None) == [{"id": "e1"}]


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda c: c.images.interrupt("i1"), "PUT", "/images/i1/interruption", None),
        (
            lambda c: c.images.set_privacy("i1", "private"),
            "PUT",
            "/images/i1/privacy",
            {"privacy": "private"},
        ),
        (lambda c: c.videos.set_privacy("v1", "public"), "PUT", "/videos/v1/privacy", {"privacy": "public"}),
        (lambda c: c.upscale.delete("u1"), "DELETE", "/upscale/u1", None),
        (lambda c: c.models.delete("m1"), "DELETE", "/models/m1", None),
    ],
)
def test_no_content_actions(client, api, call, method, path, body):
    api.add(method, f"{BASE}{path}", status=204)
    assert call(client) is None
    request = api.calls[0].request
    assert request.method == method
    assert (json.loads(request.body) if request.body else None) == body


def test_user_asset_upload_puts_bytes_without_authorization(client, api, tmp_path: Path):
    photo = tmp_path / "Bag Photo.PNG"
    photo.write_bytes(b"\x89PNG fake bytes")
    api.post(
        f"{BASE}/user-assets",
        json={"uploadUrl": "https://upload.test/put?sig=1", "imageUrl": "https://cdn.test/a.png"},
    )
    api.put("https://upload.test/put", status=200)
    assert client.user_assets.upload(photo) == "https://cdn.test/a.png"
    assert sent_json(api, 0) == {
        "extension": "png", "originalFilename": "Bag Photo.PNG", "mimeType": "image/png", "fileSize": 15,
    }  # fmt: skip
    put = api.calls[1].request
    assert put.method == "PUT" and put.url == "https://upload.test/put?sig=1"
    assert "Authorization" not in put.headers
    assert put.headers["Content-Type"] == "image/png"
    body = put.body if isinstance(put.body, bytes) else put.body.read()
    assert body == b"\x89PNG fake bytes"


def test_user_asset_upload_honours_an_explicit_mime_type(client, api, tmp_path: Path):
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"mov")
    api.post(
        f"{BASE}/user-assets", json={"uploadUrl": "https://upload.test/p", "imageUrl": "https://cdn.test/c"}
    )
    api.put("https://upload.test/p")
    client.user_assets.upload(str(clip), mime_type="video/quicktime")
    assert api.calls[1].request.headers["Content-Type"] == "video/quicktime"


def test_user_asset_upload_refuses_an_unsupported_extension_locally(client, api, tmp_path: Path):
    doc = tmp_path / "notes.txt"
    doc.write_text("hi")
    with pytest.raises(ValidationError) as info:
        client.user_assets.upload(doc)
    assert info.value.field == "extension"
    assert len(api.calls) == 0
