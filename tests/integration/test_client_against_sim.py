"""The LetzAI client against the simulator: every endpoint's create -> poll -> ready -> download cycle,
and the error paths (400, 401, 402, 404, 429, 5xx, lost answers) as the engine will meet them."""

from __future__ import annotations

import base64
import io
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from letzai.client import LetzAIClient
from letzai.errors import (
    AnswerLostError,
    BadRequest,
    InsufficientCredits,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)
from letzai.responses import Job
from letzai.retry import Action, Call, classify
from letzai.sim.server import RunningSim, SimConfig, start_simulator

pytestmark = pytest.mark.integration

FAST: dict[str, Any] = {
    "latency_image": 0.2,
    "latency_image_edit": 0.2,
    "latency_upscale": 0.2,
    "latency_video": 0.3,
    "latency_model": 0.4,
    "jitter": 0.0,
}
CALM: dict[str, Any] = {
    **FAST,
    "fail_rate": 0.0,
    "rate_limit_rate": 0.0,
    "error_5xx_rate": 0.0,
    "lost_answer_rate": 0.0,
    "reset_rate": 0.0,
    "credits": None,
    "valid_keys": None,
}
PNG_MAGIC = b"\x89PNG"
JPEG_MAGIC = b"\xff\xd8"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSim]:
    sim = start_simulator(SimConfig(seed=5, **FAST), port=0)
    yield sim
    sim.stop()


@pytest.fixture
def sim(server: RunningSim) -> RunningSim:
    server.reset()
    server.configure(**CALM)
    return server


@pytest.fixture
def client(sim: RunningSim) -> LetzAIClient:
    return LetzAIClient("test-key", base_url=sim.url, timeout=(2.0, 5.0))


