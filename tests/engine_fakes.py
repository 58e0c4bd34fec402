"""Fakes for the engine's unit tests: every collaborator of :class:`letzflow.engine.deps.Deps` but the
ledger (the tests use a real one, on SQLite), with no Celery, Redis or network and a fixed clock."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from letzai.errors import LetzAIError
from letzai.responses import Job, parse_job
from letzflow.engine.deps import Deps
from storage.fake_media import InMemoryMediaStore
from storage.ledger import Ledger
from storage.models import Step

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


class FakeResource:
    """One LetzAI resource: ``jobs`` maps an id to its raw API object, or to an error its GET raises."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.jobs: dict[str, dict[str, Any] | LetzAIError] = {}
        self.gets: list[str] = []
        self.interrupted: list[str] = []

    def get(self, id: str) -> Job:
        self.gets.append(id)
        answer = self.jobs[id]
        if isinstance(answer, LetzAIError):
            raise answer
        return parse_job(self.kind, {"id": id, **answer})

    def interrupt(self, id: str) -> None:
        self.interrupted.append(id)


class FakeClient:
    """The four job resources of :class:`letzai.client.LetzAIClient`."""

    def __init__(self) -> None:
        self.images = FakeResource("image")
        self.image_edits = FakeResource("image_edit")
        self.upscale = FakeResource("upscale")
        self.videos = FakeResource("video")


@dataclass
class FakeInflight:
    released: list[int] = field(default_factory=list)
    refreshed: list[tuple[int, float | None]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)

    def release(self, step_id: int) -> None:
        self.released.append(step_id)

    def refresh(self, step_id: int, release_at: float | None = None) -> None:
        self.refreshed.append((step_id, release_at))

    def forget_batch(self, batch_id: str) -> None:
        self.forgotten.append(batch_id)


@dataclass
class FakeRate:
    """``wait``: what every ``take`` answers (0: a token now)."""

    wait: float = 0.0

    def take(self) -> float:
        return self.wait


@dataclass(frozen=True)
class FakeFigure:
    first_look: float | None = None
    cold_look: float = 1.0

    @property
    def cold(self) -> bool:
        return self.first_look is None


@dataclass
class FakeDurations:
    """Learned first-look times: ``first_look`` for every key (None: cold); ``lessons`` what looks taught."""

    first_look: float | None = None
    lessons: list[dict[str, Any]] = field(default_factory=list)

    def figure(self, key: str) -> FakeFigure:
        return FakeFigure(self.first_look)

    def learn(self, key: str, **lesson: Any) -> None:
        self.lessons.append({"key": key, **lesson})


class FakeDownload:
    def __init__(self, data: bytes, content_type: str, length: int | None) -> None:
        self.data = data
        self.content_type = content_type
        self.length = length

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        yield from (self.data[i : i + size] for i in range(0, len(self.data), size))


@dataclass
class FakeMediaHost:
    """What ``open_media`` finds: ``media`` maps a URL to (bytes, content type), or to an error it raises;
    ``short`` URLs announce one byte more than they send (a download that broke off)."""

    media: dict[str, tuple[bytes, str] | Exception] = field(default_factory=dict)
    short: set[str] = field(default_factory=set)
    opened: list[str] = field(default_factory=list)

    def open(self, url: str) -> FakeDownload:
        self.opened.append(url)
        found = self.media[url]
        if isinstance(found, Exception):
            raise found
        data, content_type = found
        return FakeDownload(data, content_type, len(data) + (1 if url in self.short else 0))


@dataclass
class Fakes:
    """The collaborators a test looks at after the engine ran."""

    ledger: Ledger
    client: FakeClient = field(default_factory=FakeClient)
    inflight: FakeInflight = field(default_factory=FakeInflight)
    rate: FakeRate = field(default_factory=FakeRate)
    durations: FakeDurations = field(default_factory=FakeDurations)
    store: InMemoryMediaStore = field(default_factory=InMemoryMediaStore)
    host: FakeMediaHost = field(default_factory=FakeMediaHost)
    now: datetime = NOW

    def deps(self) -> Deps:
        return Deps(
            ledger=self.ledger,
            client=self.client,
            inflight=self.inflight,
            rate=self.rate,
            durations=self.durations,
            store=self.store,
            open_media=self.host.open,
            now=lambda: self.now,
            visibility_timeout=3600,
            image_deadline=600,
            video_deadline=1800,
        )


def one_step_batch(ledger: Ledger, remote_kind: str = "image", kind: str = "generate") -> Step:
    """A running batch of one item with one planned step; that step."""
    batch = ledger.create_batch(
        name="engine",
        spec_hash="h",
        steps=[{"index": 0, "kind": kind, "remote_kind": remote_kind, "variants": 1, "params": {}}],
        items=[("sku-1", {"prompt": "a red bag"})],
    )
    (step,) = ledger.item_steps(ledger.items(batch.id)[0].id)
    return step


def submitted(ledger: Ledger, step: Step, remote_id: str, *, age: float = 5.0, deadline: float = 600) -> Step:
    """``step`` as a POST leaves it: ``submitted`` ``age`` s before :data:`NOW`, its job ``remote_id``."""
    assert step.id is not None
    ledger.update_step(
        step.id,
        state="submitted",
        remote_id=remote_id,
        submitted_at=NOW - timedelta(seconds=age),
        deadline_at=NOW - timedelta(seconds=age) + timedelta(seconds=deadline),
    )
    fresh = ledger.step(step.id)
    assert fresh is not None
    return fresh


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
