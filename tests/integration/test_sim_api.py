"""The LetzAI simulator speaks the API contract: auth, validation, job lifecycles, media, uploads, models."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from PIL import Image

from letzai.sim.server import RunningSim, SimConfig, start_simulator

pytestmark = pytest.mark.integration

FAST: dict[str, Any] = {
    "latency_image": 0.2,
    "latency_image_edit": 0.2,
    "latency_upscale": 0.2,
    "latency_video": 0.2,
    "latency_model": 0.3,
    "jitter": 0.0,
}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSim]:
    sim = start_simulator(SimConfig(seed=11, **FAST))
    yield sim
    sim.stop()


@pytest.fixture
def sim(server: RunningSim) -> RunningSim:
    server.reset()
    server.configure(**FAST, fail_rate=0.0, credits=None, valid_keys=None)
    return server


@pytest.fixture
def api() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer test-key"
    return session


def create(api: requests.Session, sim: RunningSim, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"{sim.url}{path}", json=body, timeout=5)
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def wait_final(
    api: requests.Session, url: str, working: tuple[str, ...], timeout: float = 5.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        obj = api.get(url, timeout=5).json()
        if obj["status"] not in working or time.monotonic() > deadline:
            return obj  # type: ignore[no-any-return]
        time.sleep(0.03)


def download(url: str) -> requests.Response:
    response = requests.get(url, timeout=5)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    return response


WORKING = ("new", "generating", "in progress", "training")


def test_missing_or_bad_key_is_401(sim: RunningSim, api: requests.Session) -> None:
    assert requests.post(f"{sim.url}/images", json={"prompt": "x"}, timeout=5).status_code == 401
    bad = requests.get(f"{sim.url}/images", headers={"Authorization": "Bearer invalid"}, timeout=5)
    assert bad.status_code == 401
    assert bad.json()["message"] == "Unauthorized"
    sim.configure(valid_keys=["only-this"])
    assert api.get(f"{sim.url}/images", timeout=5).status_code == 401
    assert requests.get(f"{sim.url}/images", headers={"Authorization": "Bearer only-this"}, timeout=5).ok
    assert sim.counters()["jobs_created_total"] == 0


def test_unknown_field_and_range_are_400_with_messages(sim: RunningSim, api: requests.Session) -> None:
    response = api.post(f"{sim.url}/images", json={"prompt": "x", "seed": 1, "quality": 7}, timeout=5)
    assert response.status_code == 400
    messages = response.json()["message"]
    assert "property seed should not exist" in messages
    assert "quality must not be greater than 6" in messages
    missing = api.post(
        f"{sim.url}/image-edits", json={"mode": "in", "imageUrl": "https://x.test/a.png"}, timeout=5
    )
    assert missing.status_code == 400 and "mask should not be empty" in missing.json()["message"]
    widest = api.post(
        f"{sim.url}/images", json={"prompt": "x", "width": 480, "quality": 6, "baseModel": "flux2"}
    )
    assert widest.status_code in (200, 201)
    assert sim.counters()["jobs_created"] == {"image": 1}


def test_image_cycle_progress_is_linear_and_media_downloads(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(latency_image=1.0)
    created = create(api, sim, "/images", {"prompt": "a cat", "width": 640, "height": 480})
    assert created["status"] == "new" and created["imageVersions"] == {}
    time.sleep(0.5)
    halfway = api.get(f"{sim.url}/images/{created['id']}", timeout=5).json()
    assert halfway["status"] in ("generating", "in progress")
    assert 30 <= halfway["progress"] <= 80
    assert halfway["previewImage"].startswith("data:image/png;base64,")
    ready = wait_final(api, f"{sim.url}/images/{created['id']}", WORKING)
    assert ready["status"] == "ready" and ready["progress"] == 100 and ready["previewImage"] is None
    media = download(ready["imageVersions"]["original"])
    assert media.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(media.content)).size == (640, 480)
    thumb = download(ready["imageVersions"]["240x240"])
    assert Image.open(io.BytesIO(thumb.content)).size == (240, 180)
    counters = sim.counters()
    assert counters["media"]["downloads"] == 2
    assert counters["polls_by_job"][created["id"]] >= 2


def test_interruption_stops_an_image(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(latency_image=5.0)
    image = create(api, sim, "/images", {"prompt": "slow"})
    assert api.put(f"{sim.url}/images/{image['id']}/interruption", timeout=5).status_code == 204
    obj = api.get(f"{sim.url}/images/{image['id']}", timeout=5).json()
    assert obj["status"] == "interrupted" and obj["imageVersions"] == {}
    assert api.put(f"{sim.url}/images/{image['id']}/interruption", timeout=5).status_code == 400
    assert api.put(f"{sim.url}/videos/{image['id']}/interruption", timeout=5).status_code == 404
    assert sim.counters()["interrupts"] == 1


def test_edit_with_choices_each_readable_as_image(sim: RunningSim, api: requests.Session) -> None:
    source = create(api, sim, "/images", {"prompt": "a shoe", "width": 800, "height": 800})
    wait_final(api, f"{sim.url}/images/{source['id']}", WORKING)
    body = {"mode": "context", "prompt": "on a beach", "originalImageCompletionId": source["id"]}
    edit = create(api, sim, "/image-edits", {**body, "imageCompletionsCount": 3})
    done = wait_final(api, f"{sim.url}/image-edits/{edit['id']}", WORKING)
    assert done["status"] == "ready"
    result = done["generatedImageCompletion"]
    assert result["status"] == "ready"
    assert len(done["imageCompletionChoices"]) == 3 and result["id"] == done["imageCompletionChoices"][0]
    for choice in done["imageCompletionChoices"]:
        image = api.get(f"{sim.url}/images/{choice}", timeout=5).json()
        assert image["status"] == "ready"
        assert download(image["imageVersions"]["original"]).headers["Content-Type"] == "image/png"
    skin = create(api, sim, "/image-edits", {"mode": "skin", "originalImageCompletionId": source["id"]})
    assert skin["imageCompletionChoices"] == [] and skin["generatedImageCompletion"]["id"]
    listing = api.get(f"{sim.url}/image-edits", timeout=5).json()
    assert listing["pagination"]["total"] == 2 and len(listing["data"]) == 2


def test_upscale_cycle_and_delete(sim: RunningSim, api: requests.Session) -> None:
    upscale = create(api, sim, "/upscale", {"imageUrl": "https://x.test/a.jpg", "strength": 2, "size": 2})
    done = wait_final(api, f"{sim.url}/upscale/{upscale['id']}", WORKING)
    assert done["status"] == "ready"
    image = Image.open(io.BytesIO(download(done["imageVersions"]["original"]).content))
    assert 1.9e6 < image.size[0] * image.size[1] < 2.1e6
    assert api.delete(f"{sim.url}/upscale/{upscale['id']}", timeout=5).status_code == 204
    assert api.get(f"{sim.url}/upscale/{upscale['id']}", timeout=5).status_code == 404
    assert api.get(f"{sim.url}/upscales", timeout=5).status_code == 404


def test_video_cycle_serves_an_mp4(sim: RunningSim, api: requests.Session) -> None:
    video = create(
        api, sim, "/videos", {"prompt": "orbit", "settings": {"mode": "video-veo31", "duration": 4}}
    )
    done = wait_final(api, f"{sim.url}/videos/{video['id']}", WORKING)
    assert done["status"] == "ready"
    if isinstance(done.get("videoPaths"), dict):
        url = done["videoPaths"]["mp4"]
    elif isinstance(done["videoVersions"], dict):
        url = done["videoVersions"]["original"]
    else:
        first = done["videoVersions"][0]
        url = first if isinstance(first, str) else first["url"]
    media = download(url)
    assert media.headers["Content-Type"] == "video/mp4" and media.content[4:8] == b"ftyp"
    assert api.put(f"{sim.url}/videos/{video['id']}/privacy", json={"privacy": "public"}).status_code == 204
    assert api.get(f"{sim.url}/videos", timeout=5).json()[0]["privacy"] == "public"


def test_user_asset_upload_refuses_auth_then_serves_bytes(sim: RunningSim, api: requests.Session) -> None:
    asset = create(api, sim, "/user-assets", {"extension": "png", "originalFilename": "shoe.png"})
    data = b"\x89PNG fake bytes"
    refused = api.put(asset["uploadUrl"], data=data, headers={"Content-Type": "image/png"}, timeout=5)
    assert refused.status_code == 400
    assert requests.get(asset["imageUrl"], timeout=5).status_code == 404
    uploaded = requests.put(asset["uploadUrl"], data=data, headers={"Content-Type": "image/png"}, timeout=5)
    assert uploaded.status_code == 200
    served = download(asset["imageUrl"])
    assert served.content == data and served.headers["Content-Type"] == "image/png"


def test_model_trains_to_available_and_can_be_edited(sim: RunningSim, api: requests.Session) -> None:
    body = {"name": "sku.model_1", "class": "object", "trainingDataUrls": ["https://x.test/1.jpg"]}
    model = api.post(f"{sim.url}/models", json=body, timeout=5)
    assert model.status_code == 200 and model.json()["status"] == "new"
    model_id = model.json()["id"]
    seen = {model.json()["status"]}
    deadline = time.monotonic() + 5
    while "available" not in seen and time.monotonic() < deadline:
        seen.add(api.get(f"{sim.url}/models/{model_id}", timeout=5).json()["status"])
        time.sleep(0.02)
    assert {"new", "training", "available"} <= seen
    patched = api.patch(f"{sim.url}/models/{model_id}", json={"description": "bag"}, timeout=5)
    assert patched.status_code == 200 and patched.json()["description"] == "bag"
    assert api.patch(f"{sim.url}/models/{model_id}", json={"name": "x"}, timeout=5).status_code == 400
    image = create(api, sim, "/images", {"prompt": "@sku.model_1 on white"})
    wait_final(api, f"{sim.url}/images/{image['id']}", WORKING)
    thumb = api.put(
        f"{sim.url}/models/{model_id}/thumbnail", json={"imageCompletionId": image["id"]}, timeout=5
    )
    assert thumb.status_code == 200 and thumb.json()["thumbnail"].endswith("/original.png")
    assert api.delete(f"{sim.url}/models/{model_id}", timeout=5).status_code == 204
    assert api.get(f"{sim.url}/models/{model_id}", timeout=5).status_code == 404
