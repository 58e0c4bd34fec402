"""The simulator answers thinly when asked (fields left out of list and GET objects), answers creates 200 or
201, may refuse ``GET /upscale``, records every create's request (``GET /_sim/jobs``) and loses create
answers in the chosen way."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests

from letzai.sim.config import SimConfig, config_from_args
from letzai.sim.server import RunningSim, build_parser
from tests.integration import test_sim_api
from tests.integration.test_sim_api import FAST, WORKING, create, wait_final

pytestmark = pytest.mark.integration

# The simulator and session fixtures of test_sim_api (a module-scoped simulator, a keyed session).
server = test_sim_api.server
api = test_sim_api.api

PLAIN: dict[str, Any] = {
    **FAST,
    "fail_rate": 0.0,
    "credits": None,
    "valid_keys": None,
    "thin_list_fields": [],
    "thin_get_fields": [],
    "thin_rate": 1.0,
    "create_status_200_rate": 0.5,
    "upscale_list_404": False,
    "lost_answer_rate": 0.0,
    "lost_answer_mode": "502",
    "slow_seconds": 35.0,
}
HOOK = "https://hooks.example.test/letzflow/job-token-1"
ORG = "3f9b1c2e-8d4a-4e6f-9a1b-2c3d4e5f6a7b"
AUTH = {"Authorization": "Bearer test-key"}


@pytest.fixture
def sim(server: RunningSim) -> RunningSim:
    server.reset()
    server.configure(**PLAIN)
    return server


def knobs(sim: RunningSim, **values: Any) -> None:
    """Set knobs over HTTP, as a client of the simulator would."""
    answer = requests.post(f"{sim.url}/_sim/config", json=values, timeout=5)
    assert answer.status_code == 200, answer.text


def ready(api: requests.Session, sim: RunningSim, path: str, body: dict[str, Any]) -> dict[str, Any]:
    obj = create(api, sim, path, body)
    done = wait_final(api, f"{sim.url}{path}/{obj['id']}", WORKING)
    assert done["status"] == "ready"
    return done


def listed(api: requests.Session, sim: RunningSim, path: str) -> list[dict[str, Any]]:
    answer = api.get(f"{sim.url}{path}", params={"limit": 50}, timeout=5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["data"] if isinstance(body, dict) else body  # type: ignore[no-any-return]


def sim_jobs(sim: RunningSim, **query: str) -> list[dict[str, Any]]:
    return requests.get(f"{sim.url}/_sim/jobs", params=query, timeout=10).json()  # type: ignore[no-any-return]


def make_one_of_each(api: requests.Session, sim: RunningSim) -> dict[str, str]:
    """A ready image, edit (from it, 2 results), upscale (of it) and video (from it): their ids."""
    image = ready(api, sim, "/images", {"prompt": "a shoe", "mode": "cinematic", "webhookUrl": HOOK})
    edit_body = {"mode": "context", "prompt": "on a beach", "originalImageCompletionId": image["id"]}
    edit_body |= {"inputImageUrls": ["https://x.test/a.png"], "settings": {"resolution": "2k"}}
    edit = ready(api, sim, "/image-edits", {**edit_body, "imageCompletionsCount": 2})
    upscale = ready(api, sim, "/upscale", {"imageId": image["id"], "strength": 2, "mode": "sharp"})
    video_body = {
        "prompt": "it walks",
        "originalImageCompletionId": image["id"],
        "settings": {"mode": "wan25"},
    }
    video = ready(api, sim, "/videos", video_body)
    return {"image": image["id"], "edit": edit["id"], "upscale": upscale["id"], "video": video["id"]}


def by_id(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["id"]: obj for obj in objects}


def test_thinned_list_objects_lack_exactly_the_named_fields(sim: RunningSim, api: requests.Session) -> None:
    ids = make_one_of_each(api, sim)
    paths = ("/images", "/image-edits", "/upscale", "/videos")
    full = {path: by_id(listed(api, sim, path)) for path in paths}
    names = ["createdAt", "prompt", "originalImageCompletion", "source", "mode", "settings", "webhookUrl"]
    knobs(sim, thin_list_fields=[*names, "generationSettings", "width", "height"])
    thin = {path: by_id(listed(api, sim, path)) for path in paths}

    def without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in keys}

    common = ("createdAt", "prompt", "originalImageCompletion", "webhookUrl")
    image = full["/images"][ids["image"]]
    assert thin["/images"][ids["image"]] == without(image, *common, "generationSettings")
    edit = full["/image-edits"][ids["edit"]]
    edit_thin = thin["/image-edits"][ids["edit"]]
    dropped = (*common, "inputImageUrls", "mode", "settings", "width", "height")
    assert without(edit_thin, "generatedImageCompletion") == without(
        edit, *dropped, "generatedImageCompletion"
    )
    result = edit["generatedImageCompletion"]
    expected_result = without(result, *common, "generationSettings") | {"imageEdit": {"id": ids["edit"]}}
    assert edit_thin["generatedImageCompletion"] == expected_result
    assert edit_thin["imageCompletionChoices"] == edit["imageCompletionChoices"]
    assert thin["/images"][result["id"]] == expected_result  # edit results in GET /images: as images
    for choice in edit["imageCompletionChoices"]:
        assert "prompt" not in thin["/images"][choice] and "imageEdit" in thin["/images"][choice]
    upscale = full["/upscale"][ids["upscale"]]
    assert upscale["imageId"] == ids["image"]
    dropped = ("imageId", "imageUrl", "mode", "prompt", "createdAt", "width", "height")
    assert thin["/upscale"][ids["upscale"]] == without(upscale, *dropped)
    video = full["/videos"][ids["video"]]
    dropped = (*common, "settings", "width", "height")
    assert thin["/videos"][ids["video"]] == without(video, *dropped)
    knobs(sim, thin_list_fields=["mode", "width"])
    image_thin = by_id(listed(api, sim, "/images"))[ids["image"]]
    settings = {k: v for k, v in image["generationSettings"].items() if k not in ("mode", "width")}
    assert image_thin == image | {"generationSettings": settings}
    assert api.get(f"{sim.url}/images/{ids['image']}", timeout=5).json() == image  # GETs stay whole


def test_thin_rate_zero_keeps_objects_whole_and_a_rate_mixes_them(
    sim: RunningSim, api: requests.Session
) -> None:
    for n in range(24):
        create(api, sim, "/images", {"prompt": f"p{n}"})
    knobs(sim, thin_list_fields=["prompt"], thin_rate=0.0)
    assert all("prompt" in obj for obj in listed(api, sim, "/images"))
    knobs(sim, thin_rate=0.5)
    first = {obj["id"] for obj in listed(api, sim, "/images") if "prompt" not in obj}
    assert 0 < len(first) < 24
    assert first == {obj["id"] for obj in listed(api, sim, "/images") if "prompt" not in obj}  # per job
    knobs(sim, thin_rate=1.0)
    assert not any("prompt" in obj for obj in listed(api, sim, "/images"))


def test_get_thinning_leaves_lists_and_create_answers_whole(sim: RunningSim, api: requests.Session) -> None:
    ids = make_one_of_each(api, sim)
    knobs(sim, thin_get_fields=["prompt", "createdAt", "source"])
    created = create(api, sim, "/images", {"prompt": "fresh"})
    assert created["prompt"] == "fresh" and "createdAt" in created
    image = api.get(f"{sim.url}/images/{ids['image']}", timeout=5).json()
    assert "prompt" not in image and "createdAt" not in image and image["webhookUrl"] == HOOK
    edit = api.get(f"{sim.url}/image-edits/{ids['edit']}", timeout=5).json()
    assert "prompt" not in edit and "inputImageUrls" not in edit and edit["mode"] == "context"
    child = api.get(f"{sim.url}/images/{edit['imageCompletionChoices'][1]}", timeout=5).json()
    assert "prompt" not in child and child["imageEdit"]["id"] == ids["edit"]
    upscale = api.get(f"{sim.url}/upscale/{ids['upscale']}", timeout=5).json()
    assert "imageId" not in upscale and "imageUrl" not in upscale and upscale["imageVersions"]["original"]
    assert "prompt" not in api.get(f"{sim.url}/videos/{ids['video']}", timeout=5).json()
    assert all("prompt" in obj for obj in listed(api, sim, "/images"))


def test_thin_field_names_are_checked_everywhere(sim: RunningSim) -> None:
    refused = requests.post(
        f"{sim.url}/_sim/config", json={"thin_list_fields": ["prompt", "seed"]}, timeout=5
    )
    assert refused.status_code == 400
    assert "seed" in refused.json()["message"] and "originalImageCompletion" in refused.json()["message"]
    with pytest.raises(ValueError, match="allowed: createdAt"):
        SimConfig().updated({"thin_get_fields": "nope"})
    args = ["--thin-list-fields", "prompt,createdAt", "--thin-get-fields", "none", "--upscale-list-404"]
    config = config_from_args(build_parser().parse_args([*args, "--lost-answer-mode", "mixed"]))
    assert config.thin_list_fields == ["prompt", "createdAt"] and config.thin_get_fields == []
    assert config.upscale_list_404 is True and config.lost_answer_mode == "mixed"
    assert (
        config_from_args(build_parser().parse_args(["--upscale-list-404", "false"])).upscale_list_404 is False
    )
    with pytest.raises(ValueError, match="lost_answer_mode"):
        SimConfig().updated({"lost_answer_mode": "drop"})
    assert "originalImageCompletion" in build_parser().format_help()


def test_create_status_200_rate(sim: RunningSim, api: requests.Session) -> None:
    source = ready(api, sim, "/images", {"prompt": "src"})
    bodies = {
        "/images": {"prompt": "p"},
        "/image-edits": {"mode": "context", "prompt": "p", "originalImageCompletionId": source["id"]},
        "/upscale": {"imageId": source["id"]},
        "/videos": {"prompt": "p"},
    }
    for rate, status in ((0.0, 201), (1.0, 200)):
        knobs(sim, create_status_200_rate=rate)
        for path, body in bodies.items():
            codes = {api.post(f"{sim.url}{path}", json=body, timeout=5).status_code for _ in range(3)}
            assert codes == {status}, path


def test_upscale_list_can_answer_404(sim: RunningSim, api: requests.Session) -> None:
    upscale = create(api, sim, "/upscale", {"imageUrl": "https://x.test/a.jpg"})
    knobs(sim, upscale_list_404=True)
    refused = api.get(f"{sim.url}/upscale", timeout=5)
    assert refused.status_code == 404
    assert refused.json()["statusCode"] == 404 and isinstance(refused.json()["message"], str)
    assert api.get(f"{sim.url}/upscale/{upscale['id']}", timeout=5).status_code == 200
    knobs(sim, upscale_list_404=False)
    assert [obj["id"] for obj in listed(api, sim, "/upscale")] == [upscale["id"]]


def test_sim_jobs_record_each_request_verbatim(sim: RunningSim, api: requests.Session) -> None:
    image_body = {"prompt": "a bag", "width": 800, "height": 640, "quality": 3, "hasWatermark": False}
    image_body |= {"webhookUrl": HOOK, "organizationId": ORG, "baseModel": "flux2"}
    image = ready(api, sim, "/images", image_body)
    upscale_body = {
        "imageId": image["id"],
        "strength": 2,
        "size": 4,
        "webhookUrl": HOOK,
        "organizationId": ORG,
    }
    upscale = create(api, sim, "/upscale", upscale_body)
    edit_body = {"mode": "context", "prompt": "on sand", "inputImageUrls": ["https://x.test/a.png"]}
    edit_body |= {"imageCompletionsCount": 2, "settings": {"resolution": "2k", "aspect_ratio": "16:9"}}
    edit = create(api, sim, "/image-edits", edit_body)
    masked = create(
        api, sim, "/image-edits", {"mode": "in", "imageUrl": "https://x.test/b.png", "mask": "QUJD"}
    )
    video = create(api, sim, "/videos", {"prompt": "go", "imageUrls": ["https://x.test/1.png"]})
    rows = by_id(sim_jobs(sim))
    assert list(rows) == [image["id"], upscale["id"], edit["id"], masked["id"], video["id"]]
    assert rows[image["id"]]["request"] == image_body
    assert rows[image["id"]]["endpoint"] == "/images" and rows[image["id"]]["outputs"] == [image["id"]]
    assert rows[image["id"]]["source_id"] is None and rows[image["id"]]["source_url"] is None
    up = rows[upscale["id"]]
    assert up["request"] == upscale_body and up["endpoint"] == "/upscale" and up["kind"] == "upscale"
    assert up["source_id"] == image["id"] and up["outputs"] == [upscale["id"]]
    row = rows[edit["id"]]
    assert row["request"] == edit_body and row["source_url"] == ["https://x.test/a.png"]
    assert row["outputs"] == row["children"] == edit["imageCompletionChoices"] and len(row["outputs"]) == 2
    assert rows[masked["id"]]["request"] == {"mode": "in", "imageUrl": "https://x.test/b.png"}
    assert (
        len(rows[masked["id"]]["outputs"]) == 3 and rows[masked["id"]]["source_url"] == "https://x.test/b.png"
    )
    assert rows[video["id"]]["source_url"] == ["https://x.test/1.png"]
    assert all(r["lost_answer"] is None for r in rows.values())
    assert [r["id"] for r in sim_jobs(sim, kind="upscale")] == [upscale["id"]]


def test_sim_jobs_listing_stays_fast(sim: RunningSim) -> None:
    state = sim.state
    for n in range(3000):
        body = {"prompt": f"job {n}", "webhookUrl": f"{HOOK}/{n}"}
        state.create("image", "/images", dict(body), request=body, width=1600, height=1600)
    started = time.monotonic()
    rows = sim_jobs(sim)
    assert time.monotonic() - started < 2.0
    assert len(rows) == 3000 and rows[-1]["request"]["webhookUrl"] == f"{HOOK}/2999"


@pytest.mark.parametrize("mode", ["502", "reset", "timeout"])
def test_lost_answer_modes(sim: RunningSim, api: requests.Session, mode: str) -> None:
    knobs(sim, lost_answer_rate=1.0, lost_answer_mode=mode, slow_seconds=0.5)
    if mode == "502":
        assert api.post(f"{sim.url}/images", json={"prompt": "p"}, timeout=5).status_code == 502
    elif mode == "reset":
        with pytest.raises(requests.ConnectionError):
            api.post(f"{sim.url}/images", json={"prompt": "p"}, timeout=5)
    else:
        with pytest.raises(requests.Timeout):
            api.post(f"{sim.url}/images", json={"prompt": "p"}, timeout=0.2)
        started = time.monotonic()
        late = requests.post(f"{sim.url}/images", json={"prompt": "q"}, headers=api.headers, timeout=5)
        assert late.status_code in (200, 201) and time.monotonic() - started >= 0.45
    rows = sim_jobs(sim)
    assert rows and all(r["lost_answer"] == mode for r in rows)
    assert sim.counters()["injected"]["lost"] == len(rows) == sim.counters()["jobs_created_total"]


def test_mixed_lost_answers_show_all_three_shapes(sim: RunningSim) -> None:
    knobs(sim, lost_answer_rate=1.0, lost_answer_mode="mixed", slow_seconds=0.3)
    seen: Counter[str] = Counter()
    for _ in range(15):
        try:
            answer = requests.post(f"{sim.url}/images", json={"prompt": "p"}, headers=AUTH, timeout=0.15)
            seen[str(answer.status_code)] += 1
        except requests.Timeout:
            seen["timeout"] += 1
        except requests.ConnectionError:
            seen["reset"] += 1
    assert seen == Counter(r["lost_answer"] for r in sim_jobs(sim))
    assert set(seen) == {"502", "reset", "timeout"}


def test_lost_answers_under_concurrency(sim: RunningSim) -> None:
    knobs(sim, lost_answer_rate=0.5)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            for n in range(10):
                answer = session.post(f"{sim.url}/images", json={"prompt": f"c{n}"}, headers=AUTH, timeout=10)
                with lock:
                    answers.append(answer)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    codes = Counter(answer.status_code for answer in answers)
    rows = sim_jobs(sim)
    assert len(answers) == len(rows) == 80 and set(codes) <= {200, 201, 502}
    assert 10 < codes[502] < 70
    assert codes[502] == sim.counters()["injected"]["lost"] == sum(r["lost_answer"] == "502" for r in rows)
    answered = {answer.json()["id"] for answer in answers if answer.status_code != 502}
    assert answered == {r["id"] for r in rows if r["lost_answer"] is None}
