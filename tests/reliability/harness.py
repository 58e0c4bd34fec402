"""Shared pieces of the reliability suite: stacks with beat, fault timing, and the soundness verdict.

Every fault test ends with :func:`verify`: every item terminal (failed ones with a reason), none lost, one
LetzAI job per step that holds a remote id (the simulator's ``jobs_created_total`` delta), one S3 object per
recorded output with its sha256, no stray objects, and the batch callback run exactly once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from storage.models import ITEM_TERMINAL
from tests.engine import ledger, stored_objects
from tests.figures import append_row
from tests.lineage import check_lineage
from workers.stack import CeleryBeat, CeleryWorker, EmbeddedStack

#: Engine settings every reliability stack uses: a fast reconciler, the shortest visibility timeout.
RELIABLE_ENV: dict[str, str] = {
    "LETZFLOW_RECONCILE_EVERY": "1",
    "LETZFLOW_VISIBILITY_TIMEOUT": "60",
    "LETZAI_MAX_RPS": "500",
    "LETZAI_MAX_INFLIGHT": "50",
}

#: The full pipeline, as the thin-answer and webhook tests run it.
PIPELINE: list[dict[str, Any]] = [
    {"generate": {"width": 512, "height": 512}},
    {"skin_fix": {"intensity": 3}},
    {"upscale": {"strength": 1, "size": 2}},
    {"animate": {"prompt": "slow orbit", "settings": {"mode": "default", "duration": 4}}},
]
#: Everything but ``webhookUrl`` that would tell one job from another (the simulator's thin-field names).
THIN = ["createdAt", "prompt", "originalImageCompletion", "source", "settings", "generationSettings"]

SIM: dict[str, Any] = {
    "latency_image": 0.6,
    "latency_image_edit": 0.4,
    "latency_upscale": 0.4,
    "latency_video": 0.5,
    "jitter": 0.2,
    "seed": 11,
}

CLEAN_SIM: dict[str, Any] = {
    "fail_rate": 0.0,
    "never_finish_rate": 0.0,
    "rate_limit_rate": 0.0,
    "error_5xx_rate": 0.0,
    "lost_answer_rate": 0.0,
    "slow_rate": 0.0,
    "reset_rate": 0.0,
    "media_error_rate": 0.0,
    "credits": None,
    "valid_keys": None,
}


@dataclass
class Verdict:
    """What :func:`verify` found."""

    items: int
    done: int
    failed: int
    lost: int
    jobs_created: int
    steps_with_job: int
    outputs: int
    reasons: dict[str, str] = field(default_factory=dict)
    #: jobs whose request was checked against their own item's (see tests/lineage.py); wrong ones fail
    lineage_checked: int = 0
    unconfirmed: int = 0

    @property
    def duplicate_posts(self) -> int:
        """Jobs created beyond one per step holding a job or left unconfirmed (each of those at most one)."""
        return max(0, self.jobs_created - self.steps_with_job - self.unconfirmed)


def start_beat(stack: EmbeddedStack, env: Mapping[str, str] = RELIABLE_ENV) -> CeleryBeat:
    """Beat with the reliability env (EmbeddedStack.start_beat would use the default 30 s period)."""
    stack.beat = CeleryBeat({**stack.env, **env}, dir=stack.dir / "beat")
    stack.beat.start()
    return stack.beat


def ensure_beat(stack: EmbeddedStack) -> None:
    """Restart beat if it died (e.g. after a Redis outage)."""
    if stack.beat is None or stack.beat.process is None or not stack.beat.process.alive:
        start_beat(stack)


def worker(stack: EmbeddedStack, env: Mapping[str, str] | None = None, **options: Any) -> CeleryWorker:
    """A threads-pool worker with the reliability env (plus ``env``)."""
    options.setdefault("pool", "threads")
    options.setdefault("concurrency", 8)
    return stack.start_worker(env={**RELIABLE_ENV, **(env or {})}, **options)


def jobs_created(stack: EmbeddedStack) -> int:
    assert stack.sim is not None
    return int(stack.sim.counters()["jobs_created_total"])


def wait_steps(
    stack: EmbeddedStack, batch_id: str, states: tuple[str, ...], count: int = 1, timeout: float = 60
) -> int:
    """Wait until at least ``count`` steps of the batch are in ``states``; how many are."""
    led = ledger(stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(led.steps_in(batch_id, states))
        if n >= count:
            return n
        time.sleep(0.05)
    raise AssertionError(f"no {count} steps in {states} after {timeout}s: {led.step_counts(batch_id)}")


def verify(
    stack: EmbeddedStack,
    batch_id: str,
    jobs_before: int,
    *,
    allow_failed: bool = False,
    orphans: int = 0,
    finalized: int = 1,
    other_jobs: int = 0,
) -> Verdict:
    """Assert the batch is sound (see the module docstring) and return the figures.

    ``orphans``: jobs created and held by no step that are expected besides one per ``unconfirmed`` step
    (a lost answer that could not be matched: possibly paid, shown, never re-sent unasked), e.g. the
    first jobs of unconfirmed steps that were later re-sent with ``retry --unconfirmed``. ``finalized``:
    how often the batch callback ran (once, plus once per ``letzflow retry`` that re-ran items).
    ``other_jobs``: jobs other batches created meanwhile (several batches in flight at once).
    """
    assert stack.sim is not None
    led = ledger(stack)
    batch = led.batch(batch_id)
    assert batch is not None
    items = led.items(batch_id)
    assert len(items) == batch.items_total, "items missing from the ledger"
    lost = [i.key for i in items if i.state not in ITEM_TERMINAL]
    assert not lost, f"items not terminal: {lost}"
    failed = [i for i in items if i.state != "done"]
    reasons = {i.key: i.error or "" for i in failed}
    assert all(reasons.values()), f"failed items without a reason: {reasons}"
    if not allow_failed:
        assert not failed, f"items failed: {reasons}"
    assert batch.state == "done" and batch.finalize_runs == finalized, (batch.state, batch.finalize_runs)
    steps = led.steps_in(
        batch_id,
        (
            "planned",
            "submitting",
            "submitted",
            "running",
            "ready",
            "copying",
            "done",
            "failed",
            "cancelled",
            "skipped",
            "unconfirmed",
        ),
    )
    with_job = [s for s in steps if s.remote_id]
    unconfirmed = [s for s in steps if s.state == "unconfirmed"]
    created = jobs_created(stack) - jobs_before - other_jobs
    unheld = created - len(with_job) - orphans
    assert 0 <= unheld <= len(unconfirmed), (
        f"{created} jobs created for {len(with_job)} steps holding one, {len(unconfirmed)} unconfirmed and "
        f"{orphans} known orphans: duplicate POSTs"
    )
    outputs = {o["key"]: o for s in steps if s.state == "done" for o in s.outputs}
    assert all(s.outputs for s in steps if s.state == "done")
    prefix = f"{batch.name}/{batch_id}/"
    objects = stored_objects(stack, prefix)
    media = {k: v for k, v in objects.items() if k != batch.manifest_key}
    assert set(media) == set(outputs), f"stored {sorted(media)} != recorded {sorted(outputs)}"
    for key, data in media.items():
        assert (
            hashlib.sha256(data).hexdigest() == outputs[key]["sha256"] and len(data) == outputs[key]["size"]
        )
    lineage = check_lineage(led, batch_id, stack.sim.url)
    lineage.assert_clean()
    return Verdict(
        len(items),
        len(items) - len(failed),
        len(failed),
        len(lost),
        created,
        len(with_job),
        len(outputs),
        reasons,
        lineage.checked,
        len(unconfirmed),
    )


def record(fault: str, verdict: Verdict, recovered: float | None = None, note: str = "") -> None:
    """Add a row to the summary table printed at the end of the run."""
    append_row(
        {
            "fault": fault,
            "items": verdict.items,
            "done": verdict.done,
            "failed": verdict.failed,
            "lost": verdict.lost,
            "duplicate_posts": verdict.duplicate_posts,
            "unconfirmed": verdict.unconfirmed,
            "lineage_checked": verdict.lineage_checked,
            "recovered_s": None if recovered is None else round(recovered, 1),
            "note": note,
        }
    )


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t:`` … ``t[0]`` is the elapsed seconds afterwards."""
    box = [time.monotonic()]
    yield box
    box[0] = time.monotonic() - box[0]


def start_workers(stack: EmbeddedStack, *specs: dict[str, Any]) -> list[CeleryWorker]:
    """Start several reliability workers side by side (each spec: ``env`` plus CeleryWorker options)."""
    started = []
    for spec in specs:
        options = dict(spec)
        env = {**stack.env, **RELIABLE_ENV, **options.pop("env", {})}
        options.setdefault("pool", "threads")
        options.setdefault("concurrency", 8)
        options.setdefault("name", f"w{len(stack.workers) + 1}")
        options.setdefault("dir", stack.dir / "workers" / options["name"])
        w = CeleryWorker(env, **options)
        stack.workers.append(w)
        w.start(wait=False)
        started.append(w)
    for w in started:
        w.wait_ready()
    return started


def seed_expected_duration(stack: EmbeddedStack, kind: str, seconds: float) -> None:
    """Set the engine's learned job duration (what a warmed-up system knows after a few jobs)."""
    assert stack.redis is not None
    stack.redis.client().set(f"letzflow:expected:{kind}", seconds)