def wait_done(get: Callable[[str], Job], job_id: str, timeout: float = 10.0) -> Job:
    """Poll until the job is done or failed; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        job = get(job_id)
        if job.done or job.failed:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status} at the deadline"
        time.sleep(0.05)


def fetch(client: LetzAIClient, url: str) -> bytes:
    return b"".join(client.download(url))


def is_image(data: bytes) -> bool:
    return data.startswith((PNG_MAGIC, JPEG_MAGIC))


def make_image(client: LetzAIClient, prompt: str = "a red leather handbag") -> Job:
    created = client.images.create(prompt=prompt, width=800, height=800, quality=2, hasWatermark=False)
    done = wait_done(client.images.get, created.id)
    assert done.done
    return done


# -- happy paths --------------------------------------------------------------------------------------


def test_image_create_poll_ready_download(client: LetzAIClient, sim: RunningSim) -> None:
    created = client.images.create(prompt="studio photo of a bag", width=1024, height=768, quality=3)
    assert created.kind == "image" and created.phase in ("working", "success")
    done = wait_done(client.images.get, created.id)
    assert done.status == "ready" and done.outputs[0].image_id == created.id
    data = fetch(client, done.outputs[0].url)
    assert is_image(data)
    assert Image.open(io.BytesIO(data)).size == (1024, 768)
    assert created.id in [o["id"] for o in client.images.list(sortBy="createdAt", sortOrder="DESC", limit=5)]


def test_image_privacy_and_interruption(client: LetzAIClient, sim: RunningSim) -> None:
    sim.configure(latency_image=5.0)
    running = client.images.create(prompt="slow one")
    client.images.interrupt(running.id)
    assert client.images.get(running.id).status == "interrupted"
    sim.configure(latency_image=0.2)
    image = make_image(client)
    client.images.set_privacy(image.id, "private")
    assert sim.counters()["interrupts"] == 1


@pytest.mark.parametrize(
    "mode_fields",
    [
        {
            "mode": "context",
            "prompt": "the bag on a beach",
            "settings": {"resolution": "2k", "aspect_ratio": "1:1"},
        },
        {"mode": "skin", "settings": {"face": True, "mouth": True, "intensity": 3}},
        {"mode": "in", "prompt": "a gold buckle"},
        {"mode": "out", "settings": {"panControls": {"up": True, "right": True}, "zoomSize": 1.5}},
    ],
    ids=lambda f: f["mode"],
)
def test_image_edit_modes_cycle(client: LetzAIClient, sim: RunningSim, mode_fields: dict[str, Any]) -> None:
    source = make_image(client)
    fields = dict(mode_fields)
    if fields["mode"] == "in":
        mask = Image.new("L", (800, 800), 0)
        mask.paste(255, (300, 300, 500, 500))
        buffer = io.BytesIO()
        mask.save(buffer, format="PNG")
        fields["mask"] = base64.b64encode(buffer.getvalue()).decode()
    created = client.image_edits.create(originalImageCompletionId=source.id, **fields)
    done = wait_done(client.image_edits.get, created.id)
    assert done.kind == "image_edit" and done.status in ("ready", "saved")
    assert done.outputs and done.outputs[0].image_id
    assert done.outputs[0].image_id not in done.choices
    assert is_image(fetch(client, done.outputs[0].url))


def test_edit_with_several_completions_lists_choices_readable_as_images(client: LetzAIClient) -> None:
    source = make_image(client)
    created = client.image_edits.create(
        mode="context", prompt="in a forest", originalImageCompletionId=source.id, imageCompletionsCount=3
    )
    done = wait_done(client.image_edits.get, created.id)
    ids = {o.image_id for o in done.outputs} | set(done.choices)
    assert len(ids) == 3
    for choice in done.choices:
        image = client.images.get(choice)
        assert image.done and is_image(fetch(client, image.outputs[0].url))
    assert created.id in [e["id"] for e in client.image_edits.list(limit=10)]


def test_user_asset_upload_then_edit_from_it(client: LetzAIClient, tmp_path: Path) -> None:
    photo = tmp_path / "product.png"
    Image.new("RGB", (640, 480), (200, 30, 30)).save(photo)
    url = client.user_assets.upload(photo)
    assert url.startswith("http")
    assert fetch(client, url) == photo.read_bytes()
    created = client.image_edits.create(mode="context", prompt="the product on marble", inputImageUrls=[url])
    done = wait_done(client.image_edits.get, created.id)
    assert done.done and is_image(fetch(client, done.outputs[0].url))


def test_upscale_cycle_and_delete(client: LetzAIClient) -> None:
    source = make_image(client)
    created = client.upscale.create(imageId=source.id, strength=2, size=2)
    done = wait_done(client.upscale.get, created.id)
    assert done.kind == "upscale" and done.done and done.outputs[0].image_id is None
    image = Image.open(io.BytesIO(fetch(client, done.outputs[0].url)))
    assert image.size[0] * image.size[1] > 800 * 800
    assert created.id in [u["id"] for u in client.upscale.list()]
    client.upscale.delete(created.id)
    with pytest.raises(NotFound):
        client.upscale.get(created.id)


def test_video_cycle_downloads_an_mp4(client: LetzAIClient) -> None:
    source = make_image(client)
    created = client.videos.create(
        prompt="slow orbit", originalImageCompletionId=source.id, settings={"mode": "default", "duration": 4}
    )
    done = wait_done(client.videos.get, created.id)
    assert done.kind == "video" and done.done
    assert fetch(client, done.outputs[0].url)[4:8] == b"ftyp"
    client.videos.set_privacy(created.id, "public")
    listed = {v["id"]: v for v in client.videos.list(limit=10)}
    assert listed[created.id]["privacy"] == "public"


def test_text_to_video_needs_no_source(client: LetzAIClient) -> None:
    done = wait_done(client.videos.get, client.videos.create(prompt="waves at dusk").id)
    assert done.done


def test_model_training_cycle(client: LetzAIClient) -> None:
    created = client.models.create(
        name="sku.bag_1",
        **{"class": "object"},
        trainingDataUrls=["https://x.test/1.jpg", "https://x.test/2.jpg"],
    )
    assert created.kind == "model" and created.phase == "working"
    done = wait_done(client.models.get, created.id)
    assert done.status == "available" and done.done
    raw = client.models.get_raw(created.id)
    assert raw["name"] == "sku.bag_1"
    assert client.models.update(created.id, description="our bag")["description"] == "our bag"
    image = make_image(client, "@sku.bag_1 on white")
    assert client.models.set_thumbnail(created.id, imageCompletionId=image.id)["thumbnail"]
    models, info = client.models.page(limit=20)
    assert created.id in [m["id"] for m in models] and info.get("total", len(models)) >= 1
    client.models.delete(created.id)
    with pytest.raises(NotFound):
        client.models.get(created.id)


def test_default_organization_is_sent(sim: RunningSim) -> None:
    org = str(uuid.uuid4())
    client = LetzAIClient("test-key", base_url=sim.url, organization_id=org)
    job = client.images.create(prompt="billed to the org")
    assert job.id and wait_done(client.images.get, job.id).done


# -- error paths --------------------------------------------------------------------------------------


def test_undocumented_field_passes_our_checks_and_the_api_answers_400(client: LetzAIClient) -> None:
    with pytest.raises(BadRequest) as info:
        client.images.create(prompt="x", seed=42)
    assert "seed" in info.value.api_message
    assert classify(info.value, Call.SUBMIT, 1).action is Action.FAIL_STEP


def test_bad_key_is_401_stops_the_batch_and_never_shows(sim: RunningSim) -> None:
    sim.configure(valid_keys=["the-only-good-key"])
    client = LetzAIClient("sk-wrong-Qx7Vb2", base_url=sim.url)
    with pytest.raises(Unauthorized) as info:
        client.images.create(prompt="x")
    assert classify(info.value, Call.SUBMIT, 1).action is Action.STOP_BATCH
    for text in (str(info.value), repr(info.value), info.value.api_message, repr(client)):
        assert "sk-wrong-Qx7Vb2" not in text
    with pytest.raises(Unauthorized):
        LetzAIClient("invalid", base_url=sim.url).images.get(str(uuid.uuid4()))


def test_out_of_credits_is_402_and_pauses(client: LetzAIClient, sim: RunningSim) -> None:
    sim.configure(credits=1)
    client.images.create(prompt="the last credit")
    with pytest.raises(InsufficientCredits) as info:
        client.images.create(prompt="one too many")
    assert classify(info.value, Call.SUBMIT, 1).action is Action.PAUSE_BATCH
    assert sim.counters()["credits_left"] == 0


def test_unknown_id_is_404(client: LetzAIClient) -> None:
    missing = str(uuid.uuid4())
    for get in (client.images.get, client.image_edits.get, client.upscale.get, client.videos.get):
        with pytest.raises(NotFound):
            get(missing)
    with pytest.raises(NotFound):
        client.models.get_raw(missing)


def test_rate_limit_is_429_with_retry_after(client: LetzAIClient, sim: RunningSim) -> None:
    sim.configure(rate_limit_rate=1.0, retry_after=3.0)
    with pytest.raises(RateLimited) as info:
        client.images.create(prompt="x")
    assert info.value.retry_after == 3.0
    decision = classify(info.value, Call.SUBMIT, 1)
    assert (decision.action, decision.delay, decision.counts) == (Action.RETRY, 3.0, False)
    assert sim.counters()["jobs_created_total"] == 0


def test_server_error_on_get_is_retried(client: LetzAIClient, sim: RunningSim) -> None:
    image = make_image(client)
    sim.configure(error_5xx_rate=1.0)
    with pytest.raises(ServerError) as info:
        client.images.get(image.id)
    assert info.value.status in (500, 502, 503)
    assert classify(info.value, Call.POLL, 1).action is Action.RETRY
    sim.configure(error_5xx_rate=0.0)
    assert client.images.get(image.id).done


def test_lost_post_answer_is_reconciled_from_the_list(client: LetzAIClient, sim: RunningSim) -> None:
    sim.configure(lost_answer_rate=1.0)
    marker = f"lost answer {uuid.uuid4()}"
    with pytest.raises(ServerError) as info:
        client.images.create(prompt=marker)
    assert classify(info.value, Call.SUBMIT, 1).action is Action.RECONCILE
    sim.configure(lost_answer_rate=0.0)
    found = [
        o for o in client.images.list(sortBy="createdAt", sortOrder="DESC", limit=10) if o["prompt"] == marker
    ]
    assert len(found) == 1
    assert wait_done(client.images.get, found[0]["id"]).done


def test_dropped_connection_is_answer_lost(client: LetzAIClient, sim: RunningSim) -> None:
    sim.configure(reset_rate=1.0)
    with pytest.raises(AnswerLostError) as info:
        client.images.create(prompt="reset me")
    assert classify(info.value, Call.SUBMIT, 1).action is Action.RECONCILE
    assert sim.counters()["jobs_created_total"] == 1


def test_failed_job_reports_its_reason(client: LetzAIClient, sim: RunningSim) -> None:
    sim.configure(fail_rate=1.0)
    done = wait_done(client.images.get, client.images.create(prompt="doomed").id)
    assert done.failed and done.reason and not done.outputs
