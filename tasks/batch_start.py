"""A validated spec recorded as a batch: its rows only, with no message sent and no Redis or Celery import.

:func:`tasks.batch.start_spec` records and then starts the feeder in one process. ``letzflow run`` records
with :func:`record_spec` while a forked child has imported Celery and sends the feeder's message
(``workers.early_check``): the command does not pay for those imports before the first POST.
"""

from __future__ import annotations

import logging

from letzflow.spec import BatchSpec
from storage.ledger import Ledger
from storage.models import Batch
from tasks.catalog import PhotoIdentities, content_keys_for, reuse_done

log = logging.getLogger(__name__)


def record_spec(
    ledger: Ledger,
    spec: BatchSpec,
    photos: PhotoIdentities,
    *,
    name: str | None = None,
    schedule: str | None = None,
    fresh: bool = False,
    priority: int | None = None,
) -> Batch:
    """Record the batch, its items and planned steps (each with its content key), and mark the steps an
    earlier batch already rendered as reused (unless ``fresh`` or the spec says ``reuse: false``). Its
    feeder is not started: the caller sends ``letzflow.feed_batch``."""
    reuse = spec.reuse and not fresh
    batch = ledger.create_batch(
        name=name or spec.name,
        spec_hash=spec.spec_hash,
        steps=spec.step_dicts(),
        items=((it.id, it.fields) for it in spec.iter_items()),
        max_jobs=spec.max_jobs,
        spec_path=str(spec.source_path) if spec.source_path else None,
        schedule=schedule,
        reuse=reuse,
        lane=(spec.priority if priority is None else priority, spec.weight, spec.max_inflight),
        content_keys=content_keys_for(spec, photos),
    )
    if reuse:
        reused = reuse_done(ledger, batch)
        if reused:
            log.info("batch %s: %d steps reuse outputs of earlier batches", batch.id, reused)
    return batch
