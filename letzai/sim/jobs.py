"""A simulated job and its timeline, computed lazily from its creation time (no background threads).

A job is ``new`` for the first tenth of its duration, then working (``generating``, ``in progress`` or
``training``), and ends exactly when its duration has passed: ``ready`` (``available`` for models) or
``failed``. ``progress`` rises linearly with elapsed / duration. Every random choice of a job (duration,
outcome, answer variants) comes from ``Random(f"{seed}:{counter}")``, so a seed replays the same jobs.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from letzai.sim.config import SimConfig

NEW_FRACTION = 0.1

#: Working words of images: the docs say ``in progress``, the guide ``generating``.
IMAGE_WORKING_WORDS = ("generating", "in progress")
#: Where a ready video's URL lives: guide, docs/older guide, docs.
VIDEO_URL_SHAPES = ("versions_object", "paths", "versions_array")

FAILURE_REASONS = (
    "Generation failed: the GPU worker stopped unexpectedly",
    "Content policy: the prompt was flagged as unsafe",
    "Generation failed: timeout in the inference queue",
)

WORKING_WORD = {
    "image_edit": "generating",
    "upscale": "generating",
    "video": "generating",
    "model": "training",
}
SUCCESS_WORD = {
    "image": "ready",
    "image_edit": "ready",
    "upscale": "ready",
    "video": "ready",
    "model": "available",
}


def now_iso(wall: float | None = None) -> str:
    """An ISO-8601 UTC timestamp with milliseconds, like the API's ``createdAt``."""
    moment = datetime.fromtimestamp(time.time() if wall is None else wall, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class Job:
    """One simulated job of any kind.

    Attributes:
        id: a UUID string.
        kind: image, image_edit, upscale, video or model.
        seq: the job counter value it was created with.
        created: ``time.monotonic()`` at creation; ``created_at`` the ISO wall time.
        duration: seconds until its final status.
        outcome: ``ready``, ``failed`` or ``never``.
        reason: the failure reason when ``outcome`` is failed.
        variant: the answer variants chosen for it (``working_word``, ``video_shape``, ``video_item``,
            ``create_status``).
        params: the accepted request body (large fields dropped); routes may add defaults to it.
        width, height: the pixel size of its media.
        children: ids of an edit's result images (``imageCompletionChoices``).
        source_id: the LetzAI image it was made from, if any.
        interrupted_at: monotonic time of an interruption; ``interrupted_progress`` the progress then.
        privacy: private / public / licensed.
        thumbnail_id: a model's thumbnail image id.
        request: the exact request body it was created with (a copy; only an edit's ``mask`` dropped).
        endpoint: the create route (``/images``, ``/image-edits``, ``/upscale``, ``/videos``, ``/models``).
        thin_roll: its seeded roll in [0, 1): its objects are thinned when it is below ``thin_rate``.
        lost_answer: how the create answer was lost (``502``, ``reset``, ``timeout``), None if it was not.
        base: the simulator URL its create call reached (media URLs in its webhook body use it, as those
            of a GET use the URL that GET reached).
    """

    id: str
    kind: str
    seq: int
    created: float
    created_at: str
    duration: float
    outcome: str
    reason: str
    variant: dict[str, Any]
    params: dict[str, Any]
    width: int = 0
    height: int = 0
    children: list[str] = field(default_factory=list)
    source_id: str | None = None
    interrupted_at: float | None = None
    interrupted_progress: int = 0
    privacy: str = "private"
    thumbnail_id: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    endpoint: str = ""
    thin_roll: float = 0.0
    lost_answer: str | None = None
    base: str = ""

    @property
    def finish_time(self) -> float | None:
        """Monotonic time of its final status; None if it never finishes."""
        return None if self.outcome == "never" else self.created + self.duration

    @property
    def end_time(self) -> float | None:
        """Monotonic time it ended or will end: its interruption, else its finish; None if never."""
        return self.interrupted_at if self.interrupted_at is not None else self.finish_time

    def state(self, now: float) -> tuple[str, int]:
        """``(phase, progress)`` at monotonic time ``now``; phase is new, working, ready, failed or
        interrupted."""
        if self.interrupted_at is not None and self.interrupted_at <= now:
            return "interrupted", self.interrupted_progress
        elapsed = now - self.created
        if self.outcome != "never" and elapsed >= self.duration:
            return self.outcome, 100
        fraction = elapsed / self.duration if self.duration > 0 else 1.0
        progress = max(0, min(99, int(100 * fraction)))
        return ("new" if fraction < NEW_FRACTION else "working"), progress

    def finished(self, now: float) -> bool:
        """Whether it has reached a final status at ``now``."""
        return self.state(now)[0] not in ("new", "working")

    def status(self, now: float) -> tuple[str, int]:
        """``(status word, progress)`` as the API shows it at ``now``."""
        phase, progress = self.state(now)
        if phase == "working":
            return self.variant.get("working_word") or WORKING_WORD[self.kind], progress
        if phase == "ready":
            return SUCCESS_WORD[self.kind], progress
        return phase, progress


def plan_job(kind: str, seq: int, seed: int, config: SimConfig, params: dict[str, Any]) -> Job:
    """Create a job of ``kind``, rolling its duration, outcome and variants from ``seed`` and ``seq``."""
    rng = random.Random(f"{seed}:{seq}")
    jitter = config.jitter
    duration = max(0.0, config.latency(kind) * (1 + rng.uniform(-jitter, jitter)))
    roll = rng.random()
    if roll < config.fail_rate:
        outcome = "failed"
    elif roll < config.fail_rate + config.never_finish_rate:
        outcome = "never"
    else:
        outcome = "ready"
    status_200 = kind == "model" or rng.random() < config.create_status_200_rate
    variant: dict[str, Any] = {
        "create_status": 200 if status_200 else 201,
        "working_word": rng.choice(IMAGE_WORKING_WORDS) if kind == "image" else None,
        "video_shape": rng.choice(VIDEO_URL_SHAPES),
        "video_item": rng.choice(("string", "object")),
    }
    return Job(
        id=str(uuid.uuid4()),
        kind=kind,
        seq=seq,
        created=time.monotonic(),
        created_at=now_iso(),
        duration=duration,
        outcome=outcome,
        reason=rng.choice(FAILURE_REASONS) if outcome == "failed" else "",
        variant=variant,
        params=params,
        thin_roll=rng.random(),
    )
