"""The API key never leaks (logs, Redis messages and results, ledger, manifest, reports, error texts);
stored objects are private and shared links are presigned with an expiry."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.engine import cli, ledger, run_batch, stored_objects, wait_batch, write_spec
from tests.reliability.harness import SIM, jobs_created, record, start_beat, verify, worker
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

SECRET = f"sk-SECRET-{secrets.token_hex(12)}"
KEY_ENV = {"LETZAI_API_KEY": SECRET}


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs={**SIM, "valid_keys": [SECRET]}) as s:
        start_beat(s)
        yield s


def _redis_dump(stack: EmbeddedStack) -> bytes:
    """Every key and value in Redis (strings, lists, hashes, sets, sorted sets, streams), as bytes."""
    assert stack.redis is not None
    r: Any = stack.redis.client()
    parts: list[bytes] = []
    for key in r.scan_iter(count=500):
        kind = r.type(key).decode()
        parts.append(key)
        if kind == "string":
            parts.append(r.get(key) or b"")
        elif kind == "list":
            parts.extend(r.lrange(key, 0, -1))
        elif kind == "hash":
            for field, value in r.hgetall(key).items():
                parts += [field, value]
        elif kind == "set":
            parts.extend(r.smembers(key))
        elif kind == "zset":
            parts.extend(r.zrange(key, 0, -1))
        elif kind == "stream":
            parts.append(repr(r.xrange(key)).encode())
    return b"\n".join(parts)


def test_the_api_key_appears_nowhere_after_a_run(stack, tmp_path):
    w = worker(stack, KEY_ENV, name="secure")
    before = jobs_created(stack)
    items = [{"id": f"s{n}", "prompt": f"secure {n}"} for n in range(4)]
    steps = [{"generate": {"width": 512, "height": 512}}]
    batch_id = run_batch(stack, write_spec(tmp_path, "secure", steps, items), env=KEY_ENV)
    # a batch the API refuses (400), so error texts are recorded too
    bad_id = run_batch(
        stack,
        write_spec(
            tmp_path,
            "secure-bad",
            [{"generate": {"width": 3000, "height": 512, "skip_checks": ["width"]}}],
            [{"id": "bad", "prompt": "too wide"}],
        ),
        env=KEY_ENV,
    )
    mid_run = _redis_dump(stack)  # task messages in flight
    wait_batch(stack, batch_id, timeout=60)
    wait_batch(stack, bad_id, timeout=60)
    bad_item = ledger(stack).items(bad_id)[0]
    assert bad_item.state == "failed" and "width" in (bad_item.error or "")
    reports = tmp_path / "reports"
    result = cli(stack, "report", batch_id, "--out", str(reports), env=KEY_ENV)
    assert result.returncode == 0, result.stderr
    w.stop()
    haystacks: dict[str, bytes] = {"redis (mid-run)": mid_run, "redis (after)": _redis_dump(stack)}
    for log in stack.dir.rglob("*.log"):
        haystacks[f"log {log.relative_to(stack.dir)}"] = log.read_bytes()
    for db in stack.dir.glob("letzflow.db*"):
        haystacks[f"ledger {db.name}"] = db.read_bytes()
    for key, data in stored_objects(stack).items():
        haystacks[f"s3 {key}"] = data
    for path in Path(reports).rglob("*"):
        if path.is_file():
            haystacks[f"report {path.name}"] = path.read_bytes()
    haystacks["cli output"] = (result.stdout + result.stderr).encode()
    assert any(k.startswith("log workers") for k in haystacks) and any(
        "manifest.json" in k for k in haystacks
    )
    leaks = [name for name, data in haystacks.items() if SECRET.encode() in data]
    assert not leaks, f"the API key leaked into: {leaks}"
    assert SECRET.encode() not in b"".join(haystacks.values())
    record(
        "security: key grep over logs/Redis/ledger/S3/reports",
        verify(stack, batch_id, before),
        note=(f"{len(haystacks)} places searched, 0 hits"),
    )


def test_stored_objects_are_private_and_shared_links_expire(stack):
    keys = [k for k in stored_objects(stack) if not k.endswith(".json")]
    assert keys
    anonymous = requests.get(f"{stack.s3.url}/{stack.bucket}/{keys[0]}", timeout=10)
    assert anonymous.status_code == 403
    from storage.media import S3MediaStore

    store = S3MediaStore(stack.s3.client(), stack.bucket)
    link = store.presign(keys[0], expires=120)
    query = parse_qs(urlparse(link).query)
    assert query["X-Amz-Expires"] == ["120"] and "X-Amz-Signature" in query
    assert requests.get(link, timeout=10).status_code == 200
    # moto's server does not enforce X-Amz-Expires, so the expiry is checked in the signed URL itself
