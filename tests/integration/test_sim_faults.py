"""The simulator's fault knobs: credits, rate limits, concurrency, lost answers, resets, 5xx, failures."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from letzai.sim.server import RunningSim, SimConfig, start_simulator

pytestmark = pytest.mark.integration

CALM = {
    "latency_image": 0.1,
    "latency_video": 0.1,
    "jitter": 0.0,
    "fail_rate": 0.0,
    "never_finish_rate": 0.0,
    "rate_limit_rate": 0.0,
    "error_5xx_rate": 0.0,
    "lost_answer_rate": 0.0,
    "slow_rate": 0.0,
    "reset_rate": 0.0,
    "media_error_rate": 0.0,
    "credits": None,
    "max_concurrent_jobs": None,
}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSim]:
    sim = start_simulator(SimConfig(seed=5))
    yield sim
    sim.stop()


@pytest.fixture
def sim(server: RunningSim) -> RunningSim:
    server.reset()
    server.configure(**CALM)
    return server


@pytest.fixture
def api() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer test-key"
    return session


def post_image(api: requests.Session, sim: RunningSim, timeout: float = 5) -> requests.Response:
    return api.post(f"{sim.url}/images", json={"prompt": "p"}, timeout=timeout)


def test_credits_spent_answers_402(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(credits=2)
    assert post_image(api, sim).ok and post_image(api, sim).ok
    refused = post_image(api, sim)
    assert refused.status_code == 402 and "credits" in refused.json()["message"].lower()
    counters = sim.counters()
    assert counters["posts"]["/images"] == {"attempted": 3, "created": 2}
    assert counters["credits_left"] == 0


def test_rate_limit_answers_429_with_retry_after(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(rate_limit_rate=1.0, retry_after=7)
    limited = post_image(api, sim)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert api.get(f"{sim.url}/images", timeout=5).status_code == 429
    counters = sim.counters()
    assert counters["injected"]["rate_limit"] == 2 and counters["jobs_created_total"] == 0


def test_concurrency_cap_answers_429_until_a_job_finishes(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(max_concurrent_jobs=2, latency_image=0.3)
    assert post_image(api, sim).ok and post_image(api, sim).ok
    capped = post_image(api, sim)
    assert capped.status_code == 429 and "Retry-After" in capped.headers
    time.sleep(0.35)
    assert post_image(api, sim).ok
    assert sim.counters()["max_concurrent"] == 2


def test_lost_answer_still_creates_and_bills_the_job(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(lost_answer_rate=1.0, credits=5)
    lost = post_image(api, sim)
    assert lost.status_code == 502
    counters = sim.counters()
    assert counters["posts"]["/images"]["created"] == 1 and counters["injected"]["lost"] == 1
    assert counters["credits_left"] == 4
    sim.configure(lost_answer_rate=0.0)
    listed = api.get(f"{sim.url}/images", timeout=5).json()
    assert len(listed) == 1 and listed[0]["prompt"] == "p"


def test_5xx_creates_nothing(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(error_5xx_rate=1.0)
    statuses = {post_image(api, sim).status_code for _ in range(6)}
    assert statuses <= {500, 502, 503}
    assert sim.counters()["jobs_created_total"] == 0 and sim.counters()["injected"]["error_5xx"] == 6


def test_reset_drops_the_connection_after_creating(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        post_image(api, sim)
    counters = sim.counters()
    assert counters["injected"]["reset"] == 1 and counters["jobs_created_total"] == 1


def test_slow_answer_exceeds_a_client_timeout_but_creates(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(slow_rate=1.0, slow_seconds=0.6)
    with pytest.raises(requests.Timeout):
        post_image(api, sim, timeout=0.2)
    assert sim.counters()["jobs_created_total"] == 1


def test_failed_and_never_finishing_jobs(sim: RunningSim, api: requests.Session) -> None:
    sim.configure(fail_rate=1.0)
    failed_id = post_image(api, sim).json()["id"]
    sim.configure(fail_rate=0.0, never_finish_rate=1.0)
    stuck_id = post_image(api, sim).json()["id"]
    time.sleep(0.25)
    failed = api.get(f"{sim.url}/images/{failed_id}", timeout=5).json()
    assert failed["status"] == "failed" and failed["statusDetail"] and failed["progressMessage"]
    assert failed["imageVersions"] == {}
    stuck = api.get(f"{sim.url}/images/{stuck_id}", timeout=5).json()
    assert stuck["status"] in ("generating", "in progress") and stuck["progress"] == 99
    assert sim.counters()["concurrent_now"] == 1


def test_media_errors_and_live_config_over_http(sim: RunningSim, api: requests.Session) -> None:
    answer = requests.post(f"{sim.url}/_sim/config", json={"media_error_rate": 1.0}, timeout=5)
    assert answer.status_code == 200 and answer.json()["media_error_rate"] == 1.0
    assert requests.post(f"{sim.url}/_sim/config", json={"nope": 1}, timeout=5).status_code == 400
    image_id = post_image(api, sim).json()["id"]
    time.sleep(0.15)
    url = api.get(f"{sim.url}/images/{image_id}", timeout=5).json()["imageVersions"]["original"]
    assert requests.get(url, timeout=5).status_code == 503
    requests.post(f"{sim.url}/_sim/config", json={"media_error_rate": 0}, timeout=5)
    assert requests.get(url, timeout=5).status_code == 200
    jobs = requests.get(f"{sim.url}/_sim/jobs", timeout=5).json()
    assert jobs[0]["id"] == image_id and jobs[0]["finished"] is True
    assert requests.post(f"{sim.url}/_sim/reset", timeout=5).ok
    assert requests.get(f"{sim.url}/_sim/counters", timeout=5).json()["jobs_created_total"] == 0
    assert api.get(f"{sim.url}/images/{image_id}", timeout=5).status_code == 404
