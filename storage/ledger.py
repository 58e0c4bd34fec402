"""The job ledger: the truth of what happened, in SQLite or PostgreSQL. One facade over its parts.

- :mod:`storage.ledger_create`: a batch with its items and planned steps, in bulk;
- :mod:`storage.ledger_reads`: batches, items, steps, counts;
- :mod:`storage.ledger_writes`: guarded transitions (compare-and-set on one row), attempts, job counting;
- :mod:`storage.ledger_progress`: settling items once, the batch barrier, the reconciler's queries;
- :mod:`storage.claims` (``Ledger.claims``): who owns a remote job, unconfirmed steps, schedule firings;
- :mod:`storage.catalog` (``Ledger.catalog``): content keys across batches, reuse of done outputs.

SQL errors are SQLAlchemy's (``sqlalchemy.exc``); the engine and its upgrades are :mod:`storage.db`.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from storage.catalog import Catalog
from storage.claims import Claims
from storage.db import get_engine
from storage.ledger_base import (
    ITEM_BATCH_STATE,
    ITEM_OPEN,
    STEP_CONTENT_KEY,
    STEP_WEBHOOK_HASH,
    chunked,
    idempotency_key,
    new_batch_id,
)
from storage.ledger_create import Creation
from storage.ledger_progress import Progress
from storage.ledger_writes import StepWrites

__all__ = ["ITEM_OPEN", "Ledger", "chunked", "idempotency_key", "new_batch_id"]


class Ledger(Creation, StepWrites, Progress):
    """Queries and guarded updates over the ledger tables."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = get_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        ITEM_BATCH_STATE.create(self.engine, checkfirst=True)
        STEP_CONTENT_KEY.create(self.engine, checkfirst=True)
        STEP_WEBHOOK_HASH.create(self.engine, checkfirst=True)
        self.claims = Claims(self.engine)
        self.catalog = Catalog(self.engine)
