"""What the engine's decisions work with, passed in rather than looked up.

Every engine function takes a :class:`Deps` (or the one collaborator it needs) as its first argument, so
what it depends on is in its signature and a unit test hands it fakes: an SQLite ledger, a fake client,
simple limiters, a fixed clock. The wire builds one ``Deps`` per process from its singletons
(``tasks.runtime.deps``). The limiters and learned durations are Redis-backed objects of the wire; the
engine knows them only by the protocols below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from storage.ledger import Ledger
from storage.media_base import MediaStore

if TYPE_CHECKING:  # the client's module imports requests: a process that only writes batches needs neither
    from letzai.client import LetzAIClient


class Inflight(Protocol):
    """The global cap on LetzAI jobs in flight: the part the engine uses once a job exists."""

    def release(self, step_id: int) -> None: ...

    def refresh(self, step_id: int, release_at: float | None = None) -> None: ...

    def forget_batch(self, batch_id: str) -> None: ...


class Rate(Protocol):
    """The global request rate: ``take`` answers 0 when a request may go now, else seconds to wait."""

    def take(self) -> float: ...


class Figure(Protocol):
    """What is learned of a duration key: its first-look time (None while cold) and the cold look."""

    @property
    def first_look(self) -> float | None: ...

    @property
    def cold(self) -> bool: ...

    @property
    def cold_look(self) -> float: ...


class Durations(Protocol):
    """Learned first-look times per duration key (:mod:`letzflow.engine.duration_keys`)."""

    def figure(self, key: str) -> Figure: ...

    def learn(
        self, key: str, *, first_look: bool, done: bool, elapsed: float, progress: float, had_progress: bool
    ) -> None: ...


class Download(Protocol):
    """An open media download (:class:`letzai.media.MediaStream`): its headers, then its body."""

    @property
    def content_type(self) -> str: ...

    @property
    def length(self) -> int | None: ...

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class Deps:
    """The collaborators of every engine decision, and the settings values they read.

    ``now`` is the clock (UTC, timezone-aware); ``open_media`` starts a streamed download of a media URL
    (``letzai.media.open_media``). ``visibility_timeout``, ``image_deadline`` and ``video_deadline`` are
    seconds (``LETZFLOW_VISIBILITY_TIMEOUT``, ``LETZFLOW_IMAGE_DEADLINE``, ``LETZFLOW_VIDEO_DEADLINE``).
    """

    ledger: Ledger
    client: LetzAIClient
    inflight: Inflight
    rate: Rate
    durations: Durations
    store: MediaStore
    open_media: Callable[[str], Download]
    now: Callable[[], datetime]
    visibility_timeout: float
    image_deadline: float
    video_deadline: float
