"""The ledger's tables (SQLModel): batches, items, steps (one per LetzAI job) and attempts.

The ledger is the truth; Redis only carries messages. States:

- Batch: ``running`` → ``finalizing`` → ``done``; or ``paused`` (402, resumable), ``stopped`` (401/403),
  ``cancelled``.
- Item: ``pending`` → ``queued`` → ``done`` | ``failed`` | ``cancelled``.
- Step: ``planned`` → ``submitting`` → ``submitted`` → ``running`` → ``ready`` → ``copying`` → ``done``;
  or ``failed``, ``cancelled``, ``skipped`` (an earlier step of its chain failed), ``unconfirmed`` (its POST's
  answer was lost and no listed job could be proven to be its own: possibly paid, never re-sent unasked).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now: every timestamp in the ledger is UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A ledger timestamp as aware UTC (SQLite hands them back naive)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


STEP_INFLIGHT = ("submitting", "submitted", "running")
STEP_TERMINAL = ("done", "failed", "cancelled", "skipped", "unconfirmed")
ITEM_TERMINAL = ("done", "failed", "cancelled")


class Batch(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(index=True, max_length=200)
    spec_hash: str = Field(index=True, max_length=64)
    spec_path: str | None = Field(default=None, sa_column=Column(Text))
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    state: str = Field(default="running", index=True, max_length=20)
    message: str | None = Field(default=None, sa_column=Column(Text))
    max_jobs: int | None = None
    #: its steps may reuse done outputs of earlier batches by content key (``--fresh``: no)
    reuse: bool = True
    #: lane for free in-flight slots (0-9, higher first; low 1, normal 5, high 9), share within it, own cap
    priority: int = 5
    weight: float = 1.0
    max_inflight: int | None = None
    jobs_submitted: int = 0
    items_total: int = 0
    items_fed: int = 0
    feeder_next_at: datetime | None = None
    finalize_runs: int = 0
    manifest_key: str | None = Field(default=None, sa_column=Column(Text))
    schedule: str | None = Field(default=None, max_length=200, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class Item(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("batch_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(foreign_key="batch.id", index=True, max_length=32)
    seq: int = Field(index=True)
    key: str = Field(max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    state: str = Field(default="pending", index=True, max_length=20)
    error: str | None = Field(default=None, sa_column=Column(Text))
    finish_runs: int = 0
    kicked_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class Step(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("remote_kind", "remote_id"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(foreign_key="batch.id", index=True, max_length=32)
    item_id: int = Field(foreign_key="item.id", index=True)
    idempotency_key: str = Field(unique=True, max_length=64)
    index: int
    kind: str = Field(max_length=20)
    variant: int = 0
    #: the image each later step works on after a step that yields several (``storage.lanes``); "" = trunk
    branch: str = Field(default="", max_length=64)
    state: str = Field(default="planned", index=True, max_length=20)
    remote_kind: str = Field(max_length=20)
    remote_id: str | None = Field(default=None, max_length=64)
    #: the remote id was found by listing after a lost answer (not read from the POST's own answer)
    adopted: bool = False
    #: the worker (Celery node name) whose POST this step's ``submitting`` is: when that worker is known to
    #: be dead, its POST cannot still be in flight
    submitting_by: str | None = Field(default=None, max_length=200)
    #: what this step would produce, as a hash (letzflow.spec.content): equal keys, equal outputs
    content_key: str | None = Field(default=None, max_length=64)
    #: "{batch id}/{step id}" of the done step whose outputs this one reused instead of paying again
    reused_from: str | None = Field(default=None, max_length=120)
    #: sha256 of the webhook token its last POST carried (letzai.webhook_tokens); the token is never kept
    webhook_hash: str | None = Field(default=None, max_length=64)
    progress: float = 0.0
    attempts: int = 0
    submit_attempts: int = 0
    polls: int = 0
    #: consecutive failed GETs or copies (reset by a success); bounded by the retry policy
    errors_in_row: int = 0
    submitting_since: datetime | None = None
    submitted_at: datetime | None = None
    next_poll_at: datetime | None = Field(default=None, index=True)
    deadline_at: datetime | None = None
    finished_at: datetime | None = None
    error_class: str | None = Field(default=None, max_length=80)
    error_status: int | None = None
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    #: finished media as LetzAI gave it: [{url, image_id}]
    results: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    #: stored copies: [{key, sha256, size, content_type, image_id}]
    outputs: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow)


class Attempt(SQLModel, table=True):
    """One execution of a task on a step."""

    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="step.id", index=True)
    task: str = Field(max_length=20)
    started_at: datetime = Field(default_factory=utcnow)
    duration_ms: int = 0
    outcome: str = Field(max_length=40)
    error: str | None = Field(default=None, sa_column=Column(Text))


class ContentClaim(SQLModel, table=True):
    """Which step renders a content key: two batches planning the same new content pay for it once."""

    content_key: str = Field(primary_key=True, max_length=64)
    step_id: int
    claimed_at: datetime = Field(default_factory=utcnow)


class ScheduleFiring(SQLModel, table=True):
    """One firing of a schedule, claimed once: any number of beats start it at most once."""

    __table_args__ = (UniqueConstraint("schedule", "fire_at"),)

    id: int | None = Field(default=None, primary_key=True)
    schedule: str = Field(max_length=200)
    fire_at: datetime
    batch_id: str | None = Field(default=None, max_length=32)
    claimed_at: datetime = Field(default_factory=utcnow)
